package capture

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/dashcam-dev/dashcam/analyze"
	"github.com/dashcam-dev/dashcam/bundle"
	"github.com/dashcam-dev/dashcam/internal/testutil"
)

// fdTree builds a fake /proc holding process 100 whose fd links are real
// symlinks (git cannot carry /proc's magic links, so they are made here)
// and whose fdinfo is the fixture's, sampled on Linux 6.18. fd 4 points
// at a real file whose name ends in " (deleted)", so that stat through
// the link finds it, as it finds an unlinked file on the real /proc.
func fdTree(t *testing.T) (Paths, map[int]string) {
	t.Helper()
	root := t.TempDir()
	fixture, err := filepath.Abs(filepath.Join(fixtures(t, ModeV2).Proc, "100", "fdinfo"))
	if err != nil {
		t.Fatal(err)
	}
	deleted := filepath.Join(root, "upload-1234 (deleted)")
	if err := os.WriteFile(deleted, []byte("hello world"), 0o600); err != nil {
		t.Fatal(err)
	}
	links := map[int]string{
		0: "/dev/null", 1: "pipe:[118880]", 2: "pipe:[118880]",
		3: "/var/log/payment/app.log", 4: deleted,
		5: "anon_inode:[eventfd]", 6: "anon_inode:[eventpoll]", 7: "anon_inode:inotify",
		8: "anon_inode:[timerfd]", 9: "socket:[4242]", 10: "socket:[4243]",
	}
	dir := filepath.Join(root, "proc", "100")
	if err := os.MkdirAll(filepath.Join(dir, "fd"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(fixture, filepath.Join(dir, "fdinfo")); err != nil {
		t.Fatal(err)
	}
	for fd, target := range links {
		if err := os.Symlink(target, filepath.Join(dir, "fd", strconv.Itoa(fd))); err != nil {
			t.Fatal(err)
		}
	}
	return Paths{Proc: filepath.Join(root, "proc")}, links
}

func runFDs(t *testing.T, p Paths, all bool, pids ...int) (*memAdder, bundle.ModuleResult, Report) {
	t.Helper()
	register("t-fds", false, func(c *Config) Module { return &fds{paths: c.Paths, allInfo: all} })
	defer delete(registry, "t-fds")
	out := newMemAdder()
	rep := Run(context.Background(), &Target{Pids: pids}, out, RunOptions{Modules: []string{"t-fds"}, Config: &Config{Paths: p}})
	return out, rep.Modules[0], rep
}

func TestFDsSelectiveFDInfo(t *testing.T) {
	p, links := fdTree(t)
	out, res, rep := runFDs(t, p, false, 100, 4000000)
	if res.Status != bundle.StatusOK {
		t.Errorf("status %s (%s) %v", res.Status, res.Reason, res.Errors)
	}
	if rep.Counts.ProcessesVanished != 1 {
		t.Errorf("vanished = %d, want 1 (pid 4000000)", rep.Counts.ProcessesVanished)
	}

	var table FDTable
	if err := json.Unmarshal(out.files["proc/100/fd.json"], &table); err != nil {
		t.Fatalf("fd.json: %v\n%s", err, out.files["proc/100/fd.json"])
	}
	if table.Version != 1 || table.FDInfo != "selective" || !maps.Equal(table.FDs, links) {
		t.Errorf("fd.json = %+v, want version 1, selective, %v", table, links)
	}
	if want := map[int]int64{4: 11}; !maps.Equal(table.DeletedSizes, want) {
		t.Errorf("deleted_sizes = %v, want %v", table.DeletedSizes, want)
	}
	// fdinfo of files, /dev nodes and anon inodes, byte for byte; none
	// for pipes and sockets.
	for fd := range 11 {
		name := fmt.Sprintf("proc/100/fdinfo/%d", fd)
		got, ok := out.files[name]
		want := slices.Contains([]int{0, 3, 4, 5, 6, 7, 8}, fd)
		if ok != want {
			t.Errorf("%s copied = %v, want %v (target %s)", name, ok, want, links[fd])
			continue
		}
		if raw, _ := os.ReadFile(filepath.Join(p.Proc, "100", "fdinfo", strconv.Itoa(fd))); ok && !bytes.Equal(got, raw) {
			t.Errorf("%s differs from the kernel file", name)
		}
	}
	if !bytes.Contains(out.files["proc/100/fdinfo/6"], []byte("tfd:        5 events:")) {
		t.Errorf("epoll fdinfo lost its interest list: %q", out.files["proc/100/fdinfo/6"])
	}
	if n := len(out.files); n != 8 || res.Members != 8 {
		t.Errorf("%d members (module says %d), want fd.json and 7 fdinfo", n, res.Members)
	}
}

func TestFDsAllFDInfo(t *testing.T) {
	p, links := fdTree(t)
	out, res, _ := runFDs(t, p, true, 100)
	if res.Status != bundle.StatusOK {
		t.Errorf("status %s (%s)", res.Status, res.Reason)
	}
	for fd := range links {
		if _, ok := out.files[fmt.Sprintf("proc/100/fdinfo/%d", fd)]; !ok {
			t.Errorf("fdinfo/%d missing with allInfo", fd)
		}
	}
	if !bytes.Contains(out.files["proc/100/fd.json"], []byte(`"fdinfo": "all"`)) {
		t.Errorf("fd.json does not say all: %s", out.files["proc/100/fd.json"])
	}
}

// TestFDsBrokenTree: a live process always has an fd directory; a tree
// without one (the fixtures) is reported, not read as "no fds".
func TestFDsBrokenTree(t *testing.T) {
	out, rep := runFixture(t, ModeV2, Spec{Pids: []int{102}}, "fds")
	if m := rep.Modules[0]; m.Status != bundle.StatusPartial || !strings.Contains(m.Reason, "proc/102/fd") {
		t.Errorf("module = %+v, want partial naming proc/102/fd", m)
	}
	if _, ok := out.files["proc/102/fd.json"]; ok {
		t.Error("fd.json written for a process whose fds are unknown")
	}
}

func TestFDKinds(t *testing.T) {
	for target, want := range map[string]bool{
		"socket:[1]": false, "pipe:[2]": false, "/dev/null": true, "anon_inode:[eventfd]": true,
		"/x (deleted)": true, "/memfd:a (deleted)": true, "net:[4026531840]": true,
	} {
		if got := fdInfoAdds(target); got != want {
			t.Errorf("fdInfoAdds(%q) = %v, want %v", target, got, want)
		}
	}
}

// fdsHelper is the "fds" helper process: it opens a known set of fds in
// DASHCAM_TEST_DIR and keeps them: 20 files, 3 pipes, an eventfd with
// count 7, an epoll watching it, an inotify watch, and a 1 MiB file
// unlinked while open.
func fdsHelper() {
	dir := os.Getenv("DASHCAM_TEST_DIR")
	fail := func(err error) {
		fmt.Println("error", err)
		os.Exit(1)
	}
	var keep []any
	for i := range 20 {
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("file-%d", i)))
		if err != nil {
			fail(err)
		}
		keep = append(keep, f)
	}
	for range 3 {
		r, w, err := os.Pipe()
		if err != nil {
			fail(err)
		}
		keep = append(keep, r, w)
	}
	efd, err := unix.Eventfd(7, unix.EFD_CLOEXEC)
	if err != nil {
		fail(err)
	}
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		fail(err)
	}
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, efd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(efd)}); err != nil {
		fail(err)
	}
	in, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		fail(err)
	}
	if _, err := unix.InotifyAddWatch(in, dir, unix.IN_CREATE); err != nil {
		fail(err)
	}
	big, err := os.Create(filepath.Join(dir, "deleted-big"))
	if err != nil {
		fail(err)
	}
	if _, err := big.Write(make([]byte, 1<<20)); err != nil {
		fail(err)
	}
	if err := os.Remove(big.Name()); err != nil {
		fail(err)
	}
	keep = append(keep, big)
	fdsKeep = keep
}

