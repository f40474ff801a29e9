package analyze

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dashcam-dev/dashcam/bundle"
	"github.com/dashcam-dev/dashcam/capture"
	"github.com/dashcam-dev/dashcam/internal/testutil"
)

// placementStat is /proc/<pid>/stat with the fields placement reads:
// flags (9), nice (19), rt_priority (40) and policy (41).
func placementStat(pid int, comm, state string, flags uint, nice, rtprio, policy int) string {
	f := []string{strconv.Itoa(pid), "(" + comm + ")", state, "1", strconv.Itoa(pid), strconv.Itoa(pid), "0", "-1",
		strconv.FormatUint(uint64(flags), 10), "0", "0", "0", "0", "10", "10", "0", "0",
		strconv.Itoa(20 + nice), strconv.Itoa(nice), "1", "0", "100", "1000", "10", "18446744073709551615",
		"1", "1", "0", "0", "0", "0", "0", "0", "0", "0", "0", "0", "17", "0",
		strconv.Itoa(rtprio), strconv.Itoa(policy), "0", "0", "0", "0", "0", "0", "0", "0", "0", "0", "0"}
	if policy == 1 || policy == 2 {
		f[17] = strconv.Itoa(-1 - rtprio) // priority of a realtime task
	}
	return strings.Join(f, " ") + "\n"
}

func placementStatus(comm, cpus, mems string) string {
	return fmt.Sprintf("Name:\t%s\nState:\tS (sleeping)\nSigIgn:\t0000000000000000\nSigCgt:\t0000000000000000\nCpus_allowed:\tf\nCpus_allowed_list:\t%s\nMems_allowed:\t00000000,00000003\nMems_allowed_list:\t%s\nvoluntary_ctxt_switches:\t1\n", comm, cpus, mems)
}

// placementFiles is a 4-CPU, 2-node machine where eight workers are
// pinned to CPU 0, a database is bound to node 1, an audio thread runs
// SCHED_FIFO, a batch job and an idle job run beside them, and kernel
// threads are pinned and realtime by design.
func placementFiles() map[string][]byte {
	files := map[string][]byte{
		"sys/devices/system/cpu/online":           []byte("0-3\n"),
		"sys/devices/system/node/online":          []byte("0-1\n"),
		"sys/devices/system/node/node0/cpulist":   []byte("0-1\n"),
		"sys/devices/system/node/node0/meminfo":   []byte("Node 0 MemTotal:        8000000 kB\nNode 0 MemFree:         1000000 kB\nNode 0 MemUsed:         7000000 kB\n"),
		"sys/devices/system/node/node1/cpulist":   []byte("2-3\n"),
		"sys/devices/system/node/node1/meminfo":   []byte("Node 1 MemTotal:        8388608 kB\nNode 1 MemFree:         4194304 kB\n"),
		"sys/devices/system/node/node1/distance":  []byte("21 10\n"),
		"sys/devices/system/node/node12x/cpulist": []byte("junk\n"), // not a node directory
	}
	add := func(pid int, comm, state string, flags uint, nice, rtprio, policy int, cpus, mems string) {
		dir := "proc/" + strconv.Itoa(pid) + "/"
		files[dir+"stat"] = []byte(placementStat(pid, comm, state, flags, nice, rtprio, policy))
		files[dir+"status"] = []byte(placementStatus(comm, cpus, mems))
	}
	const user, kthread = 0x400100, 0x208040
	for i := range 8 {
		state := "S"
		if i < 3 {
			state = "R"
		}
		add(300+i, "worker", state, user, 0, 0, 0, "0", "0-1")
	}
	add(310, "audio", "S", user, 0, 50, 1, "0-3", "0-1")
	add(311, "backup", "S", user, 0, 0, 5, "0-3", "0-1")
	add(312, "db", "S", user, 0, 0, 0, "2-3", "1")
	add(313, "report", "R", user, 10, 0, 3, "0-3", "0-1")
	add(314, "web", "S", user, 0, 0, 0, "0-3", "0-1")
	add(315, "urgent", "S", user, -15, 0, 0, "0-3", "0-1")
	add(2, "migration/0", "S", kthread, 0, 99, 1, "0", "0-1")
	add(3, "ksoftirqd/0", "S", kthread, 0, 0, 0, "0", "0-1")
	return files
}

