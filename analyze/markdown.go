package analyze

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// WriteMarkdown writes r as GitHub-flavoured Markdown, ready to paste
// into a ticket, in the same order as WriteText.
func (r *Report) WriteMarkdown(w io.Writer) error {
	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }
	table := func(header ...string) {
		p("| %s |\n|%s\n", strings.Join(header, " | "), strings.Repeat("---|", len(header)))
	}
	row := func(cells ...string) { p("| %s |\n", strings.Join(cells, " | ")) }

	p("# dashcam report: %s\n\n", md(orUnknown(r.Host.Hostname)))
	table("", "")
	row("**Host**", md(hostLine(r.Host)))
	row("**Target**", md(targetLine(r.Target)))
	for _, c := range r.Target.Cgroups {
		row("", code(cgroupLine(c)))
	}
	row("**Captured**", md(captureLine(r.Capture)))
	row("**Load**", md(loadLine(r.Load)))
	for _, ps := range r.Pressure {
		row("**Pressure "+ps.Resource+"**", code(strings.Join(psiLines(ps), "; ")))
	}
	row("**Schema**", strconv.Itoa(r.SchemaVersion))

	findingsMarkdown(bw, r)

	p("\n## Zombies\n\n")
	if len(r.Zombies) == 0 {
		p("None.\n")
	}
	for _, g := range r.Zombies {
		p("- **%s**\n  - zombies: %s\n  - %s\n", md(parentLine(g)), md(zombieList(g)), md(g.Advice))
	}

	p("\n## Blocked (state D)\n\n")
	if len(r.Blocked) == 0 {
		p("None.\n")
	} else {
		table("PID", "TID", "Comm", "Wchan")
		for _, t := range r.Blocked {
			row(strconv.Itoa(t.Pid), strconv.Itoa(t.Tid), code(t.Comm), code(wchanOr(t.Wchan)))
		}
	}

	p("\n## Processes\n\n%d parsed (seen %d, vanished %d, threads %d). States: %s.\n",
		r.Processes, r.Counts.ProcessesSeen, r.Counts.ProcessesVanished, r.Counts.ThreadsSeen,
		md(statesLine(r.States)))

	top := func(title, unit string, procs []Process, value func(Process) string) {
		p("\n### %s\n\n", title)
		if len(procs) == 0 {
			p("None.\n")
			return
		}
		table("PID", "Comm", unit, "Threads", "State", "Cmdline")
		for _, pr := range procs {
			row(strconv.Itoa(pr.Pid), code(pr.Comm), value(pr), strconv.Itoa(pr.Threads), md(pr.State), code(cmdline(pr)))
		}
	}
	top("Top CPU", "CPU", r.TopCPU, func(pr Process) string { return secondsOr(pr.CPUSeconds) })
	top("Top RSS", "RSS", r.TopRSS, func(pr Process) string { return bytesOr(pr.RSSBytes) })

	for _, s := range sections {
		s.markdown(bw, r)
	}

	p("\n## Capture\n\n")
	if len(r.Modules) > 0 {
		table("Module", "Status", "ms", "Reason")
		for _, m := range r.Modules {
			reason := md(m.Reason)
			for _, e := range m.Errors {
				reason += "<br>error: " + md(e)
			}
			row(md(m.Name), md(m.Status), strconv.FormatFloat(m.DurationMS, 'f', 1, 64), reason)
		}
		p("\n")
	}
	p("Redactions: %d.\n", r.Redactions)
	if len(r.Notes) > 0 {
		p("\nNotes:\n\n")
		for _, n := range r.Notes {
			p("- %s\n", md(n))
		}
	}
	if len(r.Problems) > 0 {
		p("\nProblems (files skipped):\n\n")
		for _, pr := range r.Problems {
			p("- %s: %s\n", code(pr.Path), md(pr.Error))
		}
	}
	return bw.Flush()
}

// mdEscaper escapes Markdown's inline syntax and HTML in plain text.
var mdEscaper = strings.NewReplacer(
	`\`, `\\`, "`", "\\`", "*", `\*`, "_", `\_`, "[", `\[`, "]", `\]`,
	"|", `\|`, "<", "&lt;", ">", "&gt;", "#", `\#`,
)

// md makes bundle text safe as Markdown text, also inside a table cell.
func md(s string) string { return mdEscaper.Replace(clean(s)) }

// code shows s as a code span. Backslash escapes do not work inside one,
// except for "|" in GitHub tables, so backticks become "'".
func code(s string) string {
	s = strings.NewReplacer("`", "'", "|", `\|`).Replace(clean(s))
	if s == "" {
		return ""
	}
	return "`" + s + "`"
}
