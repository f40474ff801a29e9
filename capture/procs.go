package capture

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/dashcam-dev/dashcam/capture/redact"
)

func init() {
	register("procs", true, func(c *Config) Module { return &procs{paths: c.Paths, environ: c.Environ} })
}

// procs copies the state of every target process: raw /proc/<pid> files
// and each thread's stat, plus a derived process table for humans and jq.
type procs struct {
	paths   Paths
	environ bool
}

// procFiles are copied byte for byte from /proc/<pid>/ after stat.
// cmdline and environ are redacted and handled apart.
var procFiles = []string{
	"status", "limits", "cgroup", "sched", "wchan", "syscall", "io",
	"oom_score", "oom_score_adj",
}

// ProcessTableMember is the derived process table, one row per process.
const ProcessTableMember = "dashcam/processes.json"

// ProcessTable is the JSON layout of ProcessTableMember (version 1).
type ProcessTable struct {
	Version   int          `json:"version"`
	Processes []ProcessRow `json:"processes"`
}

// ProcessRow is one process as the kernel showed it at capture time.
type ProcessRow struct {
	Pid      int               `json:"pid"`
	PPid     int               `json:"ppid"`
	State    string            `json:"state"`
	Comm     string            `json:"comm"`
	Threads  int               `json:"threads"`
	UTicks   uint64            `json:"utime_ticks"`
	STicks   uint64            `json:"stime_ticks"`
	RSSBytes int64             `json:"rss_bytes"`
	Cgroups  map[string]string `json:"cgroups,omitempty"`
}

func (m *procs) Run(ctx context.Context, t *Target, s *Sink) error {
	table := ProcessTable{Version: 1, Processes: []ProcessRow{}}
	for _, pid := range t.Pids {
		if err := ctx.Err(); err != nil {
			return err
		}
		if row, ok := m.process(pid, s); ok {
			table.Processes = append(table.Processes, row)
		}
	}
	data, err := json.MarshalIndent(table, "", "  ")
	if err != nil {
		return err
	}
	return s.Add(ProcessTableMember, data)
}

// process copies one process. It returns false if the process was gone
// before its stat could be read.
func (m *procs) process(pid int, s *Sink) (ProcessRow, bool) {
	var (
		dir    = filepath.Join(m.paths.Proc, strconv.Itoa(pid))
		member = "proc/" + strconv.Itoa(pid) + "/"
	)
	raw, err := s.Copy(member+"stat", filepath.Join(dir, "stat"))
	if err != nil {
		if isGone(err) {
			s.Vanished(pid)
		}
		return ProcessRow{}, false
	}
	row := ProcessRow{Pid: pid}
	if st, err := parseStat(raw); err != nil {
		s.Problem("%sstat: %v", member, err)
	} else {
		row.PPid, row.State, row.Comm, row.Threads = st.PPid, st.State, st.Comm, st.NumThreads
		row.UTicks, row.STicks = st.UTime, st.STime
		row.RSSBytes = st.RSSPages * int64(os.Getpagesize())
	}
	for _, name := range procFiles {
		data, err := s.Copy(member+name, filepath.Join(dir, name))
		if err != nil && isGone(err) && !exists(dir) {
			s.Vanished(pid)
			return row, true
		}
		// A file missing while the process lives is a kernel option
		// (sched needs CONFIG_SCHED_DEBUG, io CONFIG_TASK_IO_ACCOUNTING):
		// absent from the bundle, which the analyzer reads as "unknown".
		if name == "cgroup" && err == nil {
			row.Cgroups = parseProcCgroup(data)
		}
	}
	m.redacted(pid, s, member+"cmdline", filepath.Join(dir, "cmdline"), redact.Cmdline)
	if m.environ {
		m.redacted(pid, s, member+"environ", filepath.Join(dir, "environ"), redact.Environ)
	}
	m.tasks(pid, dir, member, s)
	return row, true
}

// redacted copies a file through a redaction function and records what
// was replaced, never the value.
func (m *procs) redacted(pid int, s *Sink, member, path string, fn func([]byte) ([]byte, []redact.Hit)) {
	raw, err := readFile(path)
	if err != nil {
		s.fileError(member, err)
		return
	}
	clean, hits := fn(raw)
	for _, h := range hits {
		s.Redacted(pid, member, h.Rule, h.Count)
	}
	_ = s.Add(member, clean)
}

// tasks copies task/<tid>/stat of every thread.
func (m *procs) tasks(pid int, dir, member string, s *Sink) {
	entries, err := os.ReadDir(filepath.Join(dir, "task"))
	if err != nil {
		s.fileError(member+"task", err)
		return
	}
	n := 0
	for _, e := range entries {
		tid := e.Name()
		if _, err := strconv.Atoi(tid); err != nil {
			continue
		}
		// A thread that exits between listing and reading is ordinary.
		raw, err := s.Copy(member+"task/"+tid+"/stat", filepath.Join(dir, "task", tid, "stat"))
		if err != nil {
			continue
		}
		n++
		// Where a thread in uninterruptible sleep waits is the first
		// question about it, and wchan is cheap: copy it for D threads.
		if st, err := parseStat(raw); err == nil && st.State == "D" {
			_, _ = s.Copy(member+"task/"+tid+"/wchan", filepath.Join(dir, "task", tid, "wchan"))
		}
	}
	s.Threads(n)
}

// parseProcCgroup maps hierarchy to path from /proc/<pid>/cgroup:
//
//	4:memory:/process_api/x
//	0::/system.slice/foo.service
func parseProcCgroup(b []byte) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if f := strings.SplitN(line, ":", 3); len(f) == 3 {
			out[hierarchyFor(f[1])] = f[2]
		}
	}
	return out
}
