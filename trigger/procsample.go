package trigger

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/dashcam-dev/dashcam/internal/kfile"
)

// ProcSample is one process at one sample.
type ProcSample struct {
	Pid  int    `json:"pid"`
	Comm string `json:"comm"`
	// CPUPercent is relative to one CPU since the previous process
	// sample; nil for a process not seen then.
	CPUPercent *float64 `json:"cpu_pct,omitempty"`
	RSSBytes   int64    `json:"rss_bytes"`
	Threads    int      `json:"threads"`
	// FDs is the number of open fds; nil when unreadable.
	FDs *int `json:"fds,omitempty"`
}

// ProcSampler reads the target's processes. It is slower than the cgroup
// counters (one /proc/<pid>/stat per process, ~13 µs each, plus a readdir
// of fd/), so the arm loop runs it less often unless a trigger is close.
type ProcSampler struct {
	g *Group
	// Match, when set, limits sampling to processes whose comm or
	// cmdline matches (the per-process CPU trigger's --match).
	Match *regexp.Regexp
	// FDs enables counting open fds.
	FDs  bool
	self int
	prev map[int]procTicks
}

type procTicks struct {
	t     time.Time
	ticks uint64
}

// NewProcSampler samples the processes of g, leaving out self.
func NewProcSampler(g *Group, self int) *ProcSampler {
	return &ProcSampler{g: g, self: self, prev: map[int]procTicks{}}
}

// userHZ is the unit of utime and stime in /proc/<pid>/stat.
const userHZ = 100

// Sample reads every process of the cgroup (recursively) at now.
func (p *ProcSampler) Sample(now time.Time) []ProcSample {
	pids := p.g.Pids()
	next := make(map[int]procTicks, len(pids))
	var out []ProcSample
	for _, pid := range pids {
		if pid == p.self {
			continue
		}
		dir := filepath.Join(p.g.paths.Proc, strconv.Itoa(pid))
		raw, err := kfile.Read(filepath.Join(dir, "stat"))
		if err != nil {
			continue // exited
		}
		comm, f := splitStat(raw)
		if len(f) < 22 {
			continue
		}
		if p.Match != nil && !p.Match.MatchString(comm) {
			cmd, _ := kfile.Read(filepath.Join(dir, "cmdline"))
			if !p.Match.Match(bytes.ReplaceAll(cmd, []byte{0}, []byte{' '})) {
				continue
			}
		}
		// Fields after comm: state is f[0], field N is f[N-3].
		ut, _ := strconv.ParseUint(string(f[11]), 10, 64)
		st, _ := strconv.ParseUint(string(f[12]), 10, 64)
		threads, _ := strconv.Atoi(string(f[17]))
		rss, _ := strconv.ParseInt(string(f[21]), 10, 64)
		ps := ProcSample{Pid: pid, Comm: comm, RSSBytes: rss * int64(os.Getpagesize()), Threads: threads}
		ticks := ut + st
		if prev, ok := p.prev[pid]; ok && ticks >= prev.ticks {
			if dt := now.Sub(prev.t).Seconds(); dt > 0 {
				pct := 100 * float64(ticks-prev.ticks) / userHZ / dt
				ps.CPUPercent = &pct
			}
		}
		next[pid] = procTicks{now, ticks}
		if p.FDs {
			if d, err := os.Open(filepath.Join(dir, "fd")); err == nil {
				names, err := d.Readdirnames(-1)
				d.Close()
				if err == nil {
					n := len(names)
					ps.FDs = &n
				}
			}
		}
		out = append(out, ps)
	}
	p.prev = next
	return out
}

// splitStat returns comm and the fields after it of /proc/<pid>/stat;
// comm runs to the last ')' since it may hold spaces and parentheses.
func splitStat(b []byte) (string, [][]byte) {
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return "", nil
	}
	return string(b[open+1 : end]), bytes.Fields(b[end+1:])
}

// Pids lists the processes of the target cgroup and its descendants from
// the first hierarchy that has it, reading each cgroup.procs to EOF.
func (g *Group) Pids() []int {
	for _, ctl := range []string{"unified", "memory", "pids", "cpu", "cpuacct", "systemd"} {
		d, ok := g.dirs[ctl]
		if !ok {
			continue
		}
		var pids []int
		_ = filepath.WalkDir(d.dir, func(path string, e os.DirEntry, err error) error {
			if err != nil || e.IsDir() || e.Name() != "cgroup.procs" {
				return nil
			}
			f, err := os.Open(path)
			if err != nil {
				return nil
			}
			defer f.Close()
			s := bufio.NewScanner(f)
			for s.Scan() {
				if pid, err := strconv.Atoi(s.Text()); err == nil {
					pids = append(pids, pid)
				}
			}
			return nil
		})
		return pids
	}
	return nil
}
