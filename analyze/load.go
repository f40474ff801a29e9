package analyze

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/prometheus/procfs"

	"github.com/dashcam-dev/dashcam/bundle"
)

// topN is the length of the top CPU and top RSS lists.
const topN = 10

// Open reads the bundle at path and analyzes it.
func Open(path string) (*Report, error) {
	b, err := bundle.Open(path)
	if err != nil {
		return nil, err
	}
	return Load(b)
}

// Load analyzes b. It extracts b to a temporary directory, removed before
// it returns, and parses the raw kernel files there with procfs. Files
// that are absent make their facts unknown; files that do not parse are
// listed in Report.Problems. Load fails only when b cannot be extracted.
func Load(b *bundle.Bundle) (*Report, error) {
	if b == nil || b.Manifest == nil {
		return nil, errors.New("analyze: bundle has no manifest")
	}
	dir, err := os.MkdirTemp("", "dashcam-analyze-")
	if err != nil {
		return nil, fmt.Errorf("analyze: %w", err)
	}
	defer os.RemoveAll(dir)
	if err := b.Extract(dir); err != nil {
		return nil, fmt.Errorf("analyze: extract bundle: %w", err)
	}
	// A bundle without proc/ (host files and processes all missing) is
	// still a bundle; an empty tree makes every fact unknown.
	root := filepath.Join(dir, "proc")
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("analyze: %w", err)
	}
	pfs, err := procfs.NewFS(root)
	if err != nil {
		return nil, fmt.Errorf("analyze: %w", err)
	}
	a := &analyzer{fs: pfs, root: dir, b: b, r: fromManifest(b.Manifest)}
	a.host()
	a.processes()
	for _, s := range sections {
		s.load(a)
	}
	a.r.Findings = findings(a.r)
	return a.r, nil
}

// analyzer holds the state of one Load.
type analyzer struct {
	fs procfs.FS
	// root is the directory the bundle is extracted to, for procfs
	// parsers rooted elsewhere than proc/ (netns/<inode>/net/tcp).
	root string
	b    *bundle.Bundle
	r    *Report
}

func (a *analyzer) problem(path string, err error) {
	a.r.Problems = append(a.r.Problems, Problem{Path: path, Error: err.Error()})
}

// fromManifest fills in everything the manifest alone says.
func fromManifest(m *bundle.Manifest) *Report {
	r := &Report{
		SchemaVersion: SchemaVersion,
		Host: Host{
			Hostname:      m.Host.Hostname,
			KernelRelease: m.Host.KernelRelease,
			BootID:        m.Host.BootID,
			CPUs:          positive(m.Host.CPUs),
			MemTotalBytes: m.Host.MemTotalBytes,
			PageSize:      positive(m.Host.PageSize),
			ClockTicks:    positive(m.Host.ClockTicks),
			CgroupMode:    m.Host.CgroupMode,
		},
		Target:   Target{Kind: m.Target.Kind, Spec: m.Target.Spec, Cgroups: []Cgroup{}},
		Capture:  Capture{Trigger: m.Trigger.Kind, TriggerReason: m.Trigger.Reason},
		Pressure: []Pressure{},
		Zombies:  []ZombieGroup{},
		Blocked:  []Task{},
		States:   []StateCount{},
		TopCPU:   []Process{},
		TopRSS:   []Process{},
		Modules:  []Module{},
		Notes:    append([]string{}, m.Notes...),
		Problems: []Problem{},
		Counts: Counts{
			ProcessesSeen:     m.Counts.ProcessesSeen,
			ProcessesVanished: m.Counts.ProcessesVanished,
			ThreadsSeen:       m.Counts.ThreadsSeen,
		},
	}
	if m.Tool.Name != "" {
		r.Capture.Tool = m.Tool.Name + " " + m.Tool.Version
	}
	if res := m.Target.Resolved; res != nil {
		n := len(res.Pids)
		r.Target.PidCount = &n
		for _, c := range res.Cgroups {
			r.Target.Cgroups = append(r.Target.Cgroups, Cgroup{Hierarchy: c.Hierarchy, Path: c.Path, Pids: c.Pids})
		}
	}
	if !m.Started.IsZero() {
		t := m.Started.UTC()
		r.Capture.Started = &t
		if d := m.Ended.Sub(m.Started); !m.Ended.IsZero() && d >= 0 {
			s := d.Seconds()
			r.Capture.DurationSeconds = &s
		}
	}
	for _, mod := range m.Modules {
		r.Modules = append(r.Modules, Module{
			Name: mod.Name, Status: mod.Status, Reason: mod.Reason,
			DurationMS: mod.DurationMS, Errors: mod.Errors,
		})
	}
	for _, red := range m.Redactions {
		r.Redactions += red.Count
	}
	return r
}

// positive returns &n, or nil when n is not a real value (a manifest
// field the capture could not fill is zero).
func positive(n int) *int {
	if n <= 0 {
		return nil
	}
	return &n
}

