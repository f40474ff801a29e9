package trigger

import (
	"fmt"
	"regexp"
	"time"
)

// ProcCPU fires when any matching process of the target uses at least a
// percentage of one CPU for the whole window ("find the python processes
// over 80%"). It samples only the matching processes, every interval.
type ProcCPU struct {
	threshold float64
	window    time.Duration
	interval  time.Duration
	match     *regexp.Regexp
	sampler   *ProcSampler
	per       map[int]*sustained
}

// NewProcCPU watches the processes of g whose comm or cmdline matches
// match (nil: every process), leaving out self.
func NewProcCPU(g *Group, percent float64, match *regexp.Regexp, window, interval time.Duration, self int) *ProcCPU {
	s := NewProcSampler(g, self)
	s.Match = match
	return &ProcCPU{threshold: percent, window: window, interval: interval, match: match, sampler: s, per: map[int]*sustained{}}
}

func (p *ProcCPU) Name() string { return "proc-cpu" }

// Warm reports whether some process is over the threshold now.
func (p *ProcCPU) Warm() bool {
	for _, s := range p.per {
		if !s.since.IsZero() && !s.fired {
			return true
		}
	}
	return false
}

func (p *ProcCPU) Observe(s *Sample) *Event {
	procs := p.sampler.Sample(s.Time)
	seen := make(map[int]bool, len(procs))
	var fired *Event
	for _, ps := range procs {
		seen[ps.Pid] = true
		if ps.CPUPercent == nil {
			continue
		}
		st, ok := p.per[ps.Pid]
		if !ok {
			st = newSustained(p.window, p.interval)
			p.per[ps.Pid] = st
		}
		fire, pts := st.update(s.Time, *ps.CPUPercent >= p.threshold, *ps.CPUPercent)
		if fire && fired == nil {
			match := ""
			if p.match != nil {
				match = p.match.String()
			}
			fired = &Event{
				Kind: "proc-cpu", Time: s.Time,
				Reason: fmt.Sprintf("pid %d (%s) at %.0f%% of one CPU, threshold %s for %s", ps.Pid, ps.Comm, *ps.CPUPercent, pct(p.threshold), p.window),
				Evidence: map[string]any{"pid": ps.Pid, "comm": ps.Comm, "match": match, "threshold": p.threshold,
					"window_s": p.window.Seconds(), "samples": pts},
			}
		}
	}
	for pid := range p.per {
		if !seen[pid] {
			delete(p.per, pid) // exited or no longer matching
		}
	}
	return fired
}
