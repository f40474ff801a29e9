package capture

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dashcam-dev/dashcam/analyze"
	"github.com/dashcam-dev/dashcam/bundle"
	"github.com/dashcam-dev/dashcam/internal/testutil"
)

// The payment.service fixture: pid 100 (threads 100 S, 101 D), 102 R,
// 103 Z, 104 D, 105 T; 200 (nginx) is outside it.
var paymentThreads = [][2]int{{100, 100}, {100, 101}, {102, 102}, {103, 103}, {104, 104}, {105, 105}}

func TestKStacksFixture(t *testing.T) {
	out, rep := runFixture(t, ModeHybrid, Spec{Unit: "payment.service"}, "kstacks")
	if m := rep.Modules[0]; m.Status != bundle.StatusOK || m.Members != 3*len(paymentThreads) {
		t.Errorf("module = %+v, want ok with %d members", m, 3*len(paymentThreads))
	}
	p := fixtures(t, ModeHybrid)
	for _, th := range paymentThreads {
		for _, f := range kstackFiles {
			rel := fmt.Sprintf("%d/task/%d/%s", th[0], th[1], f)
			got, ok := out.files["proc/"+rel]
			want, _ := os.ReadFile(filepath.Join(p.Proc, rel))
			if !ok || !bytes.Equal(got, want) {
				t.Errorf("proc/%s: copied %v, %q; want the kernel file %q", rel, ok, got, want)
			}
		}
	}
	for name := range out.files {
		if strings.HasPrefix(name, "proc/200/") {
			t.Errorf("%s is outside the target", name)
		}
	}
	if rep.Counts.ThreadsSeen != 0 {
		t.Errorf("threads seen = %d: counting threads is the procs module's job", rep.Counts.ThreadsSeen)
	}
}