// host reads proc/loadavg, proc/meminfo and proc/pressure/*.
func (a *analyzer) host() {
	if l, err := parse(a.fs.LoadAvg); err == nil {
		a.r.Load = &LoadAvg{Load1: l.Load1, Load5: l.Load5, Load15: l.Load15}
	} else if !errors.Is(err, fs.ErrNotExist) {
		a.problem("proc/loadavg", err)
	}
	if mi, err := parse(a.fs.Meminfo); err == nil {
		a.r.Host.MemAvailableBytes = mi.MemAvailableBytes
	} else if !errors.Is(err, fs.ErrNotExist) {
		a.problem("proc/meminfo", err)
	}
	// /proc/pressure needs Linux 4.20 with CONFIG_PSI (and not psi=0);
	// irq appeared in 6.1 with CONFIG_IRQ_TIME_ACCOUNTING.
	for _, res := range []string{"cpu", "memory", "io", "irq"} {
		name := "proc/pressure/" + res
		if _, ok := a.b.File(name); !ok {
			continue
		}
		st, err := parse(func() (procfs.PSIStats, error) { return a.fs.PSIStatsForResource(res) })
		if err != nil {
			a.problem(name, err)
			continue
		}
		a.r.Pressure = append(a.r.Pressure, Pressure{Resource: res, Some: psiLine(st.Some), Full: psiLine(st.Full)})
	}
}

func psiLine(l *procfs.PSILine) *PSILine {
	if l == nil {
		return nil
	}
	return &PSILine{Avg10: l.Avg10, Avg60: l.Avg60, Avg300: l.Avg300, TotalUS: l.Total}
}

// proc is one process as parsed from the bundle.
type proc struct {
	stat    procfs.ProcStat
	sig     *sigMasks // nil when status is absent or malformed
	cmdline []string  // nil when absent
	wchan   string
}

// processes reads every proc/<pid>/ directory of the bundle.
func (a *analyzer) processes() {
	all, err := a.fs.AllProcs()
	if err != nil {
		a.problem("proc", err)
		return
	}
	slices.SortFunc(all, func(x, y procfs.Proc) int { return cmp.Compare(x.PID, y.PID) })
	procs := make(map[int]*proc, len(all))
	var order []*proc
	for _, p := range all {
		if pr := a.process(p); pr != nil {
			procs[p.PID] = pr
			order = append(order, pr)
		}
	}
	a.r.Processes = len(order)
	a.states(order)
	a.top(order)
	a.zombies(order, procs)
	slices.SortFunc(a.r.Blocked, func(x, y Task) int {
		return cmp.Or(cmp.Compare(x.Pid, y.Pid), cmp.Compare(x.Tid, y.Tid))
	})
}

// process parses one process; it returns nil if its stat is unusable.
func (a *analyzer) process(p procfs.Proc) *proc {
	dir := "proc/" + strconv.Itoa(p.PID) + "/"
	st, err := parse(p.Stat)
	if err != nil {
		a.problem(dir+"stat", fmt.Errorf("process skipped: %w", statErr(err)))
		return nil
	}
	pr := &proc{stat: st}
	if data, ok := a.b.File(dir + "status"); ok {
		if pr.sig, err = parseSigMasks(bytes.NewReader(data)); err != nil {
			a.problem(dir+"status", err)
		}
	}
	if pr.cmdline, err = parse(p.CmdLine); err != nil && !errors.Is(err, fs.ErrNotExist) {
		a.problem(dir+"cmdline", err)
	}
	if pr.wchan, err = parse(p.Wchan); err != nil && !errors.Is(err, fs.ErrNotExist) {
		a.problem(dir+"wchan", err)
	}
	a.blocked(p, pr)
	return pr
}

// blocked adds the D-state threads of p to the report, or p itself when
// the bundle has no thread stats for it.
func (a *analyzer) blocked(p procfs.Proc, pr *proc) {
	mainListed := false
	threads, err := a.fs.AllThreads(p.PID)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		a.problem("proc/"+strconv.Itoa(p.PID)+"/task", err)
	}
	slices.SortFunc(threads, func(x, y procfs.Proc) int { return cmp.Compare(x.PID, y.PID) })
	for _, t := range threads {
		dir := "proc/" + strconv.Itoa(p.PID) + "/task/" + strconv.Itoa(t.PID) + "/"
		st, err := parse(t.Stat)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				a.problem(dir+"stat", fmt.Errorf("thread skipped: %w", statErr(err)))
			}
			continue
		}
		if st.State != "D" {
			continue
		}
		// capture copies only task/<tid>/stat today; a task wchan, if a
		// later capture adds it, beats the process's (main thread's) one.
		wchan, _ := parse(t.Wchan)
		if wchan == "" && t.PID == p.PID {
			wchan = pr.wchan
		}
		mainListed = mainListed || t.PID == p.PID
		a.r.Blocked = append(a.r.Blocked, Task{Pid: p.PID, Tid: t.PID, Comm: st.Comm, Wchan: wchan})
	}
	if pr.stat.State == "D" && !mainListed {
		a.r.Blocked = append(a.r.Blocked, Task{Pid: p.PID, Tid: p.PID, Comm: pr.stat.Comm, Wchan: pr.wchan})
	}
}

