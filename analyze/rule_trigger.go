package analyze

import "fmt"

func init() { registerRule("trigger", ruleTrigger) }

// ruleTrigger: a bundle written by dashcam arm says why it was taken; the
// trigger's own sentence (with the limit it was measured against) is the
// first thing on the ticket.
func ruleTrigger(r *Report) []Finding {
	switch r.Capture.Trigger {
	case "", "manual":
		return nil
	}
	f := Finding{
		Severity: "critical",
		Title:    fmt.Sprintf("trigger %s fired: %s", r.Capture.Trigger, clean(r.Capture.TriggerReason)),
		Evidence: []string{"manifest.json trigger (with its evidence: threshold, window, the samples that crossed it)"},
		Why:      whyTrigger[r.Capture.Trigger],
		Next:     "read the history timeline below for what led up to it, then the sections for the processes involved",
	}
	if r.History != nil {
		f.Evidence = append(f.Evidence, fmt.Sprintf("dashcam/history.jsonl: %d samples before and after", r.History.Samples))
	}
	return []Finding{f}
}

var whyTrigger = map[string]string{
	"cpu":         "the cgroup used most of its own CPU limit (not the host's) for the whole window: it is saturated, and work queues or is throttled",
	"throttle":    "the cgroup hit its CPU quota in many scheduling periods: its threads were stopped until the next period, which shows up as latency",
	"mem":         "memory use was close to the effective limit: the next growth brings reclaim stalls or an OOM kill",
	"psi":         "tasks in the cgroup were stalled waiting for a resource for a large share of the time",
	"psi-trigger": "the kernel reported stall time above the threshold within its window",
	"oom":         "the kernel killed a process of the target because its cgroup ran out of memory",
	"proc-cpu":    "one process used most of a CPU for the whole window",
}