func TestPlacementFixture(t *testing.T) {
	r := load(t, bundle.New(fixtureManifest(), placementFiles()))
	p := r.Placement
	if p == nil {
		t.Fatal("no placement section")
	}
	if p.OnlineCPUs != "0-3" || p.OnlineNodes != "0-1" || p.Processes != 14 || p.KernelThreads != 2 {
		t.Errorf("header = %q %q %d processes %d kthreads", p.OnlineCPUs, p.OnlineNodes, p.Processes, p.KernelThreads)
	}
	if len(p.Nodes) != 2 || p.Nodes[0].CPUs != "0-1" || *p.Nodes[0].MemTotalBytes != 8000000*1024 || *p.Nodes[0].MemFreeBytes != 1000000*1024 ||
		p.Nodes[1].Node != 1 || p.Nodes[1].CPUs != "2-3" || *p.Nodes[1].MemTotalBytes != 8<<30 {
		t.Errorf("nodes = %+v", p.Nodes)
	}
	if len(p.Restricted) != 2 {
		t.Fatalf("restricted = %+v, want the workers and db", p.Restricted)
	}
	w := p.Restricted[0]
	if w.CPUs != "0" || w.CPUCount != 1 || w.Mems != "0-1" || w.Unusable != "1-3" || w.Processes != 8 || w.Runnable != 3 ||
		!slices.Equal(w.Pids, []int{300, 301, 302, 303, 304, 305, 306, 307}) || !slices.Equal(w.Comms, []CommCount{{"worker", 8}}) {
		t.Errorf("workers = %+v", w)
	}
	if want := "8 processes (worker ×8) may run only on CPU 0 of 4 online, 3 runnable: more than its 1 CPU, so they queue; CPUs 1-3 are out of their reach"; w.Finding != want {
		t.Errorf("finding = %q\nwant      %q", w.Finding, want)
	}
	db := p.Restricted[1]
	if db.CPUs != "2-3" || db.Mems != "1" || db.Processes != 1 || !strings.Contains(db.Finding, "may allocate memory only on node 1 of 2") {
		t.Errorf("db = %+v", db)
	}
	var sched []string
	for _, s := range p.Scheduling {
		sched = append(sched, fmt.Sprintf("%d %s %d %d", s.Pid, s.Policy, s.RTPriority, s.Nice))
	}
	if want := []string{"310 SCHED_FIFO 50 0", "311 SCHED_IDLE 0 0", "313 SCHED_BATCH 0 10", "315 SCHED_OTHER 0 -15"}; !slices.Equal(sched, want) {
		t.Errorf("scheduling = %q, want %q (realtime first, kernel threads left out)", sched, want)
	}

	var txt, mdown bytes.Buffer
	r.WriteText(&txt)
	r.WriteMarkdown(&mdown)
	for _, want := range []string{"Placement: online CPUs 0-3, 2 NUMA nodes; 14 processes examined (2 kernel threads left out)",
		"0     0-1   8      3         worker ×8", "310  audio   SCHED_FIFO"} {
		if !strings.Contains(txt.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, txt.String())
		}
	}
	if !strings.Contains(mdown.String(), "| 1 | 2-3 | 8.00 GiB | 4.00 GiB |") || !strings.Contains(mdown.String(), "| 310 | `audio` | SCHED\\_FIFO | 50 | 0 |") {
		t.Errorf("markdown:\n%s", mdown.String())
	}
}

// TestPlacementAbsent: the analyze fixture has no allowed lists, node
// files or unusual policies: the section is silent.
func TestPlacementAbsent(t *testing.T) {
	if r := load(t, fixtureBundle()); r.Placement != nil {
		t.Errorf("placement = %+v", r.Placement)
	}
}

func TestPlacementMalformed(t *testing.T) {
	files := placementFiles()
	files["proc/300/status"] = []byte("Cpus_allowed_list:\t0-99999999\n")
	files["sys/devices/system/node/node1/meminfo"] = []byte("Node 1 MemFree: 1 kB\n")
	files["sys/devices/system/cpu/online"] = []byte("3-1\n")
	r := load(t, bundle.New(fixtureManifest(), files))
	paths := map[string]bool{}
	for _, p := range r.Problems {
		paths[p.Path] = true
	}
	for _, want := range []string{"proc/300/status", "sys/devices/system/node/node1/meminfo", "sys/devices/system/cpu/online"} {
		if !paths[want] {
			t.Errorf("no problem reported for %s: %+v", want, r.Problems)
		}
	}
	// Online CPUs fall back to the manifest's count (4).
	if p := r.Placement; p == nil || p.OnlineCPUs != "" || len(p.Restricted) == 0 || p.Restricted[0].Unusable != "1-3" {
		t.Errorf("placement = %+v", p)
	}
}

// mapAdder collects members for bundle.New.
type mapAdder struct {
	mu    sync.Mutex
	files map[string][]byte
}

func (m *mapAdder) Add(name string, data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.files[name] = bytes.Clone(data)
	return nil
}

