package analyze

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/dashcam-dev/dashcam/internal/cpulist"

	"github.com/prometheus/procfs"
)

// The placement section says where processes may run: the CPUs and NUMA
// memory nodes each may use (Cpus_allowed_list and Mems_allowed_list of
// proc/<pid>/status, narrowed by sched_setaffinity, taskset, numactl or a
// cpuset cgroup), grouped by set, and the processes scheduled unusually
// (a realtime, batch, idle or deadline policy, or an extreme nice value:
// fields 41, 40 and 19 of proc/<pid>/stat). Kernel threads, many of
// which are pinned or realtime by design, are left out.

func init() {
	registerSection(section{name: "placement", order: 50, load: loadPlacement, text: placementText, markdown: placementMarkdown})
}

const (
	// pfKthread is PF_KTHREAD in the flags of proc/<pid>/stat.
	pfKthread = 0x00200000
	// maxGroupPids and maxSchedProcs bound the lists in the report.
	maxGroupPids  = 20
	maxSchedProcs = 50
	// extremeNice: processes at or beyond ±10 are listed.
	extremeNice = 10
)

// PlacementSection is where processes may run; nil when the bundle has
// neither NUMA node files, nor a status with Cpus_allowed_list, nor a
// process with an unusual policy or nice value.
type PlacementSection struct {
	// OnlineCPUs is sys/devices/system/cpu/online and OnlineNodes
	// sys/devices/system/node/online, as the kernel lists them ("0-3");
	// "" when absent (then CPUs 0 to host.cpus-1, and the nodes found,
	// stand in).
	OnlineCPUs  string     `json:"online_cpus"`
	OnlineNodes string     `json:"online_nodes"`
	Nodes       []NUMANode `json:"nodes"`
	// Restricted groups the processes that may use fewer CPUs than are
	// online, or fewer memory nodes, by their allowed sets; largest group
	// first.
	Restricted []PlacementGroup `json:"restricted"`
	// Scheduling lists processes with a policy other than SCHED_OTHER, or
	// a nice value of -10 or less or 10 or more: realtime first.
	Scheduling []SchedProcess `json:"scheduling"`
	// Processes counts those examined (with a parsable stat, not kernel
	// threads); KernelThreads those left out.
	Processes     int `json:"processes"`
	KernelThreads int `json:"kernel_threads"`
}

// NUMANode is one sys/devices/system/node/node<N>/.
type NUMANode struct {
	Node int `json:"node"`
	// CPUs is its cpulist, "" when absent (a memory-only node has "\n").
	CPUs          string  `json:"cpus"`
	MemTotalBytes *uint64 `json:"mem_total_bytes"`
	MemFreeBytes  *uint64 `json:"mem_free_bytes"`
}

// PlacementGroup is the processes sharing one allowed CPU and memory set.
type PlacementGroup struct {
	// CPUs and Mems are the allowed lists ("0", "0-1"); Mems is "" when
	// no status had Mems_allowed_list. CPUCount counts the allowed CPUs
	// that are online.
	CPUs     string `json:"cpus"`
	CPUCount int    `json:"cpu_count"`
	Mems     string `json:"mems"`
	// Unusable are the online CPUs the group may not run on.
	Unusable  string `json:"unusable_cpus"`
	Processes int    `json:"processes"`
	// Runnable counts the group's processes in state R.
	Runnable int `json:"runnable"`
	// Pids are the first of them, by pid; Comms counts them by comm.
	Pids  []int       `json:"pids"`
	Comms []CommCount `json:"comms"`
	// Finding says it in one sentence.
	Finding string `json:"finding"`
}

// CommCount is how many processes of a group have one comm.
type CommCount struct {
	Comm  string `json:"comm"`
	Count int    `json:"count"`
}

// SchedProcess is a process scheduled unusually.
type SchedProcess struct {
	Pid  int    `json:"pid"`
	Comm string `json:"comm"`
	// Policy is SCHED_OTHER, SCHED_FIFO, SCHED_RR, SCHED_BATCH,
	// SCHED_IDLE, SCHED_DEADLINE, SCHED_EXT or "policy N".
	Policy     string `json:"policy"`
	RTPriority uint   `json:"rt_priority"`
	Nice       int    `json:"nice"`
	State      string `json:"state"`
	// CPUs is its Cpus_allowed_list, "" when unknown.
	CPUs string `json:"cpus"`
}

