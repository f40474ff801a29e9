package analyze

import (
	"encoding/json"
	"io"
	"time"
)

// SchemaVersion is the version of the Report JSON layout. It changes only
// when a field is removed or changes meaning; new fields may appear
// without a bump.
const SchemaVersion = 1

// Report is the offline summary of one bundle. doc.go describes every
// field of its JSON form. Pointers and nil slices stand for "the bundle
// did not say": they are printed as "unknown" or left out, never as 0.
type Report struct {
	SchemaVersion int `json:"schema_version"`

	Host    Host    `json:"host"`
	Target  Target  `json:"target"`
	Capture Capture `json:"capture"`

	// Findings come first: what is wrong, ranked, from the rules in
	// rule_*.go; empty when no rule found anything.
	Findings []Finding `json:"findings"`

	// Load is proc/loadavg; nil when absent.
	Load *LoadAvg `json:"load"`
	// Pressure holds the host PSI files found, in cpu, memory, io order.
	Pressure []Pressure `json:"pressure"`

	// Zombies are grouped by parent, parents in pid order.
	Zombies []ZombieGroup `json:"zombies"`
	// Blocked are tasks in uninterruptible sleep (state D), processes
	// and threads, in pid, tid order.
	Blocked []Task `json:"blocked"`

	// Processes counts the processes parsed from the bundle.
	Processes int `json:"processes"`
	// States counts processes by state letter, common states first.
	States []StateCount `json:"states"`
	TopCPU []Process    `json:"top_cpu"`
	TopRSS []Process    `json:"top_rss"`

	// Module sections, one file each; nil when the bundle holds none of
	// that module's files.
	FDs       *FDSection        `json:"fds,omitempty"`
	Sockets   *SocketSection    `json:"sockets,omitempty"`
	Memory    *MemorySection    `json:"memory,omitempty"`
	KStacks   *KStackSection    `json:"kstacks,omitempty"`
	Placement *PlacementSection `json:"placement,omitempty"`
	KernelLog *KernelLogSection `json:"kernel_log,omitempty"`
	Exec      *ExecSection      `json:"exec,omitempty"`
	// History is the arm's timeline before (and just after) the trigger.
	History *HistorySection `json:"history,omitempty"`

	Modules []Module `json:"modules"`
	Counts  Counts   `json:"counts"`
	// Redactions is how many secrets the capture replaced in total.
	Redactions int      `json:"redactions"`
	Notes      []string `json:"notes"`
	// Problems are bundle files the analyzer could not use.
	Problems []Problem `json:"problems"`
}

// Host is the machine the bundle was captured on.
type Host struct {
	Hostname      string `json:"hostname"`
	KernelRelease string `json:"kernel_release"`
	BootID        string `json:"boot_id,omitempty"`
	// CPUs is nil when the manifest does not say.
	CPUs          *int    `json:"cpus"`
	MemTotalBytes *uint64 `json:"mem_total_bytes"`
	// MemAvailableBytes is MemAvailable from proc/meminfo.
	MemAvailableBytes *uint64 `json:"mem_available_bytes"`
	// PageSize and ClockTicks are the capture machine's, used for RSS
	// bytes and CPU seconds; nil when the manifest does not say.
	PageSize   *int   `json:"page_size"`
	ClockTicks *int   `json:"clock_ticks"`
	CgroupMode string `json:"cgroup_mode"`
}

// Target is what was captured.
type Target struct {
	Kind    string   `json:"kind"`
	Spec    string   `json:"spec,omitempty"`
	Cgroups []Cgroup `json:"cgroups"`
	// PidCount is the number of processes the target resolved to; nil
	// when the manifest has no resolution.
	PidCount *int `json:"pid_count"`
}

// Cgroup is one cgroup the target resolved to.
type Cgroup struct {
	Hierarchy string `json:"hierarchy"`
	Path      string `json:"path"`
	Pids      int    `json:"pids"`
}

// Capture says when, how long and why.
type Capture struct {
	Tool string `json:"tool,omitempty"`
	// Started is in UTC; Started and DurationSeconds are nil when the
	// manifest does not say.
	Started         *time.Time `json:"started"`
	DurationSeconds *float64   `json:"duration_seconds"`
	Trigger         string     `json:"trigger"`
	TriggerReason   string     `json:"trigger_reason,omitempty"`
}

