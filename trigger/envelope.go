package trigger

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Limits is the safety envelope shared by all triggers: defaults chosen so
// that an arm forgotten on a host harms nothing.
type Limits struct {
	// Cooldown is the least time between two captures.
	Cooldown time.Duration
	// MaxBundles is the most bundles one arm (same target and output
	// folder, across restarts) writes; 0 means no limit.
	MaxBundles int
	// Rate allows at most RateCount captures per RateWindow; 0: no limit.
	RateCount  int
	RateWindow time.Duration
	// MaxDisk bounds the total size of dashcam bundles in the output
	// folder; 0: no limit. Past it, DeleteOldest removes the oldest
	// bundles, else no capture starts.
	MaxDisk      int64
	DeleteOldest bool
	// KeepFree is the free-space floor of the output filesystem, in
	// percent: below it no capture starts.
	KeepFree float64
}

// DefaultLimits are the defaults of dashcam arm.
var DefaultLimits = Limits{Cooldown: 5 * time.Minute, MaxBundles: 5, KeepFree: 10}

// Envelope applies Limits and remembers, in a state file next to the
// bundles, what was written and when, so a restart does not reset them.
type Envelope struct {
	limits Limits
	dir    string
	path   string

	mu    sync.Mutex
	state envelopeState
}

type envelopeState struct {
	Version int      `json:"version"`
	Key     string   `json:"key"`
	Bundles []Record `json:"bundles"`
}

// Record is one bundle an arm wrote.
type Record struct {
	Path    string    `json:"path"`
	Trigger string    `json:"trigger"`
	Time    time.Time `json:"time"`
}

// OpenEnvelope loads (or starts) the state of the arm identified by key
// (the target) in dir. The state file is dir/.dashcam-arm-<key>.json.
func OpenEnvelope(dir, key string, l Limits) (*Envelope, error) {
	e := &Envelope{limits: l, dir: dir, path: filepath.Join(dir, ".dashcam-arm-"+key+".json"),
		state: envelopeState{Version: 1, Key: key}}
	b, err := os.ReadFile(e.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return e, nil
	case err != nil:
		return nil, fmt.Errorf("read arm state: %w", err)
	}
	if err := json.Unmarshal(b, &e.state); err != nil {
		return nil, fmt.Errorf("arm state %s is corrupt (%v); remove it to start over", e.path, err)
	}
	return e, nil
}

// Count returns the number of bundles this arm has written.
func (e *Envelope) Count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.state.Bundles)
}

// Check says whether a capture may start now, and if not, why.
func (e *Envelope) Check(now time.Time) (bool, string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	l, bs := e.limits, e.state.Bundles
	if l.MaxBundles > 0 && len(bs) >= l.MaxBundles {
		return false, fmt.Sprintf("--max-bundles %d reached (state in %s)", l.MaxBundles, e.path)
	}
	if n := len(bs); n > 0 && l.Cooldown > 0 {
		if wait := bs[n-1].Time.Add(l.Cooldown).Sub(now); wait > 0 {
			return false, fmt.Sprintf("cooldown: last capture %s ago, --cooldown %s (%s left)",
				now.Sub(bs[n-1].Time).Round(time.Second), l.Cooldown, wait.Round(time.Second))
		}
	}
	if l.RateCount > 0 {
		n := 0
		for _, b := range bs {
			if now.Sub(b.Time) < l.RateWindow {
				n++
			}
		}
		if n >= l.RateCount {
			return false, fmt.Sprintf("--rate %d/%s reached", l.RateCount, l.RateWindow)
		}
	}
	if l.KeepFree > 0 {
		if free, err := freePercent(e.dir); err == nil && free < l.KeepFree {
			return false, fmt.Sprintf("only %.1f%% free on %s, below --keep-free %.0f%%", free, e.dir, l.KeepFree)
		}
	}
	if l.MaxDisk > 0 && !l.DeleteOldest {
		if used := bundleBytes(e.dir); used >= l.MaxDisk {
			return false, fmt.Sprintf("bundles in %s take %d bytes, --max-disk %d", e.dir, used, l.MaxDisk)
		}
	}
	return true, ""
}

// Record notes a written bundle, persists the state, and enforces
// MaxDisk by deleting the oldest bundles when asked to. It returns the
// paths it deleted.
func (e *Envelope) Record(r Record) ([]string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.state.Bundles = append(e.state.Bundles, r)
	var deleted []string
	if e.limits.MaxDisk > 0 && e.limits.DeleteOldest {
		deleted = deleteOldest(e.dir, e.limits.MaxDisk, r.Path)
	}
	return deleted, e.save()
}

// save writes the state atomically (temp file, fsync, rename).
func (e *Envelope) save() error {
	b, err := json.MarshalIndent(e.state, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(e.dir, ".dashcam-arm-*.tmp")
	if err != nil {
		return fmt.Errorf("save arm state: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("save arm state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("save arm state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save arm state: %w", err)
	}
	return os.Rename(tmp.Name(), e.path)
}

// freePercent is the share of the filesystem of dir available to us.
func freePercent(dir string) (float64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, err
	}
	if st.Blocks == 0 {
		return 100, nil
	}
	return 100 * float64(st.Bavail) / float64(st.Blocks), nil
}

type bundleFile struct {
	path string
	size int64
	mod  time.Time
}

// bundles lists dashcam bundles in dir, oldest first.
func bundles(dir string) []bundleFile {
	entries, _ := os.ReadDir(dir)
	var out []bundleFile
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "dashcam-") || !strings.HasSuffix(e.Name(), ".tar.zst") {
			continue
		}
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() {
			out = append(out, bundleFile{filepath.Join(dir, e.Name()), fi.Size(), fi.ModTime()})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].mod.Before(out[j].mod) })
	return out
}

func bundleBytes(dir string) int64 {
	var n int64
	for _, b := range bundles(dir) {
		n += b.size
	}
	return n
}

// deleteOldest removes the oldest bundles until the total fits max,
// never removing keep (the bundle just written).
func deleteOldest(dir string, max int64, keep string) []string {
	bs := bundles(dir)
	total := int64(0)
	for _, b := range bs {
		total += b.size
	}
	var deleted []string
	for _, b := range bs {
		if total <= max {
			break
		}
		if b.path == keep {
			continue
		}
		if os.Remove(b.path) == nil {
			total -= b.size
			deleted = append(deleted, b.path)
		}
	}
	return deleted
}
