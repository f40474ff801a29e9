package analyze

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
)

// WriteText writes r for a terminal: the header, then findings (zombies,
// blocked tasks), then the process tables and how the capture went.
func (r *Report) WriteText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	tw := tabwriter.NewWriter(bw, 0, 0, 2, ' ', 0)
	row := func(cells ...any) {
		// A trailing empty cell would leave padding at the end of the line.
		for len(cells) > 1 && cells[len(cells)-1] == "" {
			cells = cells[:len(cells)-1]
		}
		for i, c := range cells {
			if i > 0 {
				fmt.Fprint(tw, "\t")
			}
			fmt.Fprint(tw, c)
		}
		fmt.Fprint(tw, "\n")
	}

	fmt.Fprintf(tw, "dashcam report (schema %d)\n", r.SchemaVersion)
	row("host", hostLine(r.Host))
	row("target", targetLine(r.Target))
	for _, c := range r.Target.Cgroups {
		row("", cgroupLine(c))
	}
	row("captured", captureLine(r.Capture))
	row("load", loadLine(r.Load))
	for j, p := range r.Pressure {
		for i, l := range psiLines(p) {
			label, res := "", ""
			if i == 0 {
				res = p.Resource
				if j == 0 {
					label = "pressure"
				}
			}
			row(label, res+"\t"+l)
		}
	}
	tw.Flush()

	findingsText(tw, r)
	tw.Flush()

	heading(tw, "Zombies", len(r.Zombies))
	for _, g := range r.Zombies {
		fmt.Fprintf(tw, "  %s\n", parentLine(g))
		fmt.Fprintf(tw, "    zombies: %s\n", zombieList(g))
		fmt.Fprintf(tw, "    %s\n", g.Advice)
	}

	heading(tw, "Blocked (state D)", len(r.Blocked))
	if len(r.Blocked) > 0 {
		row("  PID", "TID", "COMM", "WCHAN")
		for _, t := range r.Blocked {
			row("  "+strconv.Itoa(t.Pid), t.Tid, clean(t.Comm), wchanOr(t.Wchan))
		}
	}
	tw.Flush()

	fmt.Fprintf(tw, "\nProcesses: %d parsed (seen %d, vanished %d, threads %d)\n",
		r.Processes, r.Counts.ProcessesSeen, r.Counts.ProcessesVanished, r.Counts.ThreadsSeen)
	fmt.Fprintf(tw, "  states  %s\n", statesLine(r.States))

	topTable := func(title, column string, procs []Process, value func(Process) string) {
		heading(tw, title, len(procs))
		if len(procs) > 0 {
			row("  PID", "COMM", column, "THREADS", "STATE", "CMDLINE")
			for _, p := range procs {
				row("  "+strconv.Itoa(p.Pid), clean(p.Comm), value(p), p.Threads, clean(p.State), cmdline(p))
			}
		}
		tw.Flush()
	}
	topTable("Top CPU", "CPU", r.TopCPU, func(p Process) string { return secondsOr(p.CPUSeconds) })
	topTable("Top RSS", "RSS", r.TopRSS, func(p Process) string { return bytesOr(p.RSSBytes) })

	for _, s := range sections {
		s.text(tw, r)
		tw.Flush()
	}

	heading(tw, "Modules", len(r.Modules))
	if len(r.Modules) > 0 {
		row("  NAME", "STATUS", "MS", "REASON")
		for _, m := range r.Modules {
			row("  "+clean(m.Name), clean(m.Status), strconv.FormatFloat(m.DurationMS, 'f', 1, 64), clean(m.Reason))
			for _, e := range m.Errors {
				row("", "", "", "error: "+clean(e))
			}
		}
	}
	tw.Flush()

	fmt.Fprintf(tw, "\nRedactions: %d\n", r.Redactions)
	if len(r.Notes) > 0 {
		fmt.Fprintf(tw, "\nNotes:\n")
		for _, n := range r.Notes {
			fmt.Fprintf(tw, "  - %s\n", clean(n))
		}
	}
	if len(r.Problems) > 0 {
		fmt.Fprintf(tw, "\nProblems (files skipped):\n")
		for _, p := range r.Problems {
			fmt.Fprintf(tw, "  - %s: %s\n", clean(p.Path), clean(p.Error))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return bw.Flush()
}

// heading prints a section title, with "none" when it is empty.
func heading(w io.Writer, title string, n int) {
	if n == 0 {
		fmt.Fprintf(w, "\n%s: none\n", title)
		return
	}
	fmt.Fprintf(w, "\n%s:\n", title)
}