// LoadAvg is the host's run-queue load average.
type LoadAvg struct {
	Load1  float64 `json:"load1"`
	Load5  float64 `json:"load5"`
	Load15 float64 `json:"load15"`
}

// Pressure is one proc/pressure/<resource> file.
type Pressure struct {
	Resource string `json:"resource"`
	// Some and Full are nil when the file has no such line (cpu had no
	// "full" line before Linux 5.13).
	Some *PSILine `json:"some"`
	Full *PSILine `json:"full"`
}

// PSILine is one line of a pressure file: the share of wall time, in
// percent, that tasks were stalled, and the total stall time.
type PSILine struct {
	Avg10   float64 `json:"avg10"`
	Avg60   float64 `json:"avg60"`
	Avg300  float64 `json:"avg300"`
	TotalUS uint64  `json:"total_us"`
}

// Process is one row of a top list.
type Process struct {
	Pid     int    `json:"pid"`
	PPid    int    `json:"ppid"`
	Comm    string `json:"comm"`
	State   string `json:"state"`
	Threads int    `json:"threads"`
	// CPUTicks is utime+stime in clock ticks; CPUSeconds divides it by
	// host.clock_ticks and is nil when that is unknown.
	CPUTicks   uint64   `json:"cpu_ticks"`
	CPUSeconds *float64 `json:"cpu_seconds"`
	// RSSPages is the resident set in pages; RSSBytes multiplies it by
	// host.page_size and is nil when that is unknown.
	RSSPages int64  `json:"rss_pages"`
	RSSBytes *int64 `json:"rss_bytes"`
	// Cmdline is argv as captured (already redacted): null when the file
	// is absent, [] for kernel threads.
	Cmdline []string `json:"cmdline"`
}

// StateCount is how many processes were in one state.
type StateCount struct {
	State string `json:"state"`
	// Name is the kernel's word for the state ("sleeping"), or "".
	Name  string `json:"name"`
	Count int    `json:"count"`
}

// ZombieGroup is the zombies of one parent. Only the parent can remove
// them, by calling wait.
type ZombieGroup struct {
	Parent  Parent   `json:"parent"`
	Zombies []Zombie `json:"zombies"`
	// Advice is a sentence for the reader of the ticket.
	Advice string `json:"advice"`
}

// Parent is the parent of zombies. Comm and State are "" when the parent
// is not in the bundle.
type Parent struct {
	Pid   int    `json:"pid"`
	Comm  string `json:"comm"`
	State string `json:"state"`
	// SIGCHLD is the parent's disposition of SIGCHLD from its status:
	// "caught" (SigCgt), "ignored" (SigIgn), "default" (neither) or
	// "unknown" (status absent or unreadable).
	SIGCHLD string `json:"sigchld"`
}

// Zombie is one exited process not yet reaped.
type Zombie struct {
	Pid  int    `json:"pid"`
	Comm string `json:"comm"`
}

// Task is a process or thread in state D.
type Task struct {
	Pid int `json:"pid"`
	// Tid equals Pid for a process's main thread.
	Tid  int    `json:"tid"`
	Comm string `json:"comm"`
	// Wchan is the kernel function the task waits in; "" when the bundle
	// has no wchan for it (capture copies only the process's, i.e. the
	// main thread's).
	Wchan string `json:"wchan"`
}

// Module is what one capture module did.
type Module struct {
	Name       string   `json:"name"`
	Status     string   `json:"status"`
	Reason     string   `json:"reason,omitempty"`
	DurationMS float64  `json:"duration_ms"`
	Errors     []string `json:"errors,omitempty"`
}

// Counts are the capture's totals from the manifest.
type Counts struct {
	ProcessesSeen     int `json:"processes_seen"`
	ProcessesVanished int `json:"processes_vanished"`
	ThreadsSeen       int `json:"threads_seen"`
}

// Problem is a bundle file the analyzer skipped, and why.
type Problem struct {
	Path  string `json:"path"`
	Error string `json:"error"`
}

// WriteJSON writes r as indented JSON. Field order is the struct order
// above, so output is stable.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
