package trigger

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Sample is one reading of the target, taken every interval while armed.
// It is what polled triggers judge and what the history ring keeps. A nil
// field is a number the kernel did not give (no such controller, the
// first sample of a rate): absent, not zero.
type Sample struct {
	Time time.Time `json:"t"`
	// CPUCores is the CPU the cgroup used since the previous sample, in CPUs.
	CPUCores *float64 `json:"cpu_cores,omitempty"`
	// CPUPercent is CPUCores relative to the effective CPU limit.
	CPUPercent *float64 `json:"cpu_pct,omitempty"`
	CPULimit   float64  `json:"cpu_limit_cpus"`
	// CPULimitSource and MemLimitSource say where the limits come from
	// (kept out of the history lines; triggers put them in evidence).
	CPULimitSource string `json:"-"`
	MemLimitSource string `json:"-"`
	// ThrottledPercent is Δnr_throttled/Δnr_periods: the share of CFS
	// periods in which the cgroup hit its quota.
	ThrottledPercent *float64 `json:"throttled_pct,omitempty"`
	MemBytes         *uint64  `json:"mem_bytes,omitempty"`
	MemLimit         float64  `json:"mem_limit_bytes,omitempty"`
	MemPercent       *float64 `json:"mem_pct,omitempty"`
	// PSI maps "cpu", "memory", "io" to the cgroup's pressure.
	PSI map[string]PSI `json:"psi,omitempty"`
	// Procs are per-process readings, present only in the samples where
	// the (slower) process sampler ran.
	Procs []ProcSample `json:"procs,omitempty"`
}

// PSI is one pressure file.
type PSI struct {
	Some *PSILine `json:"some,omitempty"`
	Full *PSILine `json:"full,omitempty"`
}

// PSILine is one line of a pressure file; averages are percentages.
type PSILine struct {
	Avg10  float64 `json:"avg10"`
	Avg60  float64 `json:"avg60"`
	Avg300 float64 `json:"avg300"`
	Total  uint64  `json:"total_us"`
}

// parsePSI parses a pressure file (/proc/pressure/<res>, or
// <cgroup>/<res>.pressure):
//
//	some avg10=0.00 avg60=0.00 avg300=0.00 total=0
//	full avg10=0.00 avg60=0.00 avg300=0.00 total=0
//
// "full" is absent for cpu before Linux 5.13.
func parsePSI(b []byte) (PSI, error) {
	var p PSI
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		f := strings.Fields(string(line))
		if len(f) != 5 {
			return PSI{}, fmt.Errorf("psi: malformed line %q", line)
		}
		var l PSILine
		for _, kv := range f[1:] {
			k, v, _ := strings.Cut(kv, "=")
			var err error
			switch k {
			case "avg10":
				l.Avg10, err = strconv.ParseFloat(v, 64)
			case "avg60":
				l.Avg60, err = strconv.ParseFloat(v, 64)
			case "avg300":
				l.Avg300, err = strconv.ParseFloat(v, 64)
			case "total":
				l.Total, err = strconv.ParseUint(v, 10, 64)
			}
			if err != nil {
				return PSI{}, fmt.Errorf("psi: %q: %w", kv, err)
			}
		}
		switch f[0] {
		case "some":
			p.Some = &l
		case "full":
			p.Full = &l
		}
	}
	return p, nil
}

// Sampler reads the target's counters and turns them into Samples.
type Sampler struct {
	g *Group
	// Resources are the PSI resources to read.
	Resources []string

	cpuLimit, memLimit Limit
	limitsAt           time.Time
	prev               *counters
}

// counters are the cumulative values rates are computed from.
type counters struct {
	t                  time.Time
	usage              uint64
	hasUsage           bool
	periods, throttled uint64
	hasThrottle        bool
}

// limitsEvery is how often the effective limits are re-read: they change
// rarely (a deploy, a systemctl set-property) but they do change.
const limitsEvery = 30 * time.Second

// NewSampler samples g.
func NewSampler(g *Group) *Sampler {
	return &Sampler{g: g, Resources: []string{"cpu", "memory", "io"}}
}

// Limits returns the effective limits used by the latest sample.
func (s *Sampler) Limits() (cpu, mem Limit) { return s.cpuLimit, s.memLimit }

// Sample reads the counters at now. Rates need two readings: the first
// sample has no CPU or throttling figures.
func (s *Sampler) Sample(now time.Time) *Sample {
	if s.limitsAt.IsZero() || now.Sub(s.limitsAt) >= limitsEvery {
		s.g.forget()
		s.cpuLimit, s.memLimit, s.limitsAt = s.g.CPULimit(), s.g.MemoryLimit(), now
	}
	s.g.beginSample()
	defer s.g.endSample()
	out := &Sample{Time: now, CPULimit: s.cpuLimit.Value,
		CPULimitSource: s.cpuLimit.Source, MemLimitSource: s.memLimit.Source}
	c := &counters{t: now}
	if u, _, err := s.g.CPUUsage(); err == nil {
		c.usage, c.hasUsage = u, true
	}
	if p, th, _, err := s.g.Throttling(); err == nil {
		c.periods, c.throttled, c.hasThrottle = p, th, true
	}
	if prev := s.prev; prev != nil {
		dt := now.Sub(prev.t).Seconds()
		if c.hasUsage && prev.hasUsage && dt > 0 && c.usage >= prev.usage {
			cores := float64(c.usage-prev.usage) / 1e9 / dt
			pct := 100 * cores / s.cpuLimit.Value
			out.CPUCores, out.CPUPercent = &cores, &pct
		}
		if c.hasThrottle && prev.hasThrottle && c.periods > prev.periods && c.throttled >= prev.throttled {
			pct := 100 * float64(c.throttled-prev.throttled) / float64(c.periods-prev.periods)
			out.ThrottledPercent = &pct
		} else if c.hasThrottle && prev.hasThrottle && c.periods == prev.periods {
			zero := 0.0 // no CFS period ran: nothing was throttled
			out.ThrottledPercent = &zero
		}
	}
	s.prev = c
	if m, _, err := s.g.MemoryUsage(); err == nil {
		out.MemBytes = &m
		if s.memLimit.Value > 0 && s.memLimit.Value < 1<<62 {
			pct := 100 * float64(m) / s.memLimit.Value
			out.MemLimit, out.MemPercent = s.memLimit.Value, &pct
		}
	}
	for _, res := range s.Resources {
		if b, err := s.g.readPressure(res); err == nil {
			if p, err := parsePSI(b); err == nil {
				if out.PSI == nil {
					out.PSI = map[string]PSI{}
				}
				out.PSI[res] = p
			}
		}
	}
	return out
}
