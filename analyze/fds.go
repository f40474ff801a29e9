package analyze

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/prometheus/procfs"
)

func init() {
	registerSection(section{name: "fds", order: 20, load: loadFDs, text: fdsText, markdown: fdsMarkdown})
}

// Limits of the fds section's lists.
const (
	fdTopN      = 10
	fdTargetsN  = 10
	fdDeletedN  = 50
	nearLimitAt = 80.0 // percent of RLIMIT_NOFILE
)

// FDSection is the open files of the captured processes: the fds module's
// proc/<pid>/fd.json, with the RLIMIT_NOFILE soft limit from
// proc/<pid>/limits and positions from proc/<pid>/fdinfo/<n>.
type FDSection struct {
	// Processes counts the processes with an fd table in the bundle.
	Processes int `json:"processes"`
	// Open is the number of fds those processes held.
	Open int `json:"open"`
	// Top are the processes holding the most fds, most first.
	Top []FDProcess `json:"top"`
	// NearLimit are the processes using more than 80 % of their
	// RLIMIT_NOFILE soft limit, highest use first: their next
	// open/socket/accept fails with EMFILE.
	NearLimit []FDProcess `json:"near_limit"`
	// Deleted are files held open under a deleted name, largest first:
	// their space is freed only when the last fd closes, and du does not
	// see it. At most 50; DeletedCount and DeletedBytes cover them all.
	Deleted      []DeletedFile `json:"deleted"`
	DeletedCount int           `json:"deleted_count"`
	// DeletedBytes sums the sizes that are known.
	DeletedBytes int64 `json:"deleted_bytes"`
	// Targets are the targets held by two fds or more, other than
	// sockets and pipes (whose targets are all distinct), most fds
	// first, at most 10: one file opened a thousand times is a leak.
	Targets []FDTarget `json:"targets"`
}

// FDProcess is the fd table of one process.
type FDProcess struct {
	Pid  int    `json:"pid"`
	Comm string `json:"comm"`
	Open int    `json:"open"`
	// Limit is the soft RLIMIT_NOFILE from proc/<pid>/limits; nil when
	// that file is absent, malformed, or says "unlimited".
	Limit *uint64 `json:"limit"`
	// UsePercent is 100 × Open / Limit; nil when Limit is.
	UsePercent *float64 `json:"use_percent"`
	Kinds      FDKinds  `json:"kinds"`
}

// FDKinds counts fds by what they point at.
type FDKinds struct {
	Files   int `json:"files"`   // paths, including /dev/shm
	Sockets int `json:"sockets"` // socket:[inode]
	Pipes   int `json:"pipes"`   // pipe:[inode]
	// AnonInodes are anon_inode:* (eventfd, eventpoll, inotify, timerfd,
	// signalfd, pidfd, io_uring, bpf-*, …).
	AnonInodes int `json:"anon_inodes"`
	Devices    int `json:"devices"` // /dev/* but /dev/shm and /dev/mqueue
	Memfds     int `json:"memfds"`  // /memfd:name (deleted)
	Other      int `json:"other"`   // anything else (nsfs "net:[…]", …)
}

// DeletedFile is a file held open under a name that no longer exists.
type DeletedFile struct {
	Pid  int    `json:"pid"`
	Comm string `json:"comm"`
	FD   int    `json:"fd"`
	// Path is the name it had, without the kernel's " (deleted)".
	Path string `json:"path"`
	// SizeBytes is the file's size at capture; nil when unknown.
	SizeBytes *int64 `json:"size_bytes"`
	// Pos is the fd's offset from fdinfo (how far it was read or
	// written, not the size); nil when fdinfo is absent.
	Pos *int64 `json:"pos"`
}

// FDTarget is one target and how many fds point at it.
type FDTarget struct {
	Target string `json:"target"`
	// Kind is "file", "anon_inode", "device", "memfd" or "other".
	Kind string `json:"kind"`
	FDs  int    `json:"fds"`
	// Processes counts the distinct processes holding it.
	Processes int `json:"processes"`
}

// fdTable is proc/<pid>/fd.json as capture's fds module writes it
// (capture.FDTable, version 1):
//
//	{"version": 1, "fds": {"0": "/dev/null", "3": "socket:[4242]"},
//	 "fdinfo": "selective", "deleted_sizes": {"4": 11}}
type fdTable struct {
	Version      int            `json:"version"`
	FDs          map[int]string `json:"fds"`
	DeletedSizes map[int]int64  `json:"deleted_sizes"`
}

