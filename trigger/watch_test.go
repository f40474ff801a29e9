package trigger

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// testLogger logs to the test's output.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tlogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tlogWriter struct{ t *testing.T }

func (w tlogWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(b), "\n"))
	return len(b), nil
}

// fired is an event and how long after its Time fire was called.
type fired struct {
	Event
	lag time.Duration
}

// watchRun is a Watcher running in a goroutine.
type watchRun struct {
	events chan fired
	done   chan struct{}
	err    error
	cancel context.CancelFunc
}

// startWatch runs w until the test ends (or stop).
func startWatch(t *testing.T, w Watcher) *watchRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &watchRun{events: make(chan fired, 64), done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(r.done)
		r.err = w.Watch(ctx, func(e Event) {
			lag := time.Since(e.Time)
			select {
			case r.events <- fired{e, lag}:
			default:
				t.Errorf("too many events; dropped %+v", e)
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(5 * time.Second):
			t.Errorf("%s: Watch did not return 5 s after cancel", w.Name())
		}
	})
	return r
}

// stop cancels the watcher and returns its error and how long Watch took
// to return.
func (r *watchRun) stop(t *testing.T) (time.Duration, error) {
	t.Helper()
	t0 := time.Now()
	r.cancel()
	select {
	case <-r.done:
		return time.Since(t0), r.err
	case <-time.After(5 * time.Second):
		t.Fatal("Watch did not return 5 s after cancel")
	}
	return 0, nil
}

// next waits for the next event.
func (r *watchRun) next(t *testing.T, timeout time.Duration) fired {
	t.Helper()
	select {
	case e := <-r.events:
		return e
	case <-r.done:
		t.Fatalf("Watch returned before an event: %v", r.err)
	case <-time.After(timeout):
		t.Fatalf("no event within %s", timeout)
	}
	return fired{}
}

// waitReady waits for a watcher's ready hook.
func waitReady(t *testing.T, r *watchRun, ready chan struct{}) {
	t.Helper()
	select {
	case <-ready:
	case <-r.done:
		t.Fatalf("Watch returned before it was ready: %v", r.err)
	case <-time.After(5 * time.Second):
		t.Fatal("watcher not ready after 5 s")
	}
}