// statErr words a procfs stat error for a reader: procfs scans the
// fields with fmt.Fscan, which says only "EOF" when the file is short.
func statErr(err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return errors.New("absent")
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("truncated: %w", err)
	}
	return err
}

// stateOrder lists the states of fs/proc/array.c task_state_array (and
// of older kernels: x, K, W, P), with their names there.
var stateOrder = []struct{ state, name string }{
	{"R", "running"}, {"S", "sleeping"}, {"D", "disk sleep"}, {"Z", "zombie"},
	{"T", "stopped"}, {"t", "tracing stop"}, {"I", "idle"}, {"X", "dead"},
	{"x", "dead"}, {"K", "wakekill"}, {"W", "waking"}, {"P", "parked"},
}

func (a *analyzer) states(procs []*proc) {
	n := map[string]int{}
	for _, p := range procs {
		n[p.stat.State]++
	}
	for _, s := range stateOrder {
		if n[s.state] > 0 {
			a.r.States = append(a.r.States, StateCount{State: s.state, Name: s.name, Count: n[s.state]})
			delete(n, s.state)
		}
	}
	// States this analyzer does not know, in byte order.
	for _, s := range slices.Sorted(maps.Keys(n)) {
		a.r.States = append(a.r.States, StateCount{State: s, Count: n[s]})
	}
}

// top fills the top CPU and top RSS lists; processes with no CPU time or
// no resident memory are left out.
func (a *analyzer) top(procs []*proc) {
	rows := make([]Process, 0, len(procs))
	for _, p := range procs {
		rows = append(rows, a.row(p))
	}
	byCPU := slices.DeleteFunc(slices.Clone(rows), func(p Process) bool { return p.CPUTicks == 0 })
	slices.SortStableFunc(byCPU, func(x, y Process) int { return cmp.Compare(y.CPUTicks, x.CPUTicks) })
	a.r.TopCPU = byCPU[:min(topN, len(byCPU))]
	byRSS := slices.DeleteFunc(rows, func(p Process) bool { return p.RSSPages <= 0 })
	slices.SortStableFunc(byRSS, func(x, y Process) int { return cmp.Compare(y.RSSPages, x.RSSPages) })
	a.r.TopRSS = byRSS[:min(topN, len(byRSS))]
}

// row converts p with the capture machine's page size and USER_HZ, never
// this machine's.
func (a *analyzer) row(p *proc) Process {
	st := p.stat
	row := Process{
		Pid: st.PID, PPid: st.PPID, Comm: st.Comm, State: st.State, Threads: st.NumThreads,
		CPUTicks: uint64(st.UTime) + uint64(st.STime),
		RSSPages: int64(st.RSS),
		Cmdline:  p.cmdline,
	}
	if hz := a.r.Host.ClockTicks; hz != nil {
		s := float64(row.CPUTicks) / float64(*hz)
		row.CPUSeconds = &s
	}
	if ps := a.r.Host.PageSize; ps != nil && row.RSSPages >= 0 && row.RSSPages <= math.MaxInt64/int64(*ps) {
		b := row.RSSPages * int64(*ps)
		row.RSSBytes = &b
	}
	return row
}

// zombies groups the zombies by parent.
func (a *analyzer) zombies(order []*proc, procs map[int]*proc) {
	groups := map[int]*ZombieGroup{}
	for _, p := range order {
		if p.stat.State != "Z" {
			continue
		}
		g := groups[p.stat.PPID]
		if g == nil {
			g = &ZombieGroup{Parent: Parent{Pid: p.stat.PPID, SIGCHLD: "unknown"}}
			if pp := procs[p.stat.PPID]; pp != nil {
				g.Parent.Comm, g.Parent.State, g.Parent.SIGCHLD = pp.stat.Comm, pp.stat.State, pp.sig.sigchld()
			}
			groups[p.stat.PPID] = g
		}
		g.Zombies = append(g.Zombies, Zombie{Pid: p.stat.PID, Comm: p.stat.Comm})
	}
	for _, ppid := range slices.Sorted(maps.Keys(groups)) {
		g := groups[ppid]
		g.Advice = zombieAdvice(g.Parent, len(g.Zombies))
		a.r.Zombies = append(a.r.Zombies, *g)
	}
}

// zombieAdvice says what to do about n zombies of parent.
func zombieAdvice(parent Parent, n int) string {
	who := strconv.Itoa(parent.Pid)
	if parent.Comm != "" {
		who += " (" + clean(parent.Comm) + ")"
	}
	if n == 1 {
		return "zombie already exited; its parent " + who + " must reap it (wait) — killing the zombie does nothing"
	}
	return strconv.Itoa(n) + " zombies already exited; their parent " + who +
		" must reap them (wait) — killing the zombies does nothing"
}