// policyNames are the SCHED_* values of include/uapi/linux/sched.h.
var policyNames = map[uint]string{
	0: "SCHED_OTHER", 1: "SCHED_FIFO", 2: "SCHED_RR", 3: "SCHED_BATCH",
	5: "SCHED_IDLE", 6: "SCHED_DEADLINE", 7: "SCHED_EXT",
}

func policyName(p uint) string {
	if n, ok := policyNames[p]; ok {
		return n
	}
	return "policy " + strconv.FormatUint(uint64(p), 10)
}

// realtime reports whether p is SCHED_FIFO, SCHED_RR or SCHED_DEADLINE.
func realtime(p uint) bool { return p == 1 || p == 2 || p == 6 }

func loadPlacement(a *analyzer) {
	sec := &PlacementSection{Nodes: []NUMANode{}, Restricted: []PlacementGroup{}, Scheduling: []SchedProcess{}}
	online := a.cpuListFile("sys/devices/system/cpu/online", &sec.OnlineCPUs)
	if online == nil && a.r.Host.CPUs != nil {
		for i := range *a.r.Host.CPUs {
			online = append(online, i)
		}
	}
	a.numaNodes(sec)
	nodes := a.cpuListFile("sys/devices/system/node/online", &sec.OnlineNodes)
	if nodes == nil {
		for _, n := range sec.Nodes {
			nodes = append(nodes, n.Node)
		}
	}

	all, err := a.fs.AllProcs()
	if err != nil {
		return // processes() reported it
	}
	slices.SortFunc(all, func(x, y procfs.Proc) int { return cmp.Compare(x.PID, y.PID) })
	groups := map[string]*PlacementGroup{}
	comms := map[string]map[string]int{}
	sawAllowed := false
	for _, p := range all {
		dir := "proc/" + strconv.Itoa(p.PID) + "/"
		st, err := parse(p.Stat)
		if err != nil {
			continue // processes() reported it
		}
		if st.Flags&pfKthread != 0 {
			sec.KernelThreads++
			continue
		}
		sec.Processes++
		var al allowed
		if data, ok := a.b.File(dir + "status"); ok {
			if al, err = parseAllowed(bytes.NewReader(data)); err != nil {
				a.problem(dir+"status", err)
			}
		}
		sawAllowed = sawAllowed || al.cpus != nil
		if unusualSched(st) {
			sec.Scheduling = append(sec.Scheduling, SchedProcess{
				Pid: p.PID, Comm: st.Comm, Policy: policyName(st.Policy), RTPriority: st.RTPriority,
				Nice: st.Nice, State: st.State, CPUs: al.cpusText,
			})
		}
		cpuLimited := al.cpus != nil && online != nil && !subset(online, al.cpus)
		memLimited := al.mems != nil && nodes != nil && !subset(nodes, al.mems)
		if !cpuLimited && !memLimited {
			continue
		}
		key := al.cpusText + "|" + al.memsText
		g := groups[key]
		if g == nil {
			usable := al.cpus
			if online != nil {
				usable = difference(al.cpus, difference(al.cpus, online)) // allowed and online
			}
			g = &PlacementGroup{CPUs: al.cpusText, CPUCount: len(usable), Mems: al.memsText,
				Unusable: cpulist.Format(difference(online, al.cpus)), Pids: []int{}, Comms: []CommCount{}}
			groups[key] = g
			comms[key] = map[string]int{}
		}
		g.Processes++
		if st.State == "R" {
			g.Runnable++
		}
		if len(g.Pids) < maxGroupPids {
			g.Pids = append(g.Pids, p.PID)
		}
		comms[key][st.Comm]++
	}
	if !sawAllowed && len(sec.Nodes) == 0 && len(sec.Scheduling) == 0 {
		return
	}
	for key, g := range groups {
		for _, c := range slices.Sorted(maps.Keys(comms[key])) {
			g.Comms = append(g.Comms, CommCount{Comm: c, Count: comms[key][c]})
		}
		slices.SortStableFunc(g.Comms, func(x, y CommCount) int { return cmp.Compare(y.Count, x.Count) })
		g.Finding = groupFinding(g, online, nodes)
		sec.Restricted = append(sec.Restricted, *g)
	}
	slices.SortFunc(sec.Restricted, func(x, y PlacementGroup) int {
		return cmp.Or(cmp.Compare(y.Processes, x.Processes), cmp.Compare(x.CPUs, y.CPUs), cmp.Compare(x.Mems, y.Mems))
	})
	slices.SortStableFunc(sec.Scheduling, func(x, y SchedProcess) int {
		rx, ry := realtime(policyByName(x.Policy)), realtime(policyByName(y.Policy))
		switch {
		case rx && !ry:
			return -1
		case ry && !rx:
			return 1
		}
		return 0
	})
	if len(sec.Scheduling) > maxSchedProcs {
		sec.Scheduling = sec.Scheduling[:maxSchedProcs]
	}
	a.r.Placement = sec
}

