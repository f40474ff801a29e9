package analyze

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

func init() { registerRule("d-state", ruleDState) }

// ruleDState: tasks in uninterruptible sleep cannot be killed and hold
// whatever they wait for; the wait channel (and the kernel stack, when
// kstacks ran) says on what.
func ruleDState(r *Report) []Finding {
	if len(r.Blocked) == 0 {
		return nil
	}
	byWchan := map[string][]string{}
	var pids []int
	for _, t := range r.Blocked {
		w := t.Wchan
		if w == "" {
			w = "unknown"
		}
		byWchan[w] = append(byWchan[w], fmt.Sprintf("%d/%d (%s)", t.Pid, t.Tid, clean(t.Comm)))
		if !slices.Contains(pids, t.Pid) {
			pids = append(pids, t.Pid)
		}
	}
	var ev []string
	for _, w := range slices.Sorted(maps.Keys(byWchan)) {
		tasks := byWchan[w]
		ev = append(ev, fmt.Sprintf("%d in %s: %s", len(tasks), w, strings.Join(first(tasks, 8), ", ")))
	}
	sev := "warning"
	if len(r.Blocked) >= 10 {
		sev = "critical"
	}
	return []Finding{{
		Severity: sev,
		Title:    fmt.Sprintf("%d threads stuck in uninterruptible sleep (state D)", len(r.Blocked)),
		Evidence: ev,
		Why:      "a task in D state waits in the kernel (disk, NFS, a lock, a frozen cgroup), cannot be killed, and counts in the load average; whatever it holds stays held",
		Next:     "read the kernel stacks grouped below (or /proc/<pid>/task/<tid>/stack) to see what they wait on; check the device or filesystem behind it (iostat, dmesg for hung-task reports)",
		Pids:     pids,
	}}
}

func first(s []string, n int) []string {
	if len(s) <= n {
		return s
	}
	return append(s[:n:n], fmt.Sprintf("… %d more", len(s)-n))
}