func parseFDTable(data []byte) (*fdTable, error) {
	var t fdTable
	if err := json.Unmarshal(data, &t); err != nil {
		return nil, err
	}
	if t.Version != 1 {
		return nil, fmt.Errorf("fd table version %d, want 1", t.Version)
	}
	if t.FDs == nil {
		return nil, errors.New("fd table without fds")
	}
	return &t, nil
}

// fdKind classifies a link target of /proc/<pid>/fd, as d_path and the
// pseudo filesystems' dname functions write them.
func fdKind(target string) string {
	switch {
	case strings.HasPrefix(target, "socket:["):
		return "socket"
	case strings.HasPrefix(target, "pipe:["):
		return "pipe"
	case strings.HasPrefix(target, "anon_inode:"):
		return "anon_inode"
	case strings.HasPrefix(target, "/memfd:"):
		return "memfd"
	case strings.HasPrefix(target, "/dev/shm/"), strings.HasPrefix(target, "/dev/mqueue/"):
		return "file"
	case strings.HasPrefix(target, "/dev/"):
		return "device"
	case strings.HasPrefix(target, "/"):
		return "file"
	}
	return "other"
}

func (k *FDKinds) add(kind string) {
	switch kind {
	case "socket":
		k.Sockets++
	case "pipe":
		k.Pipes++
	case "anon_inode":
		k.AnonInodes++
	case "memfd":
		k.Memfds++
	case "device":
		k.Devices++
	case "file":
		k.Files++
	default:
		k.Other++
	}
}

// fdTablePid returns the pid of a member named proc/<pid>/fd.json.
func fdTablePid(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, "proc/")
	if !ok {
		return 0, false
	}
	p, ok := strings.CutSuffix(rest, "/fd.json")
	if !ok {
		return 0, false
	}
	pid, err := strconv.Atoi(p)
	return pid, err == nil && pid > 0
}

func loadFDs(a *analyzer) {
	var (
		sec     *FDSection
		procs   []FDProcess
		targets = map[string]*FDTarget{}
		holders = map[string]map[int]bool{}
	)
	for _, name := range a.b.Names() {
		pid, ok := fdTablePid(name)
		if !ok {
			continue
		}
		if sec == nil {
			sec = &FDSection{Top: []FDProcess{}, NearLimit: []FDProcess{}, Deleted: []DeletedFile{}, Targets: []FDTarget{}}
		}
		data, _ := a.b.File(name)
		t, err := parseFDTable(data)
		if err != nil {
			a.problem(name, err)
			continue
		}
		p, err := a.fs.Proc(pid)
		if err != nil { // cannot be: proc/<pid>/ holds fd.json
			a.problem(name, err)
			continue
		}
		row := FDProcess{Pid: pid, Comm: a.comm(p), Open: len(t.FDs)}
		row.Limit = a.openFilesLimit(p, pid)
		if row.Limit != nil && *row.Limit > 0 {
			u := 100 * float64(row.Open) / float64(*row.Limit)
			row.UsePercent = &u
		}
		for _, fd := range slices.Sorted(maps.Keys(t.FDs)) {
			target := t.FDs[fd]
			kind := fdKind(target)
			row.Kinds.add(kind)
			if path, deleted := strings.CutSuffix(target, " (deleted)"); deleted && kind == "file" {
				sec.DeletedCount++
				d := DeletedFile{Pid: pid, Comm: row.Comm, FD: fd, Path: path, Pos: a.fdPos(p, fd)}
				if size, ok := t.DeletedSizes[fd]; ok && size >= 0 {
					d.SizeBytes = &size
					if sec.DeletedBytes <= math.MaxInt64-size {
						sec.DeletedBytes += size
					}
				}
				sec.Deleted = append(sec.Deleted, d)
			}
			if kind == "socket" || kind == "pipe" {
				continue
			}
			if targets[target] == nil {
				targets[target] = &FDTarget{Target: target, Kind: kind}
				holders[target] = map[int]bool{}
			}
			targets[target].FDs++
			holders[target][pid] = true
		}
		sec.Processes++
		sec.Open += row.Open
		procs = append(procs, row)
	}
	if sec == nil {
		return
	}

	slices.SortStableFunc(procs, func(x, y FDProcess) int { return cmp.Or(cmp.Compare(y.Open, x.Open), cmp.Compare(x.Pid, y.Pid)) })
	sec.Top = append(sec.Top, procs[:min(fdTopN, len(procs))]...)
	for _, p := range procs {
		if p.UsePercent != nil && *p.UsePercent > nearLimitAt {
			sec.NearLimit = append(sec.NearLimit, p)
		}
	}
	slices.SortStableFunc(sec.NearLimit, func(x, y FDProcess) int { return cmp.Compare(*y.UsePercent, *x.UsePercent) })

	// Largest first, unknown sizes last.
	slices.SortStableFunc(sec.Deleted, func(x, y DeletedFile) int {
		return cmp.Or(cmp.Compare(sizeOrMinus(y.SizeBytes), sizeOrMinus(x.SizeBytes)),
			cmp.Compare(x.Pid, y.Pid), cmp.Compare(x.FD, y.FD))
	})
	sec.Deleted = sec.Deleted[:min(fdDeletedN, len(sec.Deleted))]

	for t, ft := range targets {
		if ft.FDs < 2 {
			continue
		}
		ft.Processes = len(holders[t])
		sec.Targets = append(sec.Targets, *ft)
	}
	slices.SortFunc(sec.Targets, func(x, y FDTarget) int {
		return cmp.Or(cmp.Compare(y.FDs, x.FDs), cmp.Compare(x.Target, y.Target))
	})
	sec.Targets = sec.Targets[:min(fdTargetsN, len(sec.Targets))]
	a.r.FDs = sec
}