func policyByName(name string) uint {
	for p, n := range policyNames {
		if n == name {
			return p
		}
	}
	return 0
}

// unusualSched reports a policy other than SCHED_OTHER or an extreme nice.
func unusualSched(st procfs.ProcStat) bool {
	return st.Policy != 0 || st.Nice <= -extremeNice || st.Nice >= extremeNice
}

// groupFinding says what a group's sets mean, e.g. "8 processes (worker
// ×8) may run only on CPU 0, 3 of them runnable: more than its 1 CPU;
// CPU 1 is out of their reach".
func groupFinding(g *PlacementGroup, online, nodes []int) string {
	var who []string
	for i, c := range g.Comms {
		if i == 3 {
			who = append(who, "…")
			break
		}
		who = append(who, fmt.Sprintf("%s ×%d", c.Comm, c.Count))
	}
	s := fmt.Sprintf("%d %s (%s)", g.Processes, plural(g.Processes, "process", "processes"), strings.Join(who, ", "))
	var parts []string
	if g.Unusable != "" {
		p := fmt.Sprintf("may run only on %s %s of %d online", plural(g.CPUCount, "CPU", "CPUs"), g.CPUs, len(online))
		if g.Runnable > 0 {
			p += fmt.Sprintf(", %d runnable", g.Runnable)
			if g.Runnable > g.CPUCount {
				p += fmt.Sprintf(": more than %s %d %s, so they queue", plural(g.CPUCount, "its", "their"), g.CPUCount, plural(g.CPUCount, "CPU", "CPUs"))
			}
		}
		parts = append(parts, p)
	}
	if nodes != nil && g.Mems != "" {
		if mems, err := cpulist.Parse(g.Mems); err == nil && !subset(nodes, mems) {
			parts = append(parts, fmt.Sprintf("may allocate memory only on %s %s of %d", plural(len(mems), "node", "nodes"), g.Mems, len(nodes)))
		}
	}
	s += " " + strings.Join(parts, "; ")
	if g.Unusable != "" {
		n, _ := cpulist.Parse(g.Unusable)
		s += fmt.Sprintf("; %s %s %s out of their reach", plural(len(n), "CPU", "CPUs"), g.Unusable, plural(len(n), "is", "are"))
	}
	return clean(s)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// cpuListFile parses a cpu or node list member, storing its text in *text;
// nil when absent or malformed.
func (a *analyzer) cpuListFile(name string, text *string) []int {
	data, ok := a.b.File(name)
	if !ok {
		return nil
	}
	s := strings.TrimSpace(string(data))
	l, err := cpulist.Parse(s)
	if err != nil {
		a.problem(name, err)
		return nil
	}
	*text = s
	return l
}

// numaNodes reads sys/devices/system/node/node<N>/{cpulist,meminfo}.
func (a *analyzer) numaNodes(sec *PlacementSection) {
	const prefix = "sys/devices/system/node/node"
	byNode := map[int]*NUMANode{}
	for _, name := range a.b.Names() {
		rest, ok := strings.CutPrefix(name, prefix)
		if !ok {
			continue
		}
		num, file, ok := strings.Cut(rest, "/")
		n, err := strconv.Atoi(num)
		if !ok || err != nil || n < 0 || n >= cpulist.Max || (file != "cpulist" && file != "meminfo") {
			continue
		}
		node := byNode[n]
		if node == nil {
			node = &NUMANode{Node: n}
			byNode[n] = node
		}
		data, _ := a.b.File(name)
		switch file {
		case "cpulist":
			s := strings.TrimSpace(string(data))
			if _, err := cpulist.Parse(s); err != nil {
				a.problem(name, err)
				continue
			}
			node.CPUs = s
		case "meminfo":
			total, free, err := parseNodeMeminfo(bytes.NewReader(data))
			if err != nil {
				a.problem(name, err)
				continue
			}
			node.MemTotalBytes, node.MemFreeBytes = total, free
		}
	}
	for _, n := range slices.Sorted(maps.Keys(byNode)) {
		sec.Nodes = append(sec.Nodes, *byNode[n])
	}
}

// parseNodeMeminfo reads MemTotal and MemFree from
// /sys/devices/system/node/node<N>/meminfo, which prefixes each line of
// the /proc/meminfo format with the node:
//
//	Node 0 MemTotal:        5072672 kB
//	Node 0 MemFree:         4471812 kB
//	Node 0 MemUsed:          600860 kB
func parseNodeMeminfo(r io.Reader) (total, free *uint64, err error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || f[0] != "Node" {
			continue
		}
		var dst **uint64
		switch f[2] {
		case "MemTotal:":
			dst = &total
		case "MemFree:":
			dst = &free
		default:
			continue
		}
		v, err := strconv.ParseUint(f[3], 10, 54)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", f[2], err)
		}
		if len(f) > 4 && f[4] == "kB" {
			v *= 1024
		}
		*dst = &v
	}
	if err := sc.Err(); err != nil {
		return nil, nil, err
	}
	if total == nil {
		return nil, nil, errors.New("no MemTotal line")
	}
	return total, free, nil
}

