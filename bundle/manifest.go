package bundle

import "time"

// FormatVersion is the version of the bundle layout and of manifest.json.
// A reader refuses bundles whose version it does not know.
const FormatVersion = 1

// ManifestName is the first member of every bundle.
const ManifestName = "manifest.json"

// Manifest describes a bundle: where and when it was captured, what was
// asked for, what each capture module did, and a checksum of every other
// member. Fields that the capture could not fill are nil or omitted, never
// zero, so that "absent" and "zero" stay different.
type Manifest struct {
	FormatVersion int       `json:"format_version"`
	Tool          Tool      `json:"tool"`
	Host          Host      `json:"host"`
	Target        Target    `json:"target"`
	Trigger       Trigger   `json:"trigger"`
	Started       time.Time `json:"started"`
	Ended         time.Time `json:"ended"`
	// Priority records how the capture lowered its own priority.
	Priority   *Priority      `json:"priority,omitempty"`
	Modules    []ModuleResult `json:"modules"`
	Counts     Counts         `json:"counts"`
	Redactions []Redaction    `json:"redactions"`
	// Notes are short human-readable remarks (e.g. "excluded dashcam's own pid 42").
	Notes   []string `json:"notes,omitempty"`
	Members []Member `json:"members"`
}

// Tool names the program that wrote the bundle.
type Tool struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Host identifies the machine the bundle was captured on.
type Host struct {
	Hostname      string `json:"hostname"`
	KernelRelease string `json:"kernel_release"`
	KernelVersion string `json:"kernel_version,omitempty"`
	Arch          string `json:"arch,omitempty"`
	BootID        string `json:"boot_id,omitempty"`
	CPUs          int    `json:"cpus"`
	// MemTotalBytes is MemTotal from /proc/meminfo; nil when unreadable.
	MemTotalBytes *uint64 `json:"mem_total_bytes,omitempty"`
	PageSize      int     `json:"page_size"`
	// ClockTicks is USER_HZ, the unit of utime/stime in proc/<pid>/stat.
	ClockTicks int `json:"clock_ticks"`
	// CgroupMode is one of "v1", "v2", "hybrid" or "unavailable".
	CgroupMode string `json:"cgroup_mode"`
}

// Target is the capture target as the user asked for it and as it resolved.
type Target struct {
	// Kind is "host", "cgroup", "unit" or "pid".
	Kind string `json:"kind"`
	// Spec is what the user typed (cgroup path, unit name, pid list); empty for host.
	Spec     string          `json:"spec,omitempty"`
	Resolved *ResolvedTarget `json:"resolved,omitempty"`
}

// ResolvedTarget is what a Target turned into on the live system.
type ResolvedTarget struct {
	CgroupMode string `json:"cgroup_mode"`
	// Cgroups are the target's cgroups, one per hierarchy it exists in.
	Cgroups []CgroupPath `json:"cgroups,omitempty"`
	// Pids are the processes found, sorted, including zombie children of
	// target processes (zombies leave cgroup.procs).
	Pids []int `json:"pids"`
	// ExcludedPids were members of the target that dashcam left out (itself).
	ExcludedPids []int `json:"excluded_pids,omitempty"`
}

// CgroupPath is one cgroup of the target.
type CgroupPath struct {
	// Hierarchy is "unified" for cgroup v2 (also on hybrid hosts) or the v1
	// mount's directory name ("memory", "cpu,cpuacct", "systemd", …).
	Hierarchy string `json:"hierarchy"`
	// Path is relative to the hierarchy's root and starts with "/".
	Path string `json:"path"`
	// Member is the bundle directory holding the raw copy of its files.
	Member string `json:"member,omitempty"`
	// Pids is the number of processes found in it and its descendants.
	Pids int `json:"pids"`
}

// Trigger says why the bundle was captured.
type Trigger struct {
	// Kind is "manual" for dashcam capture.
	Kind   string `json:"kind"`
	Reason string `json:"reason,omitempty"`
	// Time is when the trigger fired (the capture starts right after).
	Time *time.Time `json:"time,omitempty"`
	// Evidence is trigger-specific data (threshold, window, samples).
	Evidence map[string]any `json:"evidence,omitempty"`
}

// Priority is the scheduling priority the capture ran at.
type Priority struct {
	Nice    int    `json:"nice"`
	IOClass string `json:"io_class"`
	Error   string `json:"error,omitempty"`
}

// Module statuses.
const (
	StatusOK      = "ok"      // everything the module tried was captured
	StatusPartial = "partial" // some data is missing; Reason says what and why
	StatusSkipped = "skipped" // not available here; Reason names the feature
	StatusFailed  = "failed"  // the module could not do its job; Reason says why
)

// ModuleResult is what one capture module did.
type ModuleResult struct {
	Name       string   `json:"name"`
	Status     string   `json:"status"`
	Reason     string   `json:"reason,omitempty"`
	DurationMS float64  `json:"duration_ms"`
	Members    int      `json:"members"`
	Errors     []string `json:"errors,omitempty"`
}

// Counts are totals over the whole capture.
type Counts struct {
	ProcessesSeen     int `json:"processes_seen"`
	ProcessesVanished int `json:"processes_vanished"`
	ThreadsSeen       int `json:"threads_seen"`
}

// Redaction records that a secret was replaced, never the secret itself.
type Redaction struct {
	Pid    int    `json:"pid,omitempty"`
	Member string `json:"member"`
	Rule   string `json:"rule"`
	Count  int    `json:"count"`
}

// Member is one file in the bundle other than manifest.json.
type Member struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}
