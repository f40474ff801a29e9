package trigger

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dashcam-dev/dashcam/capture"
	"github.com/dashcam-dev/dashcam/internal/testutil"
)

// syncBuffer is a log sink safe for the arm loop's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// smallDisk mounts a tmpfs of size bytes, unmounted when the test ends.
func smallDisk(t *testing.T, size string) string {
	testutil.RequireRoot(t)
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		testutil.SkipOrFail(t, "mount tmpfs: "+err.Error())
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

// TestArmFullDisk: on a full disk no bundle appears, the log says why,
// and the arm keeps running and handles the next trigger.
func TestArmFullDisk(t *testing.T) {
	for _, tt := range []struct {
		name     string
		keepFree float64
		fill     int64
		want     string
	}{
		// The free-space floor stops the capture before it starts.
		{"keep-free", 10, 240 << 10, "below --keep-free 10%"},
		// Without a floor the capture itself runs out of space.
		{"enospc", 0, 0, "capture failed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := smallDisk(t, "256k")
			if tt.fill > 0 {
				if err := os.WriteFile(filepath.Join(dir, "filler"), make([]byte, tt.fill), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			env, err := OpenEnvelope(dir, "full", Limits{KeepFree: tt.keepFree})
			if err != nil {
				t.Fatal(err)
			}
			var logs syncBuffer
			fire := make(chan string, 2)
			fire <- "first"
			go func() {
				time.Sleep(700 * time.Millisecond)
				fire <- "second"
			}()
			g := fixtureGroup(t, "v2", "/system.slice/payment.service")
			p := g.paths
			tg, err := capture.Resolve(p, capture.Spec{Cgroup: g.Path}, 0)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
			defer cancel()
			err = Arm(ctx, Config{Group: g, Interval: 50 * time.Millisecond, Envelope: env, Fire: fire,
				Log: slog.New(slog.NewTextHandler(&logs, nil)),
				Capture: func(ctx context.Context, ev Event, history func() []*Sample) (string, error) {
					res, err := capture.Capture(ctx, capture.Options{Config: capture.Config{Paths: p}, Target: tg,
						OutDir: dir, Modules: capture.DefaultModules(),
						Finish: func(context.Context) map[string][]byte {
							// A history big enough not to fit.
							return map[string][]byte{HistoryMember: bytes.Repeat([]byte("x"), 512<<10)}
						}})
					if err != nil {
						return "", err
					}
					return res.Path, nil
				}})
			if err != nil {
				t.Fatal(err)
			}
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if strings.HasSuffix(e.Name(), ".tar.zst") || strings.Contains(e.Name(), ".tmp") {
					t.Errorf("left %s on the full disk", e.Name())
				}
			}
			out := logs.String()
			if n := strings.Count(out, tt.want); n != 2 {
				t.Errorf("log has %q %d times, want once per trigger (the arm kept running):\n%s", tt.want, n, out)
			}
		})
	}
}
