package analyze

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Helpers shared by the text and Markdown renderers. Everything that
// came from the bundle goes through clean before it is printed: comm and
// cmdline are chosen by whoever ran the process, and a bundle is hostile.

const unknown = "unknown"

// maxCmdline is how many characters of a command line the tables show.
const maxCmdline = 60

// clean escapes what could confuse a terminal or a Markdown renderer:
// control and other non-printing characters and invalid UTF-8.
func clean(s string) string {
	ok := true
	for _, r := range s {
		if r == utf8.RuneError || !unicode.IsPrint(r) && r != ' ' {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	q := strconv.QuoteToGraphic(s)
	return q[1 : len(q)-1]
}

// cmdline shortens a process's command line for a table: "unknown" when
// absent, "[comm]" for a kernel thread (as ps shows it).
func cmdline(p Process) string {
	switch {
	case p.Cmdline == nil:
		return unknown
	case len(p.Cmdline) == 0:
		return "[" + clean(p.Comm) + "]"
	}
	s := clean(strings.Join(p.Cmdline, " "))
	if utf8.RuneCountInString(s) > maxCmdline {
		s = string([]rune(s)[:maxCmdline-1]) + "…"
	}
	return s
}

func intOr(p *int) string {
	if p == nil {
		return unknown
	}
	return strconv.Itoa(*p)
}

func bytesOr[T int64 | uint64](p *T) string {
	if p == nil {
		return unknown
	}
	return humanBytes(uint64(*p))
}

// humanBytes formats n in binary units with three significant digits.
func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	v := float64(n) / float64(div)
	prec := 2
	switch {
	case v >= 100:
		prec = 0
	case v >= 10:
		prec = 1
	}
	return strconv.FormatFloat(v, 'f', prec, 64) + " " + "KMGTPE"[exp:exp+1] + "iB"
}

func secondsOr(p *float64) string {
	if p == nil {
		return unknown
	}
	return strconv.FormatFloat(*p, 'f', 2, 64) + "s"
}

func startedOr(t *time.Time) string {
	if t == nil {
		return unknown
	}
	return t.Format("2006-01-02 15:04:05 UTC")
}

func durationOr(p *float64) string {
	if p == nil {
		return unknown
	}
	return strconv.FormatFloat(*p, 'f', 3, 64) + "s"
}

// hostLine is the one-line description of the host.
func hostLine(h Host) string {
	parts := []string{"kernel " + orUnknown(h.KernelRelease), intOr(h.CPUs) + " cpus"}
	mem := bytesOr(h.MemTotalBytes) + " memory"
	if h.MemAvailableBytes != nil {
		mem += " (" + humanBytes(*h.MemAvailableBytes) + " available)"
	}
	parts = append(parts, mem, "cgroup "+orUnknown(h.CgroupMode))
	return clean(orUnknown(h.Hostname)) + ": " + clean(strings.Join(parts, ", "))
}

// targetLine describes the target kind and spec.
func targetLine(t Target) string {
	s := orUnknown(t.Kind)
	if t.Spec != "" {
		s += " " + t.Spec
	}
	if t.PidCount != nil {
		s += fmt.Sprintf(" (%d pids)", *t.PidCount)
	}
	return clean(s)
}

func cgroupLine(c Cgroup) string {
	return clean(fmt.Sprintf("%s %s (%d pids)", c.Hierarchy, c.Path, c.Pids))
}

func captureLine(c Capture) string {
	s := startedOr(c.Started) + " for " + durationOr(c.DurationSeconds) + ", trigger " + orUnknown(c.Trigger)
	if c.TriggerReason != "" {
		s += ": " + c.TriggerReason
	}
	if c.Tool != "" {
		s += ", by " + c.Tool
	}
	return clean(s)
}

func loadLine(l *LoadAvg) string {
	if l == nil {
		return unknown
	}
	return fmt.Sprintf("%.2f %.2f %.2f (1, 5, 15 min)", l.Load1, l.Load5, l.Load15)
}

// psiLines renders a pressure file in the kernel's own format.
func psiLines(p Pressure) []string {
	var out []string
	for _, l := range []struct {
		kind string
		line *PSILine
	}{{"some", p.Some}, {"full", p.Full}} {
		if l.line != nil {
			out = append(out, fmt.Sprintf("%s avg10=%.2f avg60=%.2f avg300=%.2f total=%d",
				l.kind, l.line.Avg10, l.line.Avg60, l.line.Avg300, l.line.TotalUS))
		}
	}
	return out
}

// parentLine describes a zombie group's parent.
func parentLine(g ZombieGroup) string {
	p := g.Parent
	sig := map[string]string{
		"caught":  "catches SIGCHLD",
		"ignored": "ignores SIGCHLD",
		"default": "no SIGCHLD handler",
	}[p.SIGCHLD]
	if sig == "" {
		sig = "SIGCHLD disposition unknown"
	}
	s := "parent " + strconv.Itoa(p.Pid)
	if p.Comm == "" {
		return s + " (not in bundle), " + sig
	}
	return clean(fmt.Sprintf("%s (%s), state %s, %s", s, p.Comm, p.State, sig))
}

func zombieList(g ZombieGroup) string {
	var s []string
	for _, z := range g.Zombies {
		s = append(s, fmt.Sprintf("%d (%s)", z.Pid, z.Comm))
	}
	return clean(strings.Join(s, ", "))
}

func statesLine(states []StateCount) string {
	var s []string
	for _, st := range states {
		s = append(s, fmt.Sprintf("%s %d", st.State, st.Count))
	}
	if len(s) == 0 {
		return "none"
	}
	return clean(strings.Join(s, "  "))
}

func wchanOr(w string) string {
	if w == "" {
		return unknown
	}
	return clean(w)
}

func orUnknown(s string) string {
	if s == "" {
		return unknown
	}
	return s
}
