package trigger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// PSITriggerSpec is a kernel PSI trigger (Linux 5.2+,
// Documentation/accounting/psi.rst "Monitoring for pressure thresholds"):
// the kernel wakes the watcher when tasks were stalled on Resource for at
// least Stall within any Window. Written as RESOURCE:LINE:STALL/WINDOW,
// e.g. memory:some:150ms/2s.
type PSITriggerSpec struct {
	Resource string // cpu, memory, io
	Line     string // some, full
	Stall    time.Duration
	Window   time.Duration
}

// The kernel's limits on a trigger's window (kernel/sched/psi.c
// WINDOW_MIN_US, WINDOW_MAX_US), and the granularity it demands from an
// opener without CAP_SYS_RESOURCE (Linux 6.5+; older kernels refuse
// unprivileged triggers altogether).
const (
	psiWindowMin          = 500 * time.Millisecond
	psiWindowMax          = 10 * time.Second
	psiUnprivilegedWindow = 2 * time.Second
)

func (s PSITriggerSpec) String() string {
	return fmt.Sprintf("%s:%s:%s/%s", s.Resource, s.Line, s.Stall, s.Window)
}

// ParsePSITrigger parses RESOURCE:LINE:STALL/WINDOW, e.g.
// memory:some:150ms/2s. The window must be 500ms..10s and the stall
// positive and no longer than the window; both are used in microseconds.
func ParsePSITrigger(s string) (PSITriggerSpec, error) {
	bad := func(why string) (PSITriggerSpec, error) {
		return PSITriggerSpec{}, fmt.Errorf("psi trigger %q: %s", s, why)
	}
	f := strings.Split(s, ":")
	if len(f) != 3 {
		return bad("want RESOURCE:LINE:STALL/WINDOW, e.g. memory:some:150ms/2s")
	}
	spec := PSITriggerSpec{Resource: f[0], Line: f[1]}
	if !oneOf(spec.Resource, "cpu", "memory", "io") || !oneOf(spec.Line, "some", "full") {
		return bad("resource is cpu, memory or io; line some or full")
	}
	stall, window, ok := strings.Cut(f[2], "/")
	if !ok {
		return bad("want STALL/WINDOW, e.g. 150ms/2s")
	}
	var err error
	if spec.Stall, err = time.ParseDuration(stall); err != nil {
		return bad("stall: " + err.Error())
	}
	if spec.Window, err = time.ParseDuration(window); err != nil {
		return bad("window: " + err.Error())
	}
	spec.Stall, spec.Window = spec.Stall.Truncate(time.Microsecond), spec.Window.Truncate(time.Microsecond)
	switch {
	case spec.Window < psiWindowMin || spec.Window > psiWindowMax:
		return bad(fmt.Sprintf("window must be from %s to %s", psiWindowMin, psiWindowMax))
	case spec.Stall <= 0 || spec.Stall > spec.Window:
		return bad("stall must be positive and at most the window")
	}
	return spec, nil
}

// roundWindow adapts spec to a kernel that only accepts windows in
// multiples of 2 s (an opener without CAP_SYS_RESOURCE): the window
// becomes the nearest multiple of 2 s from 2 s to 10 s (ties round up),
// and the stall is scaled with it, so the pressure ratio the user asked
// for (150ms/2s = 7.5% of the time stalled) is kept. Keeping the stall
// instead would change the condition's meaning: 100ms/1s (10%) as
// 100ms/2s would fire at half the pressure.
func roundWindow(spec PSITriggerSpec) PSITriggerSpec {
	n := (spec.Window + psiUnprivilegedWindow/2) / psiUnprivilegedWindow
	n = min(max(n, 1), psiWindowMax/psiUnprivilegedWindow)
	w := n * psiUnprivilegedWindow
	stall := time.Duration(float64(spec.Stall) * float64(w) / float64(spec.Window)).Round(time.Microsecond)
	spec.Stall, spec.Window = min(max(stall, time.Microsecond), w), w
	return spec
}

type psiTrigger struct {
	g    *Group
	spec PSITriggerSpec
	log  *slog.Logger
	// ready, when set (tests), is called once the trigger is registered.
	ready func()
}

// NewPSITrigger watches the cgroup's pressure file (<res>.pressure in the
// unified tree, also on hybrid hosts; /proc/pressure/<res> when the
// cgroup has none, with a logged note) with a kernel PSI trigger. It
// fires once per event, and the kernel sends at most one event per
// window.
func NewPSITrigger(g *Group, spec PSITriggerSpec, log *slog.Logger) Watcher {
	return &psiTrigger{g: g, spec: spec, log: orDiscard(log)}
}

func (p *psiTrigger) Name() string { return "psi-trigger " + p.spec.String() }