// TestPlacementSharedFixtures captures the shared fixture tree's
// payment.service and reads node0 back.
func TestPlacementSharedFixtures(t *testing.T) {
	root := filepath.Join("..", "testdata", "fixtures")
	p := capture.Paths{Proc: filepath.Join(root, "proc"), Sys: filepath.Join(root, "sys"), Cgroup: filepath.Join(root, "cgroup", "v2")}
	tg, err := capture.Resolve(p, capture.Spec{Unit: "payment.service"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := &mapAdder{files: map[string][]byte{}}
	capture.Run(context.Background(), tg, out, capture.RunOptions{Modules: []string{"procs", "host"}, Config: &capture.Config{Paths: p}})
	r := load(t, bundle.New(fixtureManifest(), out.files))
	pl := r.Placement
	if pl == nil {
		t.Fatal("no placement section")
	}
	if len(pl.Nodes) != 1 || pl.Nodes[0].Node != 0 || pl.Nodes[0].CPUs != "0-1" || *pl.Nodes[0].MemTotalBytes != 8000000*1024 {
		t.Errorf("nodes = %+v", pl.Nodes)
	}
	if pl.OnlineCPUs != "0-1" || len(pl.Restricted) != 0 || len(pl.Scheduling) != 0 || pl.Processes != 5 {
		t.Errorf("placement = %+v, want nothing restricted among 5 processes", pl)
	}
	// The fixture's kernel log is there too.
	if r.KernelLog == nil || len(r.KernelLog.OOMKills) != 1 || len(r.KernelLog.HungTasks) != 1 {
		t.Errorf("kernel log = %+v", r.KernelLog)
	}
}

// TestPlacementLive pins two processes of a test cgroup to CPU 0 with
// sched_setaffinity and lowers one to nice 15; the analyzer reports them
// restricted to CPU 0, and the nice one.
func TestPlacementLive(t *testing.T) {
	cg := testutil.NewCgroup(t)
	if runtime.NumCPU() < 2 {
		t.Skip("one CPU: pinning to CPU 0 restricts nothing")
	}
	var pids []int
	for range 2 {
		cmd := exec.Command("/bin/sh", "-c", "read x; exec sleep 1000")
		testutil.StartIn(t, cg, cmd)
		pids = append(pids, cmd.Process.Pid)
		var set unix.CPUSet
		set.Set(0)
		if err := unix.SchedSetaffinity(cmd.Process.Pid, &set); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Setpriority(unix.PRIO_PROCESS, pids[1], 15); err != nil {
		t.Fatal(err)
	}
	free := exec.Command("/bin/sh", "-c", "read x; exec sleep 1000")
	testutil.StartIn(t, cg, free)
	for _, pid := range append(pids, free.Process.Pid) {
		waitComm(t, pid, "sleep")
		testutil.WaitState(t, pid, "S")
	}

	tg, err := capture.Resolve(capture.DefaultPaths(), capture.Spec{Cgroup: cg.Path}, os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	res, err := capture.Capture(context.Background(), capture.Options{
		Config: capture.DefaultConfig(), Target: tg, OutDir: t.TempDir(), Modules: []string{"procs", "host"},
		Trigger: bundle.Trigger{Kind: "manual"}, ToolVersion: "test",
	})
	if err != nil {
		t.Fatal(err)
	}
	r, err := Open(res.Path)
	if err != nil {
		t.Fatal(err)
	}
	p := r.Placement
	if p == nil {
		t.Fatal("no placement section")
	}
	var pinned *PlacementGroup
	for i, g := range p.Restricted {
		if g.CPUs == "0" {
			pinned = &p.Restricted[i]
		}
	}
	if pinned == nil || !slices.Equal(pinned.Pids, pids) || pinned.Processes != 2 || pinned.CPUCount != 1 ||
		!strings.Contains(pinned.Finding, "2 processes (sleep ×2) may run only on CPU 0 of ") {
		t.Fatalf("restricted = %+v, want pids %v on CPU 0", p.Restricted, pids)
	}
	for _, g := range p.Restricted {
		if slices.Contains(g.Pids, free.Process.Pid) {
			t.Errorf("unpinned process %d reported restricted: %+v", free.Process.Pid, g)
		}
	}
	if len(p.Scheduling) != 1 || p.Scheduling[0].Pid != pids[1] || p.Scheduling[0].Nice != 15 || p.Scheduling[0].CPUs != "0" {
		t.Errorf("scheduling = %+v, want pid %d at nice 15", p.Scheduling, pids[1])
	}
	if len(p.Nodes) == 0 {
		t.Error("no NUMA node in the live bundle")
	}
}

// waitComm waits until the process pid has exec'd comm.
func waitComm(t *testing.T, pid int, comm string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
		if err == nil && strings.TrimSpace(string(b)) == comm {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d: comm %q, want %q (%v)", pid, b, comm, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
