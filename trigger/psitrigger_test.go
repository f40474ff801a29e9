package trigger

import (
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dashcam-dev/dashcam/capture"
	"github.com/dashcam-dev/dashcam/internal/testutil"
)

func TestParsePSITrigger(t *testing.T) {
	good := map[string]PSITriggerSpec{
		"memory:some:150ms/2s": {"memory", "some", 150 * time.Millisecond, 2 * time.Second},
		"cpu:full:1s/10s":      {"cpu", "full", time.Second, 10 * time.Second},
		"io:some:500ms/500ms":  {"io", "some", 500 * time.Millisecond, 500 * time.Millisecond},
	}
	for s, want := range good {
		got, err := ParsePSITrigger(s)
		if err != nil || got != want {
			t.Errorf("ParsePSITrigger(%q) = %+v, %v; want %+v", s, got, err, want)
		}
	}
	for _, s := range []string{
		"", "memory:some", "memory:some:150ms", "disk:some:1s/2s", "memory:half:1s/2s",
		"memory:some:3s/2s",  // stall > window
		"memory:some:0s/2s",  // no stall
		"memory:some:1ms/1h", // window > 10s
		"memory:some:1ms/100ms",
		"memory:some:x/2s",
	} {
		if _, err := ParsePSITrigger(s); err == nil {
			t.Errorf("ParsePSITrigger(%q) accepted", s)
		}
	}
}

func TestRoundWindow(t *testing.T) {
	ms := time.Millisecond
	for _, tt := range []struct{ stall, window, wantStall, wantWindow time.Duration }{
		{100 * ms, time.Second, 200 * ms, 2 * time.Second},             // up: ratio 10% kept
		{50 * ms, 500 * ms, 200 * ms, 2 * time.Second},                 // the smallest window
		{300 * ms, 3 * time.Second, 400 * ms, 4 * time.Second},         // a tie rounds up
		{2900 * ms, 2900 * ms, 2 * time.Second, 2 * time.Second},       // down; stall ≤ window
		{1 * ms, 9500 * ms, 1053 * time.Microsecond, 10 * time.Second}, // at most 10 s
	} {
		got := roundWindow(PSITriggerSpec{"memory", "some", tt.stall, tt.window})
		if got.Stall != tt.wantStall || got.Window != tt.wantWindow {
			t.Errorf("roundWindow(%s/%s) = %s/%s, want %s/%s", tt.stall, tt.window, got.Stall, got.Window, tt.wantStall, tt.wantWindow)
		}
	}
}

// TestPSITriggerUnsupported: no pressure file anywhere (a kernel without
// PSI) is ErrUnsupported, for the arm loop to log and go on.
func TestPSITriggerUnsupported(t *testing.T) {
	dir := t.TempDir()
	g := &Group{paths: capture.Paths{Proc: dir}, Path: "/x", dirs: map[string]hierDir{"memory": {dir, filepath.Join(dir, "x")}}}
	spec, _ := ParsePSITrigger("memory:some:150ms/2s")
	err := NewPSITrigger(g, spec, nil).Watch(t.Context(), func(Event) { t.Error("fired") })
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), filepath.Join(dir, "pressure", "memory")) {
		t.Errorf("Watch = %v, want ErrUnsupported naming the fallback file", err)
	}
}