func TestKStacksBudget(t *testing.T) {
	p := fixtures(t, ModeHybrid)
	tg, err := Resolve(p, Spec{Unit: "payment.service"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := newMemAdder()
	rep := Run(context.Background(), tg, out, RunOptions{Modules: []string{"kstacks"}, Config: &Config{Paths: p, ThreadBudget: 2}})
	m := rep.Modules[0]
	if m.Status != bundle.StatusPartial {
		t.Errorf("status %s, want partial", m.Status)
	}
	for _, want := range []string{"thread budget of 2", "4 more threads in 4 processes", "--thread-budget"} {
		if !strings.Contains(m.Reason, want) {
			t.Errorf("reason %q does not say %q", m.Reason, want)
		}
	}
	for name := range out.files {
		if !strings.HasPrefix(name, "proc/100/task/") {
			t.Errorf("%s copied past the budget (only pid 100's 2 threads fit)", name)
		}
	}
	if len(out.files) != 6 {
		t.Errorf("%d members, want 6 (3 files of 2 threads)", len(out.files))
	}
}

// strictAdder refuses a second member of a name, as bundle.Writer does.
type strictAdder struct{ *memAdder }

func (s *strictAdder) Add(name string, data []byte) error {
	s.mu.Lock()
	_, dup := s.files[name]
	s.mu.Unlock()
	if dup {
		return fmt.Errorf("bundle: member %q: %w", name, bundle.ErrDuplicate)
	}
	return s.memAdder.Add(name, data)
}

// TestKStacksWithProcs: procs copies the wchan of D threads, kstacks
// every thread's; run together, each name lands once and both modules
// end ok, their member counts adding up to the bundle's.
func TestKStacksWithProcs(t *testing.T) {
	p := fixtures(t, ModeHybrid)
	tg, err := Resolve(p, Spec{Unit: "payment.service"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := &strictAdder{newMemAdder()}
	rep := Run(context.Background(), tg, out, RunOptions{Modules: []string{"kstacks", "procs"}, Config: &Config{Paths: p}})
	members := 0
	for _, m := range rep.Modules {
		members += m.Members
		if m.Status != bundle.StatusOK {
			t.Errorf("%s: %s (%s) %v", m.Name, m.Status, m.Reason, m.Errors)
		}
	}
	if members != len(out.files) {
		t.Errorf("modules count %d members, the bundle has %d", members, len(out.files))
	}
	for _, th := range paymentThreads {
		if _, ok := out.files[fmt.Sprintf("proc/%d/task/%d/wchan", th[0], th[1])]; !ok {
			t.Errorf("wchan of thread %v missing", th)
		}
	}
}

func TestKStacksNotSupported(t *testing.T) {
	root := t.TempDir()
	task := filepath.Join(root, "300", "task", "300")
	if err := os.MkdirAll(task, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{"wchan": "do_epoll_wait", "syscall": "232 0x4 0x7ffc 0x3e 0xffffffff 0x0 0x0 0x7ffc 0x7f3a\n"} {
		if err := os.WriteFile(filepath.Join(task, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := newMemAdder()
	rep := Run(context.Background(), &Target{Pids: []int{300, 4000000}}, out,
		RunOptions{Modules: []string{"kstacks"}, Config: &Config{Paths: Paths{Proc: root}}})
	m := rep.Modules[0]
	if m.Status != bundle.StatusSkipped || !strings.Contains(m.Reason, "CONFIG_STACKTRACE") {
		t.Errorf("module = %+v, want skipped naming CONFIG_STACKTRACE", m)
	}
	if _, ok := out.files["proc/300/task/300/wchan"]; !ok {
		t.Error("wchan not copied although the stack is unavailable")
	}
	if rep.Counts.ProcessesVanished != 1 {
		t.Errorf("vanished = %d, want 1", rep.Counts.ProcessesVanished)
	}
}

// kstackThreadsHelper is the "kstack-threads" helper: it returns once 4
// goroutines locked to their own threads are running, each then asleep
// in a futex wait on a channel that is never written.
func kstackThreadsHelper() {
	var wg sync.WaitGroup
	never := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			runtime.LockOSThread()
			wg.Done()
			<-never
		}()
	}
	wg.Wait()
}

// startSleepingThreads starts the kstack-threads helper in cg and waits
// until every one of its threads sleeps; it returns the pid and tids.
func startSleepingThreads(t *testing.T, cg *testutil.Cgroup) (int, []int) {
	t.Helper()
	pid, _ := startHelper(t, cg, "kstack-threads")
	tids, err := listTids(fmt.Sprintf("/proc/%d", pid))
	if err != nil {
		t.Fatal(err)
	}
	if len(tids) < 5 {
		t.Fatalf("helper has %d threads, want the main one and 4 locked", len(tids))
	}
	for _, tid := range tids {
		testutil.WaitState(t, tid, "S")
	}
	return pid, tids
}

// TestKStacksLive captures the threads of a helper asleep in futex
// waits: every thread gets its stack, wchan and syscall, and the
// analyzer groups the locked threads' identical stacks.
func TestKStacksLive(t *testing.T) {
	cg := testutil.NewCgroup(t)
	pid, tids := startSleepingThreads(t, cg)
	res := captureLive(t, cg, "procs", "kstacks")
	b, err := bundle.Open(res.Path)
	if err != nil {
		t.Fatal(err)
	}
	futex := 0
	for _, tid := range tids {
		dir := fmt.Sprintf("proc/%d/task/%d/", pid, tid)
		for _, f := range kstackFiles {
			if _, ok := b.File(dir + f); !ok {
				t.Errorf("%s%s missing", dir, f)
			}
		}
		stack, _ := b.File(dir + "stack")
		if bytes.Contains(stack, []byte("futex_wait")) {
			futex++
		}
	}
	if futex < 4 {
		t.Errorf("%d of %d threads show futex_wait in their stack, want at least the 4 locked ones", futex, len(tids))
	}
	rep, err := analyze.Open(res.Path)
	if err != nil {
		t.Fatal(err)
	}
	if rep.KStacks == nil || rep.KStacks.Stacks < len(tids) {
		t.Fatalf("analyzer: kstacks section %+v, want %d stacks", rep.KStacks, len(tids))
	}
	if g := rep.KStacks.Common[0]; g.Count < 4 || !strings.Contains(strings.Join(g.Frames, " "), "futex_wait") {
		t.Errorf("most common stack: %d threads %v, want the 4 locked threads in futex_wait", g.Count, g.Frames)
	}
}

// TestKStacksLiveFrozen freezes a helper in a cgroup v1 freezer, which
// shows every thread in state D (TASK_FROZEN; Linux 6.18 reports it so,
// while the v2 freezer sleeps interruptibly): a thread frozen where it
// slept freezably keeps that stack (futex_do_wait…), one caught running
// is in __refrigerator. Each thread's stack is captured, and the
// analyzer groups the identical ones as blocked.
func TestKStacksLiveFrozen(t *testing.T) {
	cg := testutil.NewCgroup(t)
	root := filepath.Join(testutil.CgroupRoot, "freezer")
	if _, err := os.Stat(filepath.Join(root, "cgroup.procs")); err != nil {
		t.Skip("no cgroup v1 freezer mounted at " + root + " (a cgroup v2-only host): nothing puts threads in D reliably")
	}
	dir := filepath.Join(root, cg.Path)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "freezer.state")
	thaw := func() { _ = os.WriteFile(state, []byte("THAWED"), 0) }
	t.Cleanup(func() {
		thaw()
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if err := os.Remove(dir); err == nil || errors.Is(err, os.ErrNotExist) {
				return
			}
		}
		t.Errorf("remove %s", dir)
	})
	pid, _ := startSleepingThreads(t, cg)
	// Registered after startHelper's cleanup, so it runs first: a task
	// killed while frozen in v1 stays frozen, and its Wait would hang.
	t.Cleanup(thaw)
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(state, []byte("FROZEN"), 0); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if s, _ := os.ReadFile(state); strings.TrimSpace(string(s)) == "FROZEN" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("helper did not freeze")
		}
	}
	// The Go runtime may have started threads since; frozen, the set is
	// fixed.
	tids, err := listTids(fmt.Sprintf("/proc/%d", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, tid := range tids {
		testutil.WaitState(t, tid, "D")
	}

	res := captureLive(t, cg, "procs", "kstacks")
	b, err := bundle.Open(res.Path)
	if err != nil {
		t.Fatal(err)
	}
	distinct := map[string]bool{}
	for _, tid := range tids {
		name := fmt.Sprintf("proc/%d/task/%d/stack", pid, tid)
		stack, _ := b.File(name)
		if !bytes.HasPrefix(stack, []byte("[<0>] ")) {
			t.Errorf("%s = %q, want a kernel stack", name, stack)
		}
		distinct[normalize(stack)] = true
	}
	rep, err := analyze.Open(res.Path)
	if err != nil {
		t.Fatal(err)
	}
	if rep.KStacks == nil {
		t.Fatal("analyzer: no kstacks section")
	}
	blocked := 0
	for _, g := range rep.KStacks.Blocked {
		if len(g.Frames) == 0 {
			t.Errorf("blocked group %+v grouped by wchan although stacks were captured", g)
		}
		blocked += g.Count
	}
	if blocked != len(tids) || len(rep.KStacks.Blocked) != len(distinct) || len(distinct) >= len(tids) {
		t.Errorf("blocked groups %+v: %d threads (want %d) in %d groups (want %d distinct stacks, fewer than threads)",
			rep.KStacks.Blocked, blocked, len(tids), len(rep.KStacks.Blocked), len(distinct))
	}
}

// normalize strips addresses and offsets from a raw kernel stack, the
// test's own version of what the analyzer does.
func normalize(stack []byte) string {
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(string(stack)), "\n") {
		_, fn, _ := strings.Cut(line, "] ")
		fn, _, _ = strings.Cut(fn, "+0x")
		out = append(out, fn)
	}
	return strings.Join(out, " ")
}

// captureLive captures cg with the given modules into a bundle and
// checks that every module ended ok.
func captureLive(t *testing.T, cg *testutil.Cgroup, modules ...string) *Result {
	t.Helper()
	tg, err := Resolve(DefaultPaths(), Spec{Cgroup: cg.Path}, os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	res, err := Capture(context.Background(), Options{
		Config: DefaultConfig(), Target: tg, OutDir: t.TempDir(),
		Modules: modules, Trigger: bundle.Trigger{Kind: "manual"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range res.Manifest.Modules {
		if m.Status != bundle.StatusOK {
			t.Errorf("module %s: %s (%s)", m.Name, m.Status, m.Reason)
		}
	}
	return res
}
