package trigger

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dashcam-dev/dashcam/capture"
	"github.com/dashcam-dev/dashcam/internal/testutil"
	"golang.org/x/sys/unix"
)

// Records as the kernel writes them (6.x), with a rate-limited summary,
// an escaped comm and continuation lines.
const oomRecords = `6,1001,5000000,-;tail invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0
6,1002,5000100,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,2,oom_memcg=/x,task_memcg=/x/y,task=tail,pid=1234,uid=0
3,1003,5000200,-,caller=T1234;Memory cgroup out of memory: Killed process 1234 (tail) total-vm:70000kB, anon-rss:61440kB, file-rss:1024kB, shmem-rss:8kB, UID:0 pgtables:180kB oom_score_adj:-100
 SUBSYSTEM=memory
3,1004,6000000,-;Out of memory: Killed process 99 (my\x20prog) (x)) total-vm:10kB, anon-rss:5kB, file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:4kB oom_score_adj:1000
`

func TestParseOOMRecords(t *testing.T) {
	var p oomParser
	var got []OOMVictim
	for _, r := range parseKmsg([]byte(oomRecords)) {
		if v, ok := p.record(r); ok {
			got = append(got, v)
		}
	}
	want := []OOMVictim{
		{Pid: 1234, Comm: "tail", TotalVMKB: 70000, AnonRSSKB: 61440, FileRSSKB: 1024, ShmemRSSKB: 8, PgTablesKB: 180, OOMScoreAdj: -100,
			Message: "Memory cgroup out of memory", Constraint: "CONSTRAINT_MEMCG", OOMMemcg: "/x", TaskMemcg: "/x/y", KmsgSeq: 1003, KmsgTimeUS: 5000200},
		// No summary record before it: the kernel rate-limited it.
		{Pid: 99, Comm: "my prog) (x)", TotalVMKB: 10, AnonRSSKB: 5, PgTablesKB: 4, UID: 1000, OOMScoreAdj: 1000,
			Message: "Out of memory", KmsgSeq: 1004, KmsgTimeUS: 6000000},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("victims:\n got %+v\nwant %+v", got, want)
	}
}

