// Package capture copies the live state of a target (a cgroup, a systemd
// unit, some pids, or the whole host) into a bundle.
//
// # Targets
//
// Resolve turns a Spec into a Target: the cgroup directories of the target
// in every mounted hierarchy (cgroup v2, v1, or hybrid, where v1
// controllers sit beside the unified tree at /sys/fs/cgroup/unified) and
// its processes, including those of descendant cgroups. A systemd unit is
// found by its directory name, so systemd need not be running. Zombie
// children of target processes are added: a zombie has already left
// cgroup.procs, but its parent in the target must reap it. dashcam never
// captures itself.
//
// # Modules
//
// Each module is one file implementing Module and registering itself by
// name from init. Run runs the selected modules concurrently, each under
// its own deadline, and decides each one's status:
//
//   - ok: everything the module tried was captured. Processes that exited
//     mid-capture are ordinary and only counted.
//   - partial: some data is missing, and the reason says what and why:
//     permission denied (run as root), a read error, or the deadline.
//   - skipped: the module returned ErrNotSupported: the kernel or machine
//     lacks the feature, and the reason names what would enable it.
//   - failed: the module could not do its job (or panicked).
//
// Nothing a module does aborts the bundle.
//
// # Raw first
//
// Modules copy kernel files byte for byte, read to EOF (many proc and
// cgroup files return a page per read), into bundle paths that mirror the
// machine: proc/<pid>/stat, sys/fs/cgroup/unified/<path>/memory.pressure.
// Parsing happens offline in package analyze. Derived data that no kernel
// file holds goes under dashcam/ as versioned JSON. Command lines (and
// environments, which are off by default) pass through package redact,
// and every redaction is recorded without its value.
//
// # Doing no harm
//
// LowerPriority puts the capturing process at nice +10 in the idle IO
// class before any work starts.
package capture
