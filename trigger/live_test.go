package trigger

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dashcam-dev/dashcam/bundle"
	"github.com/dashcam-dev/dashcam/capture"
	"github.com/dashcam-dev/dashcam/internal/testutil"
)

// liveGroup resolves a test cgroup on the live system.
func liveGroup(t *testing.T, cg *testutil.Cgroup) (*capture.Target, *Group) {
	t.Helper()
	return liveGroupTB(t, cg)
}

func liveGroupTB(t testing.TB, cg *testutil.Cgroup) (*capture.Target, *Group) {
	t.Helper()
	tg, err := capture.Resolve(capture.DefaultPaths(), capture.Spec{Cgroup: cg.Path}, os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewGroup(capture.DefaultPaths(), tg)
	if err != nil {
		t.Fatal(err)
	}
	return tg, g
}

// quotaCgroup is a test cgroup limited to half a CPU.
func quotaCgroup(t *testing.T) *testutil.Cgroup {
	cg := testutil.NewCgroup(t)
	if cg.Dir("cpu") != "" {
		cg.Set(t, "cpu", "cpu.cfs_period_us", "100000")
		cg.Set(t, "cpu", "cpu.cfs_quota_us", "50000")
	} else {
		cg.Set(t, "unified", "cpu.max", "50000 100000")
	}
	return cg
}

// events runs Arm for d with the pollers and returns what fired.
func armEvents(t *testing.T, g *Group, d time.Duration, pollers ...Poller) []Event {
	t.Helper()
	var (
		mu  sync.Mutex
		evs []Event
	)
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	err := Arm(ctx, Config{Group: g, Pollers: pollers, Interval: 200 * time.Millisecond, DryRun: false,
		Capture: func(_ context.Context, ev Event, _ func() []*Sample) (string, error) {
			mu.Lock()
			evs = append(evs, ev)
			mu.Unlock()
			cancel() // first fire is enough
			return "", nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	return evs
}

// TestCPUAgainstCgroupLimit: a busy loop under a 0.5-CPU quota is at
// ~25% of this 2-CPU host but 100% of its own limit: --cpu 80% fires,
// and the evidence names the quota.
func TestCPUAgainstCgroupLimit(t *testing.T) {
	testutil.SkipInShort(t)
	cg := quotaCgroup(t)
	testutil.StartIn(t, cg, exec.Command("/bin/sh", "-c", "read x; while :; do :; done"))
	_, g := liveGroup(t, cg)
	if l := g.CPULimit(); l.Value != 0.5 {
		t.Fatalf("CPULimit = %+v, want 0.5 CPUs from the quota", l)
	}
	start := time.Now()
	evs := armEvents(t, g, 15*time.Second, NewCPU(80, 3*time.Second, 200*time.Millisecond))
	if len(evs) != 1 {
		t.Fatalf("--cpu 80%% --for 3s did not fire in 15 s")
	}
	ev := evs[0]
	if took := ev.Time.Sub(start); took < 3*time.Second {
		t.Errorf("fired after %v, before the 3 s window could fill", took)
	}
	if src, _ := ev.Evidence["limit_source"].(string); !strings.Contains(src, "0.5 CPUs") {
		t.Errorf("evidence limit_source = %q, want the 0.5-CPU quota", src)
	}
	if pts, _ := ev.Evidence["samples"].([]point); len(pts) < 10 {
		t.Errorf("evidence has %d samples, want the window's", len(pts))
	}
	t.Logf("fired after %v: %s", ev.Time.Sub(start).Round(time.Millisecond), ev.Reason)
}

// TestCPUBurstsDoNotFire: 1 s bursts every 3 s never hold for --for 3s.
func TestCPUBurstsDoNotFire(t *testing.T) {
	testutil.SkipInShort(t)
	cg := quotaCgroup(t)
	testutil.StartIn(t, cg, exec.Command("/bin/sh", "-c",
		"read x; while :; do timeout 1 sh -c 'while :; do :; done'; sleep 2; done"))
	_, g := liveGroup(t, cg)
	cpu := NewCPU(80, 3*time.Second, 200*time.Millisecond)
	if evs := armEvents(t, g, 10*time.Second, cpu); len(evs) != 0 {
		t.Errorf("bursts fired a sustained trigger: %+v", evs[0].Reason)
	}
}

// TestThrottleFires: the same busy loop is throttled in most periods.
func TestThrottleFires(t *testing.T) {
	testutil.SkipInShort(t)
	cg := quotaCgroup(t)
	testutil.StartIn(t, cg, exec.Command("/bin/sh", "-c", "read x; while :; do :; done"))
	_, g := liveGroup(t, cg)
	evs := armEvents(t, g, 10*time.Second, NewThrottle(20, 2*time.Second, 200*time.Millisecond))
	if len(evs) != 1 {
		t.Fatal("--throttle 20% --for 2s did not fire under a 0.5-CPU quota")
	}
	t.Log(evs[0].Reason)
}

// TestMemoryFiresBeforeOOM: an allocator growing towards a 64 MiB limit
// fires --mem 80% while it is still alive, and the bundle has it.
func TestMemoryFiresBeforeOOM(t *testing.T) {
	testutil.SkipInShort(t)
	python, err := exec.LookPath("python3")
	if err != nil {
		testutil.SkipOrFail(t, "python3 not installed (the slow allocator)")
	}
	cg := testutil.NewCgroup(t)
	if cg.Dir("memory") != "" {
		cg.Set(t, "memory", "memory.limit_in_bytes", "67108864")
	} else {
		cg.Set(t, "unified", "memory.max", "67108864")
	}
	// 1 MiB every 100 ms: 80% after ~5 s, the OOM kill after ~6.5 s.
	alloc := exec.Command(python, "-c", `import sys, time
sys.stdin.readline()
a = []
while True:
    a.append(bytearray(1 << 20))
    time.sleep(0.1)
`)
	testutil.StartIn(t, cg, alloc)
	_, g := liveGroup(t, cg)
	dir := t.TempDir()
	var (
		mu     sync.Mutex
		bundle string
	)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = Arm(ctx, Config{Group: g, Pollers: []Poller{NewMemory(80, 0, 100*time.Millisecond)},
		Interval: 100 * time.Millisecond,
		Capture: func(ctx context.Context, ev Event, history func() []*Sample) (string, error) {
			defer cancel()
			tg, err := capture.Resolve(capture.DefaultPaths(), capture.Spec{Cgroup: g.Path}, os.Getpid())
			if err != nil {
				return "", err
			}
			res, err := capture.Capture(ctx, capture.Options{Config: capture.DefaultConfig(), Target: tg, OutDir: dir,
				Modules: []string{"procs"}, Trigger: bundleTrigger(ev)})
			if err != nil {
				return "", err
			}
			mu.Lock()
			bundle = res.Path
			mu.Unlock()
			return res.Path, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if bundle == "" {
		t.Fatal("--mem 80% did not fire before the deadline")
	}
	b, err := openBundle(bundle)
	if err != nil {
		t.Fatal(err)
	}
	stat, ok := b.File(fmt.Sprintf("proc/%d/stat", alloc.Process.Pid))
	if !ok {
		t.Fatalf("the allocator (pid %d) is not in the bundle: it was captured too late", alloc.Process.Pid)
	}
	if f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:])); f[0] == "Z" || f[0] == "X" {
		t.Errorf("allocator captured already dead (state %s)", f[0])
	}
	if b.Manifest.Trigger.Kind != "mem" {
		t.Errorf("trigger = %+v", b.Manifest.Trigger)
	}
}

func bundleTrigger(ev Event) bundle.Trigger {
	return bundle.Trigger{Kind: ev.Kind, Reason: ev.Reason, Evidence: ev.Evidence}
}

func openBundle(path string) (*bundle.Bundle, error) { return bundle.Open(path) }

// TestProcCPU: one busy process among idle ones fires --proc-cpu with
// --match, naming it; a non-matching busy process does not.
func TestProcCPU(t *testing.T) {
	testutil.SkipInShort(t)
	cg := testutil.NewCgroup(t)
	// A copy of sh named "burner", so that its comm is "burner".
	burner := filepath.Join(t.TempDir(), "burner")
	if err := exec.Command("cp", "/bin/sh", burner).Run(); err != nil {
		t.Fatal(err)
	}
	busy := exec.Command(burner, "-c", "read x; while :; do :; done")
	testutil.StartIn(t, cg, busy)
	testutil.StartIn(t, cg, exec.Command("/bin/sh", "-c", "read x; exec sleep 1000"))
	_, g := liveGroup(t, cg)
	evs := armEvents(t, g, 10*time.Second, NewProcCPU(g, 50, regexp.MustCompile("burner"), 2*time.Second, 200*time.Millisecond, os.Getpid()))
	if len(evs) != 1 {
		t.Fatal("--proc-cpu 50% --match burner did not fire")
	}
	if pid, _ := evs[0].Evidence["pid"].(int); pid != busy.Process.Pid {
		t.Errorf("fired for pid %v, want the burner %d: %s", evs[0].Evidence["pid"], busy.Process.Pid, evs[0].Reason)
	}
	if evs := armEvents(t, g, 3*time.Second, NewProcCPU(g, 50, regexp.MustCompile("^nomatch$"), time.Second, 200*time.Millisecond, os.Getpid())); len(evs) != 0 {
		t.Errorf("fired for a process that does not match: %s", evs[0].Reason)
	}
}

// TestOOMBundleNamesVictim: --oom through the arm loop writes a bundle
// whose manifest names the victim, with the survivors captured.
func TestOOMBundleNamesVictim(t *testing.T) {
	testutil.SkipInShort(t)
	cg := testutil.NewCgroup(t)
	if cg.Dir("memory") != "" {
		cg.Set(t, "memory", "memory.limit_in_bytes", "64M")
	} else {
		cg.Set(t, "unified", "memory.max", "64M")
	}
	survivor := exec.Command("/bin/sh", "-c", "read x; exec sleep 1000")
	testutil.StartIn(t, cg, survivor)
	_, g := liveGroup(t, cg)
	dir := t.TempDir()
	victim := exec.Command("/bin/sh", "-c", "read x; exec tail /dev/zero")
	go func() {
		time.Sleep(500 * time.Millisecond) // the watcher registers first
		testutil.StartIn(t, cg, victim)
	}()
	var path string
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	err := Arm(ctx, Config{Group: g, Watchers: []Watcher{NewOOM(g, nil)}, Interval: 200 * time.Millisecond,
		Capture: func(ctx context.Context, ev Event, _ func() []*Sample) (string, error) {
			defer cancel()
			tg, err := capture.Resolve(capture.DefaultPaths(), capture.Spec{Cgroup: g.Path}, os.Getpid())
			if err != nil {
				return "", err
			}
			res, err := capture.Capture(ctx, capture.Options{Config: capture.DefaultConfig(), Target: tg, OutDir: dir,
				Modules: []string{"procs", "cgroup"}, Trigger: bundleTrigger(ev)})
			if err != nil {
				return "", err
			}
			path = res.Path
			return res.Path, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	if path == "" {
		t.Fatal("--oom did not fire")
	}
	b, err := openBundle(path)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := b.Manifest.Trigger.Evidence["victim"].(map[string]any)
	if pid, _ := v["pid"].(float64); int(pid) != victim.Process.Pid {
		t.Errorf("manifest victim = %v, want pid %d; reason %q", v, victim.Process.Pid, b.Manifest.Trigger.Reason)
	}
	if _, ok := b.File(fmt.Sprintf("proc/%d/status", survivor.Process.Pid)); !ok {
		t.Error("the survivor's state is not in the bundle")
	}
}

// TestPSIPolled: more runnable threads than CPUs in a cgroup raise its
// cpu pressure; a polled --psi cpu.some.avg10>5 fires.
func TestPSIPolled(t *testing.T) {
	testutil.SkipInShort(t)
	cg := testutil.NewCgroup(t)
	for range 4 {
		testutil.StartIn(t, cg, exec.Command("/bin/sh", "-c", "read x; while :; do :; done"))
	}
	_, g := liveGroup(t, cg)
	if _, fallback := g.PressureFile("cpu"); fallback {
		testutil.SkipOrFail(t, "the cgroup has no cpu.pressure (PSI needs cgroup2 and CONFIG_PSI)")
	}
	spec, err := ParsePSISpec("cpu.some.avg10>5")
	if err != nil {
		t.Fatal(err)
	}
	evs := armEvents(t, g, 20*time.Second, NewPSI(spec, 0, 200*time.Millisecond))
	if len(evs) != 1 {
		t.Fatal("cpu.some.avg10>5 did not fire with 4 busy loops on 2 CPUs")
	}
	t.Log(evs[0].Reason)
}