// allowed is where a process may run.
type allowed struct {
	cpus, mems         []int // nil when the line is absent
	cpusText, memsText string
}

// parseAllowed reads the allowed lists of /proc/<pid>/status (procfs's
// ProcStatus has Cpus_allowed_list but not Mems_allowed_list):
//
//	Cpus_allowed:	3
//	Cpus_allowed_list:	0-1
//	Mems_allowed:	00000000,00000001
//	Mems_allowed_list:	0
func parseAllowed(r io.Reader) (allowed, error) {
	var al allowed
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || (key != "Cpus_allowed_list" && key != "Mems_allowed_list") {
			continue
		}
		val = strings.TrimSpace(val)
		l, err := cpulist.Parse(val)
		if err != nil {
			return allowed{}, fmt.Errorf("%s: %w", key, err)
		}
		if key == "Cpus_allowed_list" {
			al.cpus, al.cpusText = l, val
		} else {
			al.mems, al.memsText = l, val
		}
	}
	return al, sc.Err()
}

// subset reports whether every element of all is in some (both sorted).
func subset(all, some []int) bool {
	return len(difference(all, some)) == 0
}

// difference is all minus some (both sorted).
func difference(all, some []int) []int {
	var out []int
	for _, x := range all {
		if _, found := slices.BinarySearch(some, x); !found {
			out = append(out, x)
		}
	}
	return out
}

func placementHeader(p *PlacementSection) string {
	cpus := "online CPUs unknown"
	if p.OnlineCPUs != "" {
		cpus = "online CPUs " + p.OnlineCPUs
	}
	return clean(fmt.Sprintf("%s, %d NUMA %s; %d %s examined (%d kernel %s left out)",
		cpus, len(p.Nodes), plural(len(p.Nodes), "node", "nodes"), p.Processes, plural(p.Processes, "process", "processes"),
		p.KernelThreads, plural(p.KernelThreads, "thread", "threads")))
}