// fdsKeep keeps the helper's *os.File values reachable: a collected
// *os.File closes its fd.
var fdsKeep []any

// fdDir lists /proc/<pid>/fd as ls does.
func fdDir(t *testing.T, pid int) map[int]string {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	names, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]string{}
	for _, n := range names {
		fd, _ := strconv.Atoi(n.Name())
		if out[fd], err = os.Readlink(filepath.Join(dir, n.Name())); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestFDsLive captures a helper with a known fd table and checks the
// bundle against /proc read right before and after, and the analyzer's
// finding of the deleted file.
func TestFDsLive(t *testing.T) {
	cg := testutil.NewCgroup(t)
	dir := t.TempDir()
	t.Setenv("DASHCAM_TEST_DIR", dir)
	pid, line := startHelper(t, cg, "fds")
	if line != "ready" {
		t.Fatalf("helper: %s", line)
	}
	before := fdDir(t, pid)

	tg, err := Resolve(DefaultPaths(), Spec{Cgroup: cg.Path}, os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	res, err := Capture(context.Background(), Options{
		Config: Config{Paths: DefaultPaths()}, Target: tg, OutDir: t.TempDir(),
		Modules: []string{"procs", "fds"}, Trigger: bundle.Trigger{Kind: "manual"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if after := fdDir(t, pid); !maps.Equal(before, after) {
		t.Fatalf("helper's fds changed during the capture:\n%v\n%v", before, after)
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
	data, _ := b.File(FDTableMember(pid))
	var table FDTable
	if err := json.Unmarshal(data, &table); err != nil {
		t.Fatalf("fd.json: %v", err)
	}
	if !maps.Equal(table.FDs, before) {
		t.Errorf("captured %d fds, /proc/%d/fd has %d:\n%v\n%v", len(table.FDs), pid, len(before), table.FDs, before)
	}

	var files, eventfd, epoll int
	pipes := map[string]int{} // ends per pipe: the helper's 3 pipes have 2
	for fd, target := range table.FDs {
		info, hasInfo := b.File(fmt.Sprintf("proc/%d/fdinfo/%d", pid, fd))
		switch {
		case strings.HasPrefix(target, filepath.Join(dir, "file-")):
			files++
		case strings.HasPrefix(target, "pipe:["):
			pipes[target]++
			if hasInfo {
				t.Errorf("fdinfo of pipe fd %d copied", fd)
			}
		case target == "anon_inode:[eventfd]":
			if bytes.Contains(info, []byte("eventfd-count:                7")) {
				eventfd = fd
			}
		}
		if !hasInfo && fdInfoAdds(target) {
			t.Errorf("fd %d (%s): no fdinfo", fd, target)
		}
	}
	if eventfd == 0 {
		t.Fatal("no eventfd with count 7 in the bundle")
	}
	// The Go runtime has an epoll of its own; ours watches the eventfd.
	for fd, target := range table.FDs {
		info, _ := b.File(fmt.Sprintf("proc/%d/fdinfo/%d", pid, fd))
		if target == "anon_inode:[eventpoll]" && bytes.Contains(info, fmt.Appendf(nil, "tfd: %8d events:", eventfd)) {
			epoll = fd
		}
	}
	pairs := 0
	for _, ends := range pipes {
		if ends == 2 {
			pairs++
		}
	}
	// stdin, stdout and any pipe inherited from the test's own parent
	// have one end here.
	if files != 20 || pairs != 3 || epoll == 0 {
		t.Errorf("files %d (want 20), pipes with both ends %d (want 3), epoll watching the eventfd: %v", files, pairs, epoll != 0)
	}

	rep, err := analyze.Open(res.Path)
	if err != nil {
		t.Fatal(err)
	}
	if rep.FDs == nil {
		t.Fatal("analyzer: no fds section")
	}
	var found bool
	for _, d := range rep.FDs.Deleted {
		if d.Pid == pid && d.Path == filepath.Join(dir, "deleted-big") {
			found = true
			if d.SizeBytes == nil || *d.SizeBytes != 1<<20 || d.Pos == nil || *d.Pos != 1<<20 {
				t.Errorf("deleted file: size %v pos %v, want 1 MiB each", d.SizeBytes, d.Pos)
			}
		}
	}
	if !found {
		t.Errorf("analyzer did not report the deleted file: %+v", rep.FDs.Deleted)
	}
}

// TestFDsLsof compares the number of fds of each workload process with
// lsof's (numeric FD rows only: lsof adds cwd, rtd, txt and mem rows).
func TestFDsLsof(t *testing.T) {
	lsof, err := exec.LookPath("lsof")
	if err != nil {
		testutil.SkipOrFail(t, "lsof not installed (apt-get install lsof)")
	}
	cg := testutil.NewCgroup(t)
	t.Setenv("DASHCAM_TEST_DIR", t.TempDir())
	startHelper(t, cg, "fds")
	startHelper(t, cg, "threads")
	startHelper(t, cg, "sleep")

	tg, err := Resolve(DefaultPaths(), Spec{Cgroup: cg.Path}, os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	out := newMemAdder()
	rep := Run(context.Background(), tg, out, RunOptions{Modules: []string{"fds"}, Config: &Config{Paths: DefaultPaths()}})
	if m := rep.Modules[0]; m.Status != bundle.StatusOK {
		t.Fatalf("fds: %s (%s)", m.Status, m.Reason)
	}
	for _, pid := range tg.Pids {
		var table FDTable
		if err := json.Unmarshal(out.files[FDTableMember(pid)], &table); err != nil {
			t.Fatalf("pid %d: %v", pid, err)
		}
		// -F f prints one "f<fd>" line per file; -w: no warnings.
		cmd := exec.Command(lsof, "-w", "-n", "-P", "-p", strconv.Itoa(pid), "-F", "f")
		raw, err := cmd.Output()
		if err != nil {
			t.Fatalf("lsof -p %d: %v", pid, err)
		}
		var numeric []int
		sc := bufio.NewScanner(bytes.NewReader(raw))
		for sc.Scan() {
			if fd, err := strconv.Atoi(strings.TrimPrefix(sc.Text(), "f")); err == nil && strings.HasPrefix(sc.Text(), "f") {
				numeric = append(numeric, fd)
			}
		}
		got := slices.Sorted(maps.Keys(table.FDs))
		slices.Sort(numeric)
		if !slices.Equal(got, numeric) {
			t.Errorf("pid %d: dashcam fds %v, lsof %v", pid, got, numeric)
		}
		if len(got) < 3 {
			t.Errorf("pid %d: only %d fds: the comparison proves nothing", pid, len(got))
		}
	}
}

// fdBenchHelper is the "fd-bench" helper: 20 files, 10 pipes (20 fds)
// and 5 socket pairs (10 fds): 50 fds besides the runtime's own, a
// typical mix of a service (half of them sockets and pipes).
func fdBenchHelper() {
	for range 20 {
		f, err := os.Open("/proc/self/stat")
		if err != nil {
			os.Exit(1)
		}
		fdsKeep = append(fdsKeep, f)
	}
	for range 10 {
		r, w, err := os.Pipe()
		if err != nil {
			os.Exit(1)
		}
		fdsKeep = append(fdsKeep, r, w)
	}
	for range 5 {
		if _, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0); err != nil {
			os.Exit(1)
		}
	}
}

// BenchmarkFDs compares, on 100 processes with ~55 fds each:
//   - links: listing fd/ and reading every link, the floor of any fd capture;
//   - raw-all: links plus every fdinfo, the plain "read everything" bound;
//   - module-all: the fds module reading every fdinfo (into memory);
//   - module: the fds module as it runs, fdinfo only where it adds (no
//     sockets or pipes).
func BenchmarkFDs(b *testing.B) {
	cg := testutil.NewCgroup(b)
	var pids []int
	for range 100 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "DASHCAM_TEST_HELPER=fd-bench")
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		testutil.StartIn(b, cg, cmd)
		if _, err := bufio.NewReader(stdout).ReadString('\n'); err != nil {
			b.Fatal(err)
		}
		pids = append(pids, cmd.Process.Pid)
	}
	slices.Sort(pids)
	fdCount := 0
	for _, pid := range pids {
		names, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		fdCount += len(names)
	}
	b.Logf("%d processes, %d fds", len(pids), fdCount)

	readAll := func(info bool) {
		for _, pid := range pids {
			dir := fmt.Sprintf("/proc/%d/", pid)
			names, _ := os.ReadDir(dir + "fd")
			for _, n := range names {
				_, _ = os.Readlink(dir + "fd/" + n.Name())
				if info {
					_, _ = os.ReadFile(dir + "fdinfo/" + n.Name())
				}
			}
		}
	}
	b.Run("links", func(b *testing.B) {
		for b.Loop() {
			readAll(false)
		}
	})
	b.Run("raw-all", func(b *testing.B) {
		for b.Loop() {
			readAll(true)
		}
	})
	for _, all := range []bool{true, false} {
		name := "module"
		if all {
			name = "module-all"
		}
		b.Run(name, func(b *testing.B) {
			m := &fds{paths: DefaultPaths(), allInfo: all}
			var members int
			for b.Loop() {
				s := newSink("fds", newMemAdder())
				// A new Target each time: FDLinks memoizes per capture.
				if err := m.Run(context.Background(), &Target{Pids: pids}, s); err != nil {
					b.Fatal(err)
				}
				members = s.members
			}
			b.ReportMetric(float64(members), "members")
		})
	}
}