func sizeOrMinus(p *int64) int64 {
	if p == nil {
		return -1
	}
	return *p
}

// comm is the process's name from its stat, "" when unknown.
func (a *analyzer) comm(p procfs.Proc) string {
	st, err := parse(p.Stat)
	if err != nil {
		return ""
	}
	return st.Comm
}

// openFilesLimit is the soft "Max open files" of proc/<pid>/limits:
//
//	Limit                     Soft Limit           Hard Limit           Units
//	Max open files            1024                 524288               files
//
// nil when the file is absent, malformed (a problem), or "unlimited"
// (which the kernel never allows for RLIMIT_NOFILE: it is capped by
// fs.nr_open).
func (a *analyzer) openFilesLimit(p procfs.Proc, pid int) *uint64 {
	l, err := parse(p.Limits)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		a.problem("proc/"+strconv.Itoa(pid)+"/limits", err)
		return nil
	case l.OpenFiles == math.MaxUint64:
		return nil
	}
	n := l.OpenFiles
	return &n
}

// fdPos is "pos" of proc/<pid>/fdinfo/<fd>, which procfs parses:
//
//	pos:	73400320
//	flags:	02102001
//	mnt_id:	26
//	ino:	1310723
func (a *analyzer) fdPos(p procfs.Proc, fd int) *int64 {
	info, err := parse(func() (*procfs.ProcFDInfo, error) { return p.FDInfo(strconv.Itoa(fd)) })
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			a.problem("proc/"+strconv.Itoa(p.PID)+"/fdinfo/"+strconv.Itoa(fd), err)
		}
		return nil
	}
	pos, err := strconv.ParseInt(info.Pos, 10, 64)
	if err != nil {
		return nil
	}
	return &pos
}

// limitLine is "950 of 1024 (93%)", or "950, limit unknown".
func limitLine(p FDProcess) string {
	if p.Limit == nil || p.UsePercent == nil {
		return strconv.Itoa(p.Open) + ", limit unknown"
	}
	return fmt.Sprintf("%d of %d (%.0f%%)", p.Open, *p.Limit, *p.UsePercent)
}

func limitCell(p FDProcess) string {
	if p.Limit == nil {
		return unknown
	}
	return strconv.FormatUint(*p.Limit, 10)
}

func useCell(p FDProcess) string {
	if p.UsePercent == nil {
		return unknown
	}
	s := strconv.FormatFloat(*p.UsePercent, 'f', 0, 64) + "%"
	if *p.UsePercent > nearLimitAt {
		s += " !"
	}
	return s
}

func kindCells(k FDKinds) []string {
	return []string{strconv.Itoa(k.Files), strconv.Itoa(k.Sockets), strconv.Itoa(k.Pipes),
		strconv.Itoa(k.AnonInodes), strconv.Itoa(k.Devices), strconv.Itoa(k.Memfds), strconv.Itoa(k.Other)}
}

var kindHeader = []string{"FILES", "SOCKETS", "PIPES", "ANON", "DEV", "MEMFD", "OTHER"}

func deletedSummary(s *FDSection) string {
	unknownSizes := 0
	for _, d := range s.Deleted {
		if d.SizeBytes == nil {
			unknownSizes++
		}
	}
	line := fmt.Sprintf("%d files holding %s", s.DeletedCount, humanBytes(uint64(s.DeletedBytes)))
	if unknownSizes > 0 {
		line += fmt.Sprintf(" and %d of unknown size", unknownSizes)
	}
	return line + "; the space is freed only when they are closed"
}