func (p *psiTrigger) Watch(ctx context.Context, fire func(Event)) error {
	file, fallback := p.g.PressureFile(p.spec.Resource)
	if fallback {
		p.log.Info("cgroup has no pressure file; watching the host's", "trigger", p.spec.String(), "file", file)
	}
	fd, used, err := p.open(file)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	w, err := newWaker(ctx)
	if err != nil {
		return fmt.Errorf("psi trigger: %w", err)
	}
	defer w.close()
	// Since Linux 6.5 an opener without CAP_SYS_RESOURCE gets a trigger
	// the averaging worker checks every 2 s (hence the window multiple),
	// not the real-time poller: its events come up to 2 s late.
	checked := "as stalls happen (real-time poller)"
	if !capSysResource() {
		checked = "every 2s (no CAP_SYS_RESOURCE: the kernel's averaging worker)"
		p.log.Info("psi trigger checked by the kernel every 2s only; events may come up to 2s after the condition",
			"trigger", p.spec.String(), "why", "no CAP_SYS_RESOURCE")
	}
	reason := fmt.Sprintf("%s %s stall ≥%s within %s", p.spec.Resource, p.spec.Line, used.Stall, used.Window)
	if used != p.spec {
		reason += fmt.Sprintf(" (asked %s/%s; the kernel takes only windows in multiples of %s without CAP_SYS_RESOURCE)",
			p.spec.Stall, p.spec.Window, psiUnprivilegedWindow)
	}
	if p.ready != nil {
		p.ready()
	}
	for {
		re, cancelled, err := w.wait(fd, unix.POLLPRI, -1)
		switch {
		case cancelled:
			return nil
		case err != nil:
			return fmt.Errorf("psi trigger on %s: poll: %w", file, err)
		case re&(unix.POLLERR|unix.POLLNVAL) != 0:
			// kernfs reports POLLERR once the file is deactivated: the
			// cgroup was removed, or its cgroup.pressure set to 0 (5.19+).
			// The directory may still be visible for a moment after
			// removal, its files not: they fail with ENODEV.
			if b, err := os.ReadFile(filepath.Join(filepath.Dir(file), "cgroup.pressure")); err == nil && strings.TrimSpace(string(b)) == "0" {
				return fmt.Errorf("psi trigger on %s: cgroup.pressure set to 0: %w", file, ErrUnsupported)
			}
			return fmt.Errorf("psi trigger on %s: %w", file, ErrGroupGone)
		case re&unix.POLLPRI == 0:
			continue
		}
		ev := Event{Kind: "psi-trigger", Reason: reason, Time: time.Now(), Evidence: map[string]any{
			"resource": p.spec.Resource, "line": p.spec.Line,
			"stall_us": used.Stall.Microseconds(), "window_us": used.Window.Microseconds(),
			"stall_requested_us": p.spec.Stall.Microseconds(), "window_requested_us": p.spec.Window.Microseconds(),
			"file": file, "fallback": fallback, "kernel_checks": checked,
		}}
		if b, err := os.ReadFile(file); err == nil {
			if psi, err := parsePSI(b); err == nil {
				ev.Evidence["psi"] = psi
			}
		}
		fire(ev)
	}
}

// open opens file and registers the trigger on it; when the kernel
// refuses the window (EINVAL: without CAP_SYS_RESOURCE windows must be
// multiples of 2 s) it retries once with roundWindow's, and logs it.
// used is the spec the kernel accepted.
func (p *psiTrigger) open(file string) (fd int, used PSITriggerSpec, err error) {
	used = p.spec
	for {
		fd, err = register(file, used)
		if err == nil {
			if used != p.spec {
				p.log.Warn("psi trigger window refused by the kernel; rounded",
					"trigger", p.spec.String(), "used", used.String(), "file", file,
					"why", "without CAP_SYS_RESOURCE the window must be a multiple of 2s; the stall is scaled to keep the same ratio")
			}
			return fd, used, nil
		}
		if errors.Is(err, unix.EINVAL) && used == p.spec {
			if r := roundWindow(p.spec); r != p.spec {
				used = r
				continue
			}
		}
		return -1, used, err
	}
}

// register opens a pressure file and writes a trigger to it:
//
//	<some|full> <stall µs> <window µs>
//
// e.g. "some 150000 2000000". The trigger lives as long as the fd; one
// per fd. /proc/pressure/* replaces the write's last byte with NUL, so a
// NUL is sent (as the kernel documentation's example does).
func register(file string, s PSITriggerSpec) (int, error) {
	fd, err := unix.Open(file, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	switch {
	case errors.Is(err, unix.ENOENT):
		return -1, fmt.Errorf("psi trigger: no %s (PSI needs Linux 4.20+ with CONFIG_PSI, not booted psi=0): %w", file, ErrUnsupported)
	case err != nil:
		return -1, fmt.Errorf("psi trigger: open %s: %w", file, err)
	}
	msg := fmt.Sprintf("%s %d %d\x00", s.Line, s.Stall.Microseconds(), s.Window.Microseconds())
	if _, err := unix.Write(fd, []byte(msg)); err != nil {
		unix.Close(fd)
		if errors.Is(err, unix.EOPNOTSUPP) {
			return -1, fmt.Errorf("psi trigger: write %s: PSI disabled (psi=0 or cgroup.pressure 0): %w", file, ErrUnsupported)
		}
		return -1, fmt.Errorf("psi trigger: write %q to %s: %w", strings.TrimSuffix(msg, "\x00"), file, err)
	}
	return fd, nil
}

// capSysResource reports whether this process has CAP_SYS_RESOURCE in its
// effective set, which the kernel checks (on the opener's credentials)
// for triggers with any window and real-time polling.
func capSysResource() bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false
	}
	return data[unix.CAP_SYS_RESOURCE/32].Effective&(1<<(unix.CAP_SYS_RESOURCE%32)) != 0
}
