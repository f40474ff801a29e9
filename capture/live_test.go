package capture

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dashcam-dev/dashcam/bundle"
	"github.com/dashcam-dev/dashcam/internal/testutil"
)

// Helper processes: the test binary re-executed with DASHCAM_TEST_HELPER
// set. Each waits for one line on stdin (sent once it is in its cgroup).
func TestMain(m *testing.M) {
	if mode := os.Getenv("DASHCAM_TEST_HELPER"); mode != "" {
		helperMain(mode)
		return
	}
	os.Exit(m.Run())
}

func helperMain(mode string) {
	if mode == "priority" {
		if err := checkPriority(); err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		fmt.Println("ok")
		return
	}
	bufio.NewReader(os.Stdin).ReadString('\n')
	switch mode {
	case "thread-churn":
		// Threads that live a millisecond: a goroutine locked to its
		// thread that returns without unlocking takes the thread with it.
		go func() {
			for {
				go func() {
					runtime.LockOSThread()
					time.Sleep(time.Millisecond)
				}()
				time.Sleep(time.Millisecond)
			}
		}()
	case "threads":
		for range 4 {
			go func() {
				runtime.LockOSThread()
				select {}
			}()
		}
	case "fds":
		fdsHelper()
	case "fd-bench":
		fdBenchHelper()
	case "kstack-threads":
		kstackThreadsHelper()
	case "zombie-parent":
		// Start a child and never wait for it: it stays a zombie.
		p, err := os.StartProcess("/bin/true", []string{"true"}, &os.ProcAttr{})
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println(p.Pid)
	case "sockets-server", "sockets-client", "sockets-netns":
		socketsHelper(mode) // sockets_test.go
	case "memory-anon", "memory-many":
		memoryHelper(mode) // memory_test.go
	}
	fmt.Println("ready")
	select {}
}

// startHelper starts a helper process in c and waits until it is ready;
// it returns the pid and the helper's first output line.
func startHelper(t *testing.T, c *testutil.Cgroup, mode string) (int, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "DASHCAM_TEST_HELPER="+mode)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	testutil.StartIn(t, c, cmd)
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("helper %s: %v", mode, err)
	}
	return cmd.Process.Pid, strings.TrimSpace(line)
}

