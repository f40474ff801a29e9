package trigger

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// threshold is a polled trigger: a value read from each sample that must
// be at or above a threshold for a whole window (sustained), then clear
// before it can fire again. The CPU, throttling, memory and PSI triggers
// are thresholds that differ only in the value they read and how they
// explain it.
type threshold struct {
	kind      string
	threshold float64
	window    time.Duration
	s         *sustained
	// value extracts the judged number; false when the sample lacks it.
	value func(*Sample) (float64, bool)
	// explain describes the value for the event's reason ("cpu 93% of
	// its limit (1 CPU from cpu.max of /app)").
	explain func(v float64, s *Sample) string
	// evidence adds trigger-specific facts (the limit used and its source).
	evidence func(s *Sample) map[string]any
}

func (t *threshold) Name() string { return t.kind }

// Warm reports whether the window is filling (the condition holds and has
// not fired yet): the arm loop samples processes every interval while it
// does, so the moments before a trigger have detail. After the fire it
// stops: a condition that stays true for hours must not fill the history
// ring with per-second process samples.
func (t *threshold) Warm() bool { return !t.s.since.IsZero() && !t.s.fired }

func (t *threshold) Observe(s *Sample) *Event {
	v, ok := t.value(s)
	if !ok {
		return nil
	}
	fire, pts := t.s.update(s.Time, v >= t.threshold, v)
	if !fire {
		return nil
	}
	reason := fmt.Sprintf("%s, threshold %s", t.explain(v, s), pct(t.threshold))
	if t.window > 0 {
		reason = fmt.Sprintf("%s for %s", reason, t.window)
	}
	ev := map[string]any{"threshold": t.threshold, "window_s": t.window.Seconds(), "samples": pts}
	if t.evidence != nil {
		for k, v := range t.evidence(s) {
			ev[k] = v
		}
	}
	return &Event{Kind: t.kind, Reason: reason, Time: s.Time, Evidence: ev}
}

func pct(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) + "%" }

// NewCPU fires when the cgroup uses at least percent of its effective CPU
// limit (not of the host) for the whole window.
func NewCPU(percent float64, window, interval time.Duration) Poller {
	return &threshold{
		kind: "cpu", threshold: percent, window: window, s: newSustained(window, interval),
		value: func(s *Sample) (float64, bool) { return deref(s.CPUPercent) },
		explain: func(v float64, s *Sample) string {
			return fmt.Sprintf("cpu at %.0f%% of its limit (%s)", v, s.CPULimitSource)
		},
		evidence: func(s *Sample) map[string]any {
			return map[string]any{"limit_cpus": s.CPULimit, "limit_source": s.CPULimitSource}
		},
	}
}

// NewThrottle fires when at least percent of the cgroup's CFS periods
// were throttled (Δnr_throttled/Δnr_periods) for the whole window.
func NewThrottle(percent float64, window, interval time.Duration) Poller {
	return &threshold{
		kind: "throttle", threshold: percent, window: window, s: newSustained(window, interval),
		value: func(s *Sample) (float64, bool) { return deref(s.ThrottledPercent) },
		explain: func(v float64, s *Sample) string {
			return fmt.Sprintf("throttled in %.0f%% of CFS periods (limit %s)", v, s.CPULimitSource)
		},
		evidence: func(s *Sample) map[string]any {
			return map[string]any{"limit_cpus": s.CPULimit, "limit_source": s.CPULimitSource}
		},
	}
}

// NewMemory fires when the cgroup's memory use is at least percent of its
// effective limit for the whole window: the capture before an OOM kill,
// while the culprit is still alive.
func NewMemory(percent float64, window, interval time.Duration) Poller {
	return &threshold{
		kind: "mem", threshold: percent, window: window, s: newSustained(window, interval),
		value: func(s *Sample) (float64, bool) { return deref(s.MemPercent) },
		explain: func(v float64, s *Sample) string {
			return fmt.Sprintf("memory at %.0f%% of its limit (%s)", v, s.MemLimitSource)
		},
		evidence: func(s *Sample) map[string]any {
			ev := map[string]any{"limit_bytes": s.MemLimit, "limit_source": s.MemLimitSource}
			if s.MemBytes != nil {
				ev["usage_bytes"] = *s.MemBytes
			}
			return ev
		},
	}
}

// PSISpec is a polled pressure condition: memory.full.avg10>10.
type PSISpec struct {
	Resource  string  // cpu, memory, io
	Line      string  // some, full
	Avg       string  // avg10, avg60, avg300
	Threshold float64 // percent
}

func (p PSISpec) String() string {
	return fmt.Sprintf("%s.%s.%s>%s", p.Resource, p.Line, p.Avg, strconv.FormatFloat(p.Threshold, 'f', -1, 64))
}

// ParsePSISpec parses RESOURCE.LINE.AVG>PERCENT, e.g. memory.full.avg10>10.
func ParsePSISpec(s string) (PSISpec, error) {
	lhs, rhs, ok := strings.Cut(s, ">")
	parts := strings.Split(lhs, ".")
	if !ok || len(parts) != 3 {
		return PSISpec{}, fmt.Errorf("psi condition %q: want RESOURCE.LINE.AVG>PERCENT, e.g. memory.full.avg10>10", s)
	}
	p := PSISpec{Resource: parts[0], Line: parts[1], Avg: parts[2]}
	if !oneOf(p.Resource, "cpu", "memory", "io") || !oneOf(p.Line, "some", "full") || !oneOf(p.Avg, "avg10", "avg60", "avg300") {
		return PSISpec{}, fmt.Errorf("psi condition %q: resource is cpu, memory or io; line some or full; average avg10, avg60 or avg300", s)
	}
	v, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rhs), "%"), 64)
	if err != nil || v < 0 || v > 100 {
		return PSISpec{}, fmt.Errorf("psi condition %q: threshold must be a percentage from 0 to 100", s)
	}
	p.Threshold = v
	return p, nil
}

func oneOf(s string, set ...string) bool {
	for _, x := range set {
		if s == x {
			return true
		}
	}
	return false
}

// NewPSI fires when a pressure average is above the threshold (for the
// window, if one is given; the kernel's averages are already smoothed).
func NewPSI(spec PSISpec, window, interval time.Duration) Poller {
	return &threshold{
		kind: "psi", threshold: spec.Threshold, window: window, s: newSustained(window, interval),
		value: func(s *Sample) (float64, bool) {
			p, ok := s.PSI[spec.Resource]
			if !ok {
				return 0, false
			}
			l := p.Some
			if spec.Line == "full" {
				l = p.Full
			}
			if l == nil {
				return 0, false
			}
			switch spec.Avg {
			case "avg60":
				return l.Avg60, true
			case "avg300":
				return l.Avg300, true
			}
			return l.Avg10, true
		},
		explain: func(v float64, s *Sample) string {
			return fmt.Sprintf("%s.%s.%s pressure at %.2f%%", spec.Resource, spec.Line, spec.Avg, v)
		},
		evidence: func(*Sample) map[string]any { return map[string]any{"condition": spec.String()} },
	}
}

func deref(p *float64) (float64, bool) {
	if p == nil {
		return 0, false
	}
	return *p, true
}