func commList(cs []CommCount) string {
	var s []string
	for _, c := range cs {
		s = append(s, fmt.Sprintf("%s ×%d", c.Comm, c.Count))
	}
	return clean(strings.Join(s, ", "))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func placementText(tw *tabwriter.Writer, r *Report) {
	p := r.Placement
	if p == nil {
		return
	}
	fmt.Fprintf(tw, "\nPlacement: %s\n", placementHeader(p))
	if len(p.Nodes) > 0 {
		fmt.Fprintf(tw, "  NODE\tCPUS\tMEMORY\tFREE\n")
		for _, n := range p.Nodes {
			fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\n", n.Node, clean(orDash(n.CPUs)), bytesOr(n.MemTotalBytes), bytesOr(n.MemFreeBytes))
		}
	}
	tw.Flush()
	heading(tw, "  Restricted CPU or memory sets", len(p.Restricted))
	if len(p.Restricted) > 0 {
		fmt.Fprintf(tw, "    CPUS\tMEMS\tPROCS\tRUNNABLE\tCOMMS\n")
		for _, g := range p.Restricted {
			fmt.Fprintf(tw, "    %s\t%s\t%d\t%d\t%s\n", clean(g.CPUs), clean(orDash(g.Mems)), g.Processes, g.Runnable, commList(g.Comms))
		}
		tw.Flush()
		for _, g := range p.Restricted {
			fmt.Fprintf(tw, "    - %s\n", g.Finding)
		}
	}
	heading(tw, "  Scheduling (realtime, batch, idle, deadline; nice <= -10 or >= 10)", len(p.Scheduling))
	if len(p.Scheduling) > 0 {
		fmt.Fprintf(tw, "    PID\tCOMM\tPOLICY\tRT PRIO\tNICE\tSTATE\tCPUS\n")
		for _, s := range p.Scheduling {
			fmt.Fprintf(tw, "    %d\t%s\t%s\t%d\t%d\t%s\t%s\n", s.Pid, clean(s.Comm), s.Policy, s.RTPriority, s.Nice, clean(s.State), clean(orUnknown(s.CPUs)))
		}
	}
}

func placementMarkdown(w io.Writer, r *Report) {
	p := r.Placement
	if p == nil {
		return
	}
	fmt.Fprintf(w, "\n## Placement\n\n%s.\n", md(placementHeader(p)))
	if len(p.Nodes) > 0 {
		fmt.Fprintf(w, "\n| Node | CPUs | Memory | Free |\n|---|---|---|---|\n")
		for _, n := range p.Nodes {
			fmt.Fprintf(w, "| %d | %s | %s | %s |\n", n.Node, md(orDash(n.CPUs)), bytesOr(n.MemTotalBytes), bytesOr(n.MemFreeBytes))
		}
	}
	fmt.Fprintf(w, "\n### Restricted CPU or memory sets\n\n")
	if len(p.Restricted) == 0 {
		fmt.Fprintf(w, "None.\n")
	} else {
		fmt.Fprintf(w, "| CPUs | Mems | Processes | Runnable | Comms |\n|---|---|---|---|---|\n")
		for _, g := range p.Restricted {
			fmt.Fprintf(w, "| %s | %s | %d | %d | %s |\n", md(g.CPUs), md(orDash(g.Mems)), g.Processes, g.Runnable, code(commList(g.Comms)))
		}
		fmt.Fprintf(w, "\n")
		for _, g := range p.Restricted {
			fmt.Fprintf(w, "- %s\n", md(g.Finding))
		}
	}
	fmt.Fprintf(w, "\n### Scheduling\n\n")
	if len(p.Scheduling) == 0 {
		fmt.Fprintf(w, "No process with a realtime, batch, idle or deadline policy, or nice <= -10 or >= 10.\n")
		return
	}
	fmt.Fprintf(w, "| Pid | Comm | Policy | RT prio | Nice | State | CPUs |\n|---|---|---|---|---|---|---|\n")
	for _, s := range p.Scheduling {
		fmt.Fprintf(w, "| %d | %s | %s | %d | %d | %s | %s |\n", s.Pid, code(s.Comm), md(s.Policy), s.RTPriority, s.Nice, md(s.State), md(orUnknown(s.CPUs)))
	}
}