func TestCaptureLiveCgroup(t *testing.T) {
	cg := testutil.NewCgroup(t)
	sub := cg.Sub(t, "workers")

	threaded, _ := startHelper(t, cg, "threads")
	parent, line := startHelper(t, cg, "zombie-parent")
	zombie, err := strconv.Atoi(line)
	if err != nil {
		t.Fatalf("zombie-parent said %q", line)
	}
	stopped, _ := startHelper(t, cg, "sleep")
	if err := syscall.Kill(stopped, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	worker, _ := startHelper(t, sub, "sleep")
	testutil.WaitState(t, zombie, "Z")
	testutil.WaitState(t, stopped, "T")

	tg, err := Resolve(DefaultPaths(), Spec{Cgroup: cg.Path}, os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	res, err := Capture(context.Background(), Options{
		Config: Config{Paths: DefaultPaths()}, Target: tg, OutDir: t.TempDir(),
		Modules: DefaultModules(), Trigger: bundle.Trigger{Kind: "manual"}, ToolVersion: "test",
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := bundle.Open(res.Path)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range b.Manifest.Modules {
		if m.Status != bundle.StatusOK {
			t.Errorf("module %s: %s (%s)", m.Name, m.Status, m.Reason)
		}
	}
	if got := b.Manifest.Target.Resolved.Pids; len(got) != 5 {
		t.Errorf("resolved pids = %v, want 5", got)
	}
	var table ProcessTable
	data, _ := b.File(ProcessTableMember)
	if err := json.Unmarshal(data, &table); err != nil {
		t.Fatal(err)
	}
	rows := map[int]ProcessRow{}
	for _, r := range table.Processes {
		rows[r.Pid] = r
	}
	want := map[int]struct {
		state string
		ppid  int
	}{
		// An idle Go helper is S, or briefly R when its runtime wakes
		// (GC, sysmon) on a loaded machine: "SR" accepts either.
		threaded: {"SR", os.Getpid()}, parent: {"SR", os.Getpid()}, stopped: {"T", os.Getpid()},
		worker: {"SR", os.Getpid()}, zombie: {"Z", parent},
	}
	for pid, w := range want {
		r, ok := rows[pid]
		if !ok {
			t.Errorf("pid %d missing from the process table", pid)
			continue
		}
		if !strings.Contains(w.state, r.State) || r.State == "" || r.PPid != w.ppid {
			t.Errorf("pid %d: state %s ppid %d, want %s %d", pid, r.State, r.PPid, w.state, w.ppid)
		}
		raw, ok := b.File(fmt.Sprintf("proc/%d/stat", pid))
		if st, err := parseStat(raw); !ok || err != nil || !strings.Contains(w.state, st.State) {
			t.Errorf("pid %d: raw stat %q: %v", pid, raw, err)
		}
	}
	threads := 0
	for _, n := range b.Names() {
		if strings.HasPrefix(n, fmt.Sprintf("proc/%d/task/", threaded)) {
			threads++
		}
	}
	if threads < 5 {
		t.Errorf("threaded helper: %d task stats, want at least 5", threads)
	}
	hier := map[string]bool{}
	for _, c := range b.Manifest.Target.Resolved.Cgroups {
		hier[c.Hierarchy] = true
	}
	if mode := DefaultPaths().CgroupMode(); mode == ModeHybrid && (!hier["unified"] || !hier["memory"]) {
		t.Errorf("hybrid host: resolved hierarchies %v, want unified and memory", hier)
	}
	for _, pid := range b.Manifest.Target.Resolved.Pids {
		if pid == os.Getpid() {
			t.Error("dashcam captured itself")
		}
	}
}

// TestCapture200Processes is the acceptance check: a cgroup with 200
// processes gives a bundle with all 200.
func TestCapture200Processes(t *testing.T) {
	testutil.SkipInShort(t)
	cg := testutil.NewCgroup(t)
	var pids []int
	for range 200 {
		cmd := exec.Command("/bin/sh", "-c", "read x; exec sleep 1000")
		testutil.StartIn(t, cg, cmd)
		pids = append(pids, cmd.Process.Pid)
	}
	tg, err := Resolve(DefaultPaths(), Spec{Cgroup: cg.Path}, os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if len(tg.Pids) != 200 {
		t.Fatalf("resolved %d pids, want 200", len(tg.Pids))
	}
	res, err := Capture(context.Background(), Options{
		Config: Config{Paths: DefaultPaths()}, Target: tg, OutDir: t.TempDir(),
		Modules: DefaultModules(), Trigger: bundle.Trigger{Kind: "manual"},
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := bundle.Open(res.Path)
	if err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		for _, f := range []string{"stat", "status", "cmdline"} {
			if _, ok := b.File(fmt.Sprintf("proc/%d/%s", pid, f)); !ok {
				t.Errorf("proc/%d/%s missing", pid, f)
			}
		}
	}
	if b.Manifest.Counts.ProcessesSeen != 200 {
		t.Errorf("processes_seen = %d", b.Manifest.Counts.ProcessesSeen)
	}
}

// TestLowerPriority runs LowerPriority in a child process (it lowers the
// whole process for good) and checks every thread there.
func TestLowerPriority(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "DASHCAM_TEST_HELPER=priority")
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

// checkPriority is the child side of TestLowerPriority.
func checkPriority() error {
	if p := LowerPriority(); p.Error != "" {
		return fmt.Errorf("LowerPriority: %s", p.Error)
	}
	tasks, _ := os.ReadDir("/proc/self/task")
	for _, task := range tasks {
		raw, err := os.ReadFile("/proc/self/task/" + task.Name() + "/stat")
		if err != nil {
			continue
		}
		f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
		if nice := f[16]; nice != strconv.Itoa(CaptureNice) { // field 19
			return fmt.Errorf("thread %s: nice %s, want %d", task.Name(), nice, CaptureNice)
		}
	}
	// ioprio_get(IOPRIO_WHO_PROCESS, 0): the class is in the top bits.
	r, _, e := syscall.Syscall(syscall.SYS_IOPRIO_GET, ioprioWhoProcess, 0, 0)
	if e != 0 || r>>ioprioClassShift != ioprioClassIdle {
		return fmt.Errorf("io priority = %#x (%v), want idle class", r, e)
	}
	return nil
}
