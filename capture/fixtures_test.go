package capture

import (
	"path/filepath"
	"sync"
	"testing"
)

// fixtures returns Paths into the shared fake /proc, /sys and cgroup
// trees (testdata/fixtures), with the cgroup layout given by mode:
// "v1", "v2" or "hybrid".
func fixtures(t testing.TB, mode string) Paths {
	t.Helper()
	root := filepath.Join("testdata", "fixtures")
	return Paths{
		Proc:   filepath.Join(root, "proc"),
		Sys:    filepath.Join(root, "sys"),
		Cgroup: filepath.Join(root, "cgroup", mode),
	}
}

// memAdder collects members in memory.
type memAdder struct {
	mu    sync.Mutex
	files map[string][]byte
}

func newMemAdder() *memAdder { return &memAdder{files: map[string][]byte{}} }

func (m *memAdder) Add(name string, data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.files[name] = append([]byte(nil), data...)
	return nil
}