// TestPSITriggerLive overloads the CPUs with a cgroup's busy loops (4 on
// this 2-CPU machine): the cgroup's cpu.pressure "some" line grows, and
// triggers of 100ms/2s and 100ms/1s fire. The 1 s window is refused
// without CAP_SYS_RESOURCE and rounded to 2 s, which the evidence shows.
// Cancelling returns promptly.
func TestPSITriggerLive(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCgroup(t)
	_, g := liveGroup(t, c)
	file, fallback := g.PressureFile("cpu")
	if fallback {
		t.Fatalf("no cpu.pressure in the test cgroup's unified dir; PressureFile fell back to %s", file)
	}
	var runs []*watchRun
	for _, s := range []string{"cpu:some:100ms/2s", "cpu:some:100ms/1s"} {
		spec, err := ParsePSITrigger(s)
		if err != nil {
			t.Fatal(err)
		}
		w := NewPSITrigger(g, spec, testLogger(t))
		ready := make(chan struct{})
		w.(*psiTrigger).ready = func() { close(ready) }
		r := startWatch(t, w)
		waitReady(t, r, ready)
		runs = append(runs, r)
	}
	start := time.Now()
	for range 4 {
		testutil.StartIn(t, c, exec.Command("sh", "-c", "read x; while :; do :; done"))
	}
	rounded := !capSysResource()
	for i, r := range runs {
		e := r.next(t, 10*time.Second)
		t.Logf("%s: fired %s after the load started, %s after poll returned: %s",
			[]string{"100ms/2s", "100ms/1s"}[i], time.Since(start).Round(time.Millisecond), e.lag, e.Reason)
		ev := e.Evidence
		if e.Kind != "psi-trigger" || ev["resource"] != "cpu" || ev["line"] != "some" || ev["file"] != file || ev["fallback"] != false {
			t.Errorf("event = %+v", e.Event)
		}
		if p, ok := ev["psi"].(PSI); !ok || p.Some == nil || p.Some.Total == 0 {
			t.Errorf("evidence psi = %#v, want the parsed cpu.pressure with stall time", ev["psi"])
		} else {
			t.Logf("cpu.pressure some: %+v", *p.Some)
		}
		wantWindow, wantStall := int64(2_000_000), int64(100_000)
		if i == 1 {
			if ev["window_requested_us"] != int64(1_000_000) || ev["stall_requested_us"] != int64(100_000) {
				t.Errorf("requested = %v/%v, want 100000/1000000", ev["stall_requested_us"], ev["window_requested_us"])
			}
			if rounded {
				wantStall = 200_000 // the ratio is kept
				if !strings.Contains(e.Reason, "asked 100ms/1s") {
					t.Errorf("reason %q does not say the window was rounded", e.Reason)
				}
			} else {
				wantWindow = 1_000_000
			}
		}
		if ev["window_us"] != wantWindow || ev["stall_us"] != wantStall {
			t.Errorf("used = %v/%v µs, want %d/%d", ev["stall_us"], ev["window_us"], wantStall, wantWindow)
		}
	}
	for _, r := range runs {
		took, err := r.stop(t)
		if err != nil || took > time.Second {
			t.Errorf("Watch returned %v %s after cancel; want nil within 1 s", err, took)
		}
		t.Logf("returned %s after cancel", took)
	}
}

// TestPSITriggerGroupRemoved: removing the cgroup makes the pressure file
// report POLLERR, and Watch returns ErrGroupGone.
func TestPSITriggerGroupRemoved(t *testing.T) {
	testutil.RequireRoot(t)
	sub := testutil.NewCgroup(t).Sub(t, "gone")
	_, g := liveGroup(t, sub)
	spec, _ := ParsePSITrigger("memory:some:100ms/2s")
	w := NewPSITrigger(g, spec, testLogger(t))
	ready := make(chan struct{})
	w.(*psiTrigger).ready = func() { close(ready) }
	r := startWatch(t, w)
	waitReady(t, r, ready)
	t0 := time.Now()
	for _, d := range sub.Dirs {
		if err := os.Remove(d); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-r.done:
		if !errors.Is(r.err, ErrGroupGone) {
			t.Errorf("Watch = %v, want ErrGroupGone", r.err)
		}
		t.Logf("returned %s after rmdir: %v", time.Since(t0), r.err)
	case <-time.After(2 * time.Second):
		t.Fatal("Watch still running 2 s after its cgroup was removed")
	}
}

// TestPSITriggerFallback: a cgroup without a unified directory (a v1-only
// host) watches /proc/pressure, and says so.
func TestPSITriggerFallback(t *testing.T) {
	testutil.RequireRoot(t)
	dir := t.TempDir()
	g := &Group{paths: capture.DefaultPaths(), Path: "/x", dirs: map[string]hierDir{"memory": {dir, dir}}}
	spec, _ := ParsePSITrigger("cpu:some:500ms/2s")
	lb := &logBuf{t: t}
	w := NewPSITrigger(g, spec, slog.New(slog.NewTextHandler(lb, nil)))
	ready := make(chan struct{})
	w.(*psiTrigger).ready = func() { close(ready) }
	r := startWatch(t, w)
	waitReady(t, r, ready)
	if !strings.Contains(lb.String(), "file=/proc/pressure/cpu") || !strings.Contains(lb.String(), "watching the host's") {
		t.Errorf("the fallback to /proc/pressure was not logged: %s", lb.String())
	}
	if took, err := r.stop(t); err != nil || took > time.Second {
		t.Errorf("Watch returned %v %s after cancel", err, took)
	}
}
