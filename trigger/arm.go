package trigger

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"
)

// CaptureFunc writes one bundle for ev. history returns the history ring
// as it is when called; the capture calls it last, after the --after
// samples, just before the bundle is committed.
type CaptureFunc func(ctx context.Context, ev Event, history func() []*Sample) (path string, err error)

// Config is one arm.
type Config struct {
	Group    *Group
	Pollers  []Poller
	Watchers []Watcher
	// Interval is the cgroup sampling period (default 1 s, or 2 s with
	// only event-driven triggers).
	Interval time.Duration
	// ProcEvery is how often processes are sampled for the history
	// (default 10 s, or 5 min with no polled trigger); they are sampled
	// every Interval while a poller's condition is true, so the moments
	// around a trigger have detail.
	ProcEvery time.Duration
	// History is how much of the past each bundle freezes (default 5m);
	// After is how long sampling goes on after a trigger before its
	// bundle is committed (default 10 s).
	History, After time.Duration
	Envelope       *Envelope
	DryRun         bool
	Capture        CaptureFunc
	// Fire receives manual requests (SIGUSR1, dashcam fire).
	Fire <-chan string
	Self int
	Log  *slog.Logger
}

// Arm samples the target and runs the watchers until ctx is done, firing
// a capture for each event the envelope lets through. A capture in flight
// when ctx ends is finished (without waiting for its --after samples)
// before Arm returns, so no bundle is left half-written.
func Arm(ctx context.Context, c Config) error {
	if c.Interval <= 0 {
		// The cgroup's counters every second; with only event-driven
		// triggers nothing is judged on them, they only feed the history,
		// and every 2 s keeps an idle arm under 0.1% of a CPU.
		c.Interval = time.Second
		if len(c.Pollers) == 0 {
			c.Interval = 2 * time.Second
		}
	}
	if c.ProcEvery <= 0 {
		// Process samples are the armed process's main cost (a stat and
		// an fd readdir per process). Polled triggers get them every
		// 10 s (and every interval while a condition holds); with only
		// event-driven triggers the history keeps a coarser view.
		c.ProcEvery = 10 * time.Second
		if len(c.Pollers) == 0 {
			c.ProcEvery = 5 * time.Minute
		}
	}
	if c.History <= 0 {
		c.History = 5 * time.Minute
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	var (
		sampler  = NewSampler(c.Group)
		procs    = NewProcSampler(c.Group, c.Self)
		ring     = NewRing(int(c.History/c.Interval) + 1)
		events   = make(chan Event, 16)
		captures sync.WaitGroup
		inFlight bool
		done     = make(chan struct{}, 1)
		lastProc time.Time
		warm     bool
	)
	// fd counts (a readdir per process) feed the history's fd-leak view;
	// an arm with only event-driven triggers (OOM, PSI) keeps to <0.1% of
	// a CPU and goes without them.
	procs.FDs = len(c.Pollers) > 0

	for _, w := range c.Watchers {
		go func() {
			err := w.Watch(ctx, func(ev Event) {
				select {
				case events <- ev:
				case <-ctx.Done():
				}
			})
			if err != nil && ctx.Err() == nil {
				c.Log.Warn("watcher stopped", "trigger", w.Name(), "err", err)
			}
		}()
	}

	handle := func(ev Event) {
		c.Log.Info("trigger fired", "trigger", ev.Kind, "reason", ev.Reason, "evidence", jsonValue{ev.Evidence})
		if c.DryRun {
			ok, why := true, ""
			if c.Envelope != nil {
				ok, why = c.Envelope.Check(ev.Time)
			}
			c.Log.Info("dry run: would capture", "trigger", ev.Kind, "allowed", ok, "suppressed_by", why)
			return
		}
		if inFlight {
			c.Log.Warn("capture suppressed", "trigger", ev.Kind, "why", "a capture is already in flight")
			return
		}
		if c.Envelope != nil {
			if ok, why := c.Envelope.Check(ev.Time); !ok {
				c.Log.Warn("capture suppressed", "trigger", ev.Kind, "why", why)
				return
			}
		}
		inFlight = true
		captures.Add(1)
		go func() {
			defer captures.Done()
			defer func() { done <- struct{}{} }()
			// The capture is not cancelled with the arm: a SIGTERM during
			// a capture finishes it (bounded by its own timeout).
			path, err := c.Capture(context.WithoutCancel(ctx), ev, func() []*Sample {
				waitAfter(ctx, ev.Time, c.After)
				return ring.Snapshot()
			})
			if err != nil {
				c.Log.Error("capture failed", "trigger", ev.Kind, "err", err)
				return
			}
			c.Log.Info("bundle written", "trigger", ev.Kind, "path", path)
			if c.Envelope != nil {
				deleted, err := c.Envelope.Record(Record{Path: path, Trigger: ev.Kind, Time: ev.Time})
				for _, d := range deleted {
					c.Log.Info("deleted old bundle (--max-disk)", "path", d)
				}
				if err != nil {
					c.Log.Error("arm state not saved", "err", err)
				}
			}
		}()
	}

	tick := time.NewTicker(c.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			captures.Wait()
			return nil
		case <-done:
			inFlight = false
		case ev := <-events:
			handle(ev)
		case why := <-c.Fire:
			handle(Event{Kind: "manual", Reason: why, Time: time.Now()})
		case now := <-tick.C:
			s := sampler.Sample(now)
			if warm || lastProc.IsZero() || now.Sub(lastProc) >= c.ProcEvery {
				s.Procs, lastProc = procs.Sample(now), now
			}
			ring.Add(s)
			if c.Log.Enabled(ctx, slog.LevelDebug) {
				c.Log.Debug("sample", "cpu_pct", fmtPtr(s.CPUPercent), "throttled_pct", fmtPtr(s.ThrottledPercent),
					"mem_pct", fmtPtr(s.MemPercent), "procs", len(s.Procs))
			}
			warm = false
			for _, p := range c.Pollers {
				if ev := p.Observe(s); ev != nil {
					handle(*ev)
				}
				if w, ok := p.(interface{ Warm() bool }); ok && w.Warm() {
					warm = true
				}
			}
		}
	}
}

// waitAfter waits until after has passed since t, or ctx is done.
func waitAfter(ctx context.Context, t time.Time, after time.Duration) {
	d := time.Until(t.Add(after))
	if d <= 0 {
		return
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-ctx.Done():
	}
}

// fmtPtr formats an optional number for the debug log.
func fmtPtr(v *float64) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatFloat(*v, 'f', 1, 64)
}

// jsonValue logs a value as compact JSON, readable in text logs and
// parseable in JSON ones.
type jsonValue struct{ v any }

func (j jsonValue) LogValue() slog.Value {
	b, err := json.Marshal(j.v)
	if err != nil {
		return slog.StringValue(fmt.Sprint(j.v))
	}
	return slog.StringValue(string(b))
}