// logBuf is a logger writing to the test log and a buffer.
type logBuf struct {
	t  *testing.T
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuf) Write(b []byte) (int, error) {
	l.mu.Lock()
	l.b.Write(b)
	l.mu.Unlock()
	l.t.Log(strings.TrimSuffix(string(b), "\n"))
	return len(b), nil
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// fakeEvents is a v2 cgroup in a temporary tree whose memory.events the
// test writes, and a pipe standing in for /dev/kmsg.
type fakeEvents struct {
	file string
	kmsg *os.File // write end
}

func (f *fakeEvents) set(t *testing.T, oom, kill int) {
	t.Helper()
	// Same length every time, one write at offset 0: a reader never sees
	// a truncated file.
	b := fmt.Sprintf("low 0\nhigh 0\nmax %07d\noom %07d\noom_kill %07d\noom_group_kill 0\n", oom, oom, kill)
	fd, err := os.OpenFile(f.file, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	if _, err := fd.WriteAt([]byte(b), 0); err != nil {
		t.Fatal(err)
	}
}

func (f *fakeEvents) log(t *testing.T, pid int, oomMemcg, taskMemcg string) {
	t.Helper()
	rec := fmt.Sprintf("6,1,1,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=%s,task_memcg=%s,task=tail,pid=%d,uid=0\n"+
		"3,2,2,-;Memory cgroup out of memory: Killed process %d (tail) total-vm:70000kB, anon-rss:61440kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:180kB oom_score_adj:0\n",
		oomMemcg, taskMemcg, pid, pid)
	if _, err := f.kmsg.WriteString(rec); err != nil {
		t.Fatal(err)
	}
}

func newFakeEvents(t *testing.T, kmsgErr error) (*fakeEvents, *oomWatcher, *logBuf) {
	root := t.TempDir()
	dir := filepath.Join(root, "x")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f := &fakeEvents{file: filepath.Join(dir, "memory.events")}
	if err := os.WriteFile(f.file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	f.set(t, 0, 0)
	g := &Group{paths: capture.Paths{Proc: root}, Path: "/x", dirs: map[string]hierDir{"unified": {root, dir}}}
	lb := &logBuf{t: t}
	w := NewOOM(g, slog.New(slog.NewTextHandler(lb, nil))).(*oomWatcher)
	if kmsgErr != nil {
		w.openKmsg = func() (*os.File, error) { return nil, kmsgErr }
	} else {
		r, wr, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { wr.Close() })
		f.kmsg = wr
		w.openKmsg = func() (*os.File, error) { return r, nil }
	}
	return f, w, lb
}

// TestOOMEventsV2 drives the v2 path with a memory.events file the test
// writes (inotify reports its changes as the kernel's would) and records
// written to a pipe in place of /dev/kmsg.
func TestOOMEventsV2(t *testing.T) {
	f, w, lb := newFakeEvents(t, nil)
	ready := make(chan struct{})
	w.ready = func() { close(ready) }
	r := startWatch(t, w)
	waitReady(t, r, ready)
	noEvent := func(why string) {
		t.Helper()
		select {
		case e := <-r.events:
			t.Fatalf("%s: fired %+v", why, e.Event)
		case <-time.After(2 * w.victimWait):
		}
	}

	// oom without a kill: logged, not fired.
	f.set(t, 1, 0)
	noEvent("oom without a kill")
	if !strings.Contains(lb.String(), "OOM without a kill") {
		t.Error("an oom without a kill was not logged")
	}

	// A kill, its record first.
	f.log(t, 1234, "/x", "/x/y")
	f.set(t, 2, 1)
	e := r.next(t, 2*time.Second)
	v, _ := e.Evidence["victim"].(OOMVictim)
	if e.Kind != "oom" || v.Pid != 1234 || v.Comm != "tail" || e.Evidence["source"] != "memory.events" || e.Evidence["memcg"] != "/x" {
		t.Errorf("event = %+v", e.Event)
	}
	if want := "OOM kill in /x: pid 1234 (tail), anon-rss 60.0 MiB"; e.Reason != want {
		t.Errorf("reason = %q, want %q", e.Reason, want)
	}
	c := e.Evidence["counters"].(map[string]any)
	if c["before"].(map[string]uint64)["oom_kill"] != 0 || c["after"].(map[string]uint64)["oom_kill"] != 1 {
		t.Errorf("counters = %v", c)
	}
	if e.lag > 50*time.Millisecond {
		t.Errorf("fired %s after the notification; the record was already there", e.lag)
	}

	// A kill whose record comes after the notification: waited for.
	f.set(t, 3, 2)
	time.Sleep(w.victimWait / 4)
	f.log(t, 1300, "/x", "/x")
	e = r.next(t, 2*time.Second)
	if v, _ := e.Evidence["victim"].(OOMVictim); v.Pid != 1300 {
		t.Errorf("late record: event = %+v", e.Event)
	}

	// Another cgroup's kill in the log is not ours: fired without a victim.
	f.log(t, 1400, "/other", "/other")
	f.set(t, 4, 3)
	e = r.next(t, 2*time.Second)
	if _, ok := e.Evidence["victim"]; ok || !strings.Contains(e.Reason, "oom_kill 2→3") || !strings.Contains(e.Evidence["victim_note"].(string), "no kernel log record") {
		t.Errorf("kill without a record: event = %+v", e.Event)
	}

	// Removal of the file (the cgroup) ends the watch.
	if err := os.Remove(f.file); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.done:
		if !errors.Is(r.err, ErrGroupGone) {
			t.Errorf("Watch = %v, want ErrGroupGone", r.err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Watch still running after memory.events was removed")
	}
}

// TestOOMNoKernelLog: an unreadable kernel log still fires, saying why
// the victim is unknown.
func TestOOMNoKernelLog(t *testing.T) {
	f, w, _ := newFakeEvents(t, &fs.PathError{Op: "open", Path: "/dev/kmsg", Err: unix.EPERM})
	ready := make(chan struct{})
	w.ready = func() { close(ready) }
	r := startWatch(t, w)
	waitReady(t, r, ready)
	f.set(t, 1, 1)
	e := r.next(t, 2*time.Second)
	if _, ok := e.Evidence["victim"]; ok || !strings.Contains(e.Reason, "kernel log unreadable (open /dev/kmsg: operation not permitted)") {
		t.Errorf("event = %+v", e.Event)
	}
	if e.lag > 50*time.Millisecond {
		t.Errorf("fired %s after the notification; nothing to wait for", e.lag)
	}
}

func TestOOMUnsupported(t *testing.T) {
	dir := t.TempDir()
	g := &Group{Path: "/x", dirs: map[string]hierDir{"unified": {dir, dir}, "pids": {dir, dir}}}
	err := NewOOM(g, nil).Watch(t.Context(), func(Event) { t.Error("fired") })
	if !errors.Is(err, ErrUnsupported) {
		t.Errorf("Watch = %v, want ErrUnsupported", err)
	}
}

// TestOOMLive: a child allocating without bound (tail /dev/zero keeps one
// endless line) in a cgroup limited to 64 MiB is OOM-killed; the watcher
// fires, naming it. On this hybrid host the v1 memory controller enforces
// the limit, so the source is memory.oom_control; on a v2 host it is
// memory.events.
func TestOOMLive(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCgroup(t)
	source := "memory.oom_control"
	if d := c.Dir("unified"); d != "" && fileExists(filepath.Join(d, "memory.events")) {
		source = "memory.events"
		c.Set(t, "unified", "memory.max", "64M")
		c.Set(t, "unified", "memory.swap.max", "0")
	} else {
		c.Set(t, "memory", "memory.limit_in_bytes", "64M")
	}
	_, g := liveGroup(t, c)
	w := NewOOM(g, testLogger(t))
	ready := make(chan struct{})
	w.(*oomWatcher).ready = func() { close(ready) }
	r := startWatch(t, w)
	waitReady(t, r, ready)

	cmd := exec.Command("sh", "-c", "read x; exec tail /dev/zero")
	start := time.Now()
	testutil.StartIn(t, c, cmd)
	e := r.next(t, 10*time.Second)
	var now unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &now)
	v, _ := e.Evidence["victim"].(OOMVictim)
	t.Logf("fired %s after the start, %s after the cgroup notification; kernel record → fire ≈ %s: %s",
		time.Since(start).Round(time.Millisecond), e.lag.Round(time.Microsecond),
		(time.Duration(now.Nano()) - time.Duration(v.KmsgTimeUS)*time.Microsecond).Round(time.Microsecond), e.Reason)
	if e.Kind != "oom" || v.Pid != cmd.Process.Pid || v.Comm != "tail" || e.Evidence["source"] != source || e.Evidence["memcg"] != c.Path {
		t.Errorf("event = %+v, want victim pid %d (tail) from %s", e.Event, cmd.Process.Pid, source)
	}
	if v.AnonRSSKB < 32<<10 || v.OOMMemcg != c.Path || v.TaskMemcg != c.Path {
		t.Errorf("victim = %+v, want > 32 MiB anon in %s", v, c.Path)
	}
	cs := e.Evidence["counters"].(map[string]any)
	if b, a := cs["before"].(map[string]uint64)["oom_kill"], cs["after"].(map[string]uint64)["oom_kill"]; a != b+1 {
		t.Errorf("oom_kill %d→%d, want +1", b, a)
	}
	took, err := r.stop(t)
	if err != nil || took > time.Second {
		t.Errorf("Watch returned %v %s after cancel; want nil within 1 s", err, took)
	}
	t.Logf("returned %s after cancel", took)
}

// TestOOMGroupRemoved: removing the cgroup ends the watch with
// ErrGroupGone (v1 signals the eventfd once more on removal: that is not
// an OOM).
func TestOOMGroupRemoved(t *testing.T) {
	testutil.RequireRoot(t)
	sub := testutil.NewCgroup(t).Sub(t, "gone")
	_, g := liveGroup(t, sub)
	w := NewOOM(g, testLogger(t))
	ready := make(chan struct{})
	w.(*oomWatcher).ready = func() { close(ready) }
	r := startWatch(t, w)
	waitReady(t, r, ready)
	for _, d := range sub.Dirs {
		if err := os.Remove(d); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case e := <-r.events:
		t.Errorf("fired on removal: %+v", e.Event)
	case <-r.done:
		if !errors.Is(r.err, ErrGroupGone) {
			t.Errorf("Watch = %v, want ErrGroupGone", r.err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Watch still running 2 s after its cgroup was removed")
	}
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }
