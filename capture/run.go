package capture

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/dashcam-dev/dashcam/bundle"
)

// ErrNotSupported means a module cannot run on this kernel or machine.
// Wrap it with the feature and what enables it, e.g.
// fmt.Errorf("%w: PSI needs Linux 4.20 with CONFIG_PSI (boot with psi=1)", ErrNotSupported).
var ErrNotSupported = errors.New("not supported here")

// RunOptions control a run of modules.
type RunOptions struct {
	Modules []string // names, as from SelectModules
	// ModuleTimeout is the deadline of each module (0: only ctx's).
	ModuleTimeout time.Duration
	Config        *Config
	Log           *slog.Logger
}

// Report is what a run of modules did, ready for the manifest.
type Report struct {
	Modules    []bundle.ModuleResult
	Counts     bundle.Counts
	Redactions []bundle.Redaction
}

// Run runs the modules concurrently against t, each under its own
// deadline, storing members in out. It never fails as a whole: each
// module's outcome is in the report. A module still running at its
// deadline is abandoned; what it stored before stays, later writes are
// dropped, and its status says so.
func Run(ctx context.Context, t *Target, out Adder, o RunOptions) Report {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Config == nil {
		o.Config = &Config{Paths: DefaultPaths()}
	}
	var (
		wg      sync.WaitGroup
		results = make([]bundle.ModuleResult, len(o.Modules))
		sinks   = make([]*Sink, len(o.Modules))
	)
	for i, name := range o.Modules {
		reg, ok := registry[name]
		if !ok {
			results[i] = bundle.ModuleResult{Name: name, Status: bundle.StatusFailed, Reason: "unknown module"}
			continue
		}
		sinks[i] = newSink(name, out)
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = runOne(ctx, reg.factory(o.Config), name, t, sinks[i], o)
		}()
	}
	wg.Wait()

	rep := Report{Modules: results, Counts: bundle.Counts{ProcessesSeen: len(t.Pids)}}
	vanished := map[int]bool{}
	for _, s := range sinks {
		if s == nil {
			continue
		}
		s.mu.Lock()
		for pid := range s.vanished {
			vanished[pid] = true
		}
		rep.Counts.ThreadsSeen += s.threads
		rep.Redactions = append(rep.Redactions, s.redactions...)
		s.mu.Unlock()
	}
	rep.Counts.ProcessesVanished = len(vanished)
	sort.Slice(rep.Redactions, func(i, j int) bool {
		a, b := rep.Redactions[i], rep.Redactions[j]
		if a.Member != b.Member {
			return a.Member < b.Member
		}
		return a.Rule < b.Rule
	})
	return rep
}

// runOne runs one module and turns what happened into its result.
func runOne(ctx context.Context, m Module, name string, t *Target, s *Sink, o RunOptions) bundle.ModuleResult {
	start := time.Now()
	if o.ModuleTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.ModuleTimeout)
		defer cancel()
	}
	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Errorf("panic: %v\n%s", r, debug.Stack())
			}
		}()
		done <- m.Run(ctx, t, s)
	}()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	s.close()
	r := result(name, err, s)
	r.DurationMS = float64(time.Since(start).Microseconds()) / 1000
	o.Log.Debug("module done", "module", name, "status", r.Status, "reason", r.Reason, "ms", r.DurationMS)
	return r
}

// result decides a module's status from its error and its sink's notes.
func result(name string, err error, s *Sink) bundle.ModuleResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := bundle.ModuleResult{Name: name, Status: bundle.StatusOK, Members: s.members}
	var reasons []string
	switch {
	case err == nil:
	case errors.Is(err, ErrNotSupported):
		r.Status, r.Reason = bundle.StatusSkipped, err.Error()
		return r
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		r.Status = bundle.StatusPartial
		reasons = append(reasons, fmt.Sprintf("stopped early (%v) after %d members", err, s.members))
	default:
		r.Status, r.Reason = bundle.StatusFailed, err.Error()
		r.Errors = append(r.Errors, s.problems...)
		return r
	}
	if n := len(s.denied); n > 0 {
		r.Status = bundle.StatusPartial
		hint := "run as root"
		if os.Geteuid() == 0 {
			// Root is refused too for protected processes (ptrace access
			// checks by Yama or an LSM, e.g. on syscall, io, environ).
			hint = "denied even to root: ptrace restrictions or an LSM"
		}
		reasons = append(reasons, fmt.Sprintf("permission denied reading %s (e.g. %s); %s", plural(n, "file"), s.denied[0], hint))
	}
	if n := len(s.truncated); n > 0 {
		r.Status = bundle.StatusPartial
		reason := s.truncated[0]
		if n > 1 {
			reason = fmt.Sprintf("%s (and %d more limits reached)", reason, n-1)
		}
		reasons = append(reasons, reason)
		r.Errors = append(r.Errors, limitStrings(s.truncated, 20)...)
	}
	if n := len(s.problems); n > 0 {
		r.Status = bundle.StatusPartial
		reasons = append(reasons, fmt.Sprintf("%s (e.g. %s)", plural(n, "read error"), s.problems[0]))
		r.Errors = append(r.Errors, limitStrings(s.problems, 20)...)
	}
	if n := len(s.vanished); n > 0 {
		reasons = append(reasons, fmt.Sprintf("%s exited during capture", plural(n, "process")))
	}
	r.Reason = strings.Join(reasons, "; ")
	return r
}

func limitStrings(s []string, n int) []string {
	if len(s) <= n {
		return append([]string(nil), s...)
	}
	return append(append([]string(nil), s[:n]...), fmt.Sprintf("… and %d more", len(s)-n))
}

// plural writes "1 file", "2 files", "3 processes".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	if strings.HasSuffix(noun, "s") {
		return fmt.Sprintf("%d %ses", n, noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
