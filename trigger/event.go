package trigger

import (
	"context"
	"math"
	"time"
)

// Event is a fired trigger and the evidence for it.
type Event struct {
	// Kind names the trigger: "cpu", "throttle", "mem", "psi",
	// "psi-trigger", "oom", "proc-cpu", "manual", …
	Kind string `json:"kind"`
	// Reason is one sentence for the log and the report, e.g.
	// "cpu 93% of limit (1 CPU from cpu.max of /app) for 30s (threshold 80%)".
	Reason string    `json:"reason"`
	Time   time.Time `json:"time"`
	// Evidence is what the trigger saw: threshold, window, the limit used
	// and where it came from, the samples that crossed it.
	Evidence map[string]any `json:"evidence,omitempty"`
}

// A Poller judges each sample of the target, taken every interval by the
// arm loop, and returns an event when its condition fires.
type Poller interface {
	Name() string
	Observe(s *Sample) *Event
}

// A Watcher waits for kernel notifications (PSI triggers, OOM events) and
// calls fire for each; it returns when ctx is done.
type Watcher interface {
	Name() string
	Watch(ctx context.Context, fire func(Event)) error
}

// point is one sample value in an event's evidence.
type point struct {
	T time.Time `json:"t"`
	V float64   `json:"v"`
}

// sustained tracks a condition that must hold for a whole window before it
// fires, and must clear before it can fire again (hysteresis).
type sustained struct {
	window time.Duration
	// gap is the longest pause between samples that still counts as
	// continuous; a longer one (a stalled sampler) restarts the window.
	gap    time.Duration
	since  time.Time // start of the current run of true samples
	last   time.Time
	run    []point // the samples of the current run, bounded
	fired  bool    // fired during this run; re-arms when the condition clears
	maxRun int
}

func newSustained(window, interval time.Duration) *sustained {
	n := int(window/interval) + 2
	return &sustained{window: window, gap: 3 * interval, maxRun: max(n, 2)}
}

// update records one sample and reports whether the condition has now
// held for the whole window, returning the samples that prove it.
func (s *sustained) update(t time.Time, cond bool, v float64) (bool, []point) {
	if !cond {
		s.since, s.run, s.fired = time.Time{}, nil, false
		s.last = t
		return false, nil
	}
	if s.since.IsZero() || t.Sub(s.last) > s.gap {
		s.since, s.run = t, nil
	}
	s.last = t
	s.run = append(s.run, point{t.UTC().Round(time.Millisecond), math.Round(v*100) / 100})
	if len(s.run) > s.maxRun {
		s.run = s.run[len(s.run)-s.maxRun:]
	}
	if s.fired || t.Sub(s.since) < s.window {
		return false, nil
	}
	s.fired = true
	return true, append([]point(nil), s.run...)
}