func posOr(p *int64) string {
	if p == nil {
		return unknown
	}
	return strconv.FormatInt(*p, 10)
}

func sizeOr(p *int64) string {
	if p == nil {
		return "size unknown"
	}
	return humanBytes(uint64(*p))
}

func fdsText(tw *tabwriter.Writer, r *Report) {
	s := r.FDs
	if s == nil {
		return
	}
	fmt.Fprintf(tw, "\nFile descriptors: %d open in %d processes\n", s.Open, s.Processes)
	if len(s.NearLimit) > 0 {
		fmt.Fprintf(tw, "  near the limit (>%.0f%% of RLIMIT_NOFILE; the next open fails with EMFILE):\n", nearLimitAt)
		for _, p := range s.NearLimit {
			fmt.Fprintf(tw, "    %d (%s): %s\n", p.Pid, clean(p.Comm), limitLine(p))
		}
	}
	if len(s.Top) > 0 {
		fmt.Fprint(tw, strings.Join(append([]string{"  PID", "COMM", "OPEN", "LIMIT", "USE"}, kindHeader...), "\t")+"\n")
		for _, p := range s.Top {
			cells := append([]string{"  " + strconv.Itoa(p.Pid), clean(p.Comm), strconv.Itoa(p.Open), limitCell(p), useCell(p)},
				kindCells(p.Kinds)...)
			fmt.Fprint(tw, strings.Join(cells, "\t")+"\n")
		}
	}
	tw.Flush()
	if s.DeletedCount > 0 {
		fmt.Fprintf(tw, "  deleted but open: %s\n", deletedSummary(s))
		fmt.Fprint(tw, "  PID\tCOMM\tFD\tSIZE\tPOS\tPATH\n")
		for _, d := range s.Deleted {
			fmt.Fprintf(tw, "  %d\t%s\t%d\t%s\t%s\t%s\n", d.Pid, clean(d.Comm), d.FD, sizeOr(d.SizeBytes), posOr(d.Pos), clean(d.Path))
		}
		tw.Flush()
	}
	if len(s.Targets) > 0 {
		fmt.Fprint(tw, "  targets held more than once (sockets and pipes aside):\n")
		fmt.Fprint(tw, "  FDS\tPROCS\tKIND\tTARGET\n")
		for _, t := range s.Targets {
			fmt.Fprintf(tw, "  %d\t%d\t%s\t%s\n", t.FDs, t.Processes, t.Kind, clean(t.Target))
		}
	}
}

func fdsMarkdown(w io.Writer, r *Report) {
	s := r.FDs
	if s == nil {
		return
	}
	fmt.Fprintf(w, "\n## File descriptors\n\n%d open in %d processes.\n", s.Open, s.Processes)
	if len(s.NearLimit) > 0 {
		fmt.Fprintf(w, "\nNear the limit (>%.0f%% of RLIMIT\\_NOFILE; the next open fails with EMFILE):\n\n", nearLimitAt)
		for _, p := range s.NearLimit {
			fmt.Fprintf(w, "- **%d** %s: %s\n", p.Pid, code(p.Comm), md(limitLine(p)))
		}
	}
	if len(s.Top) > 0 {
		fmt.Fprintf(w, "\n| PID | Comm | Open | Limit | Use | Files | Sockets | Pipes | Anon | Dev | Memfd | Other |\n")
		fmt.Fprintf(w, "|%s\n", strings.Repeat("---|", 12))
		for _, p := range s.Top {
			cells := append([]string{strconv.Itoa(p.Pid), code(p.Comm), strconv.Itoa(p.Open), limitCell(p), md(useCell(p))},
				kindCells(p.Kinds)...)
			fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
		}
	}
	if s.DeletedCount > 0 {
		fmt.Fprintf(w, "\nDeleted but open: %s.\n\n", md(deletedSummary(s)))
		fmt.Fprintf(w, "| PID | Comm | FD | Size | Pos | Path |\n|---|---|---|---|---|---|\n")
		for _, d := range s.Deleted {
			fmt.Fprintf(w, "| %d | %s | %d | %s | %s | %s |\n", d.Pid, code(d.Comm), d.FD, sizeOr(d.SizeBytes), posOr(d.Pos), code(d.Path))
		}
	}
	if len(s.Targets) > 0 {
		fmt.Fprintf(w, "\nTargets held more than once (sockets and pipes aside):\n\n| FDs | Processes | Kind | Target |\n|---|---|---|---|\n")
		for _, t := range s.Targets {
			fmt.Fprintf(w, "| %d | %d | %s | %s |\n", t.FDs, t.Processes, t.Kind, code(t.Target))
		}
	}
}
