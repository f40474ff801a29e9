package analyze

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"
)

// The exec section lists the user's --exec commands: what ran, for which
// process, how it ended, and the first lines of what it printed. Each
// run is exec/<dir>/result.json (capture's ExecResult, version 1) and
// exec/<dir>/output, the output as captured.

func init() {
	registerSection(section{name: "exec", order: 90, load: loadExec, text: execText, markdown: execMarkdown})
}

const (
	// execHeadLines and execLineWidth bound the output shown per run.
	execHeadLines = 5
	execLineWidth = 160
)

// ExecSection is the --exec commands of the capture; nil when it ran none.
type ExecSection struct {
	Runs []ExecRun `json:"runs"`
}

// ExecRun is one run of one command.
type ExecRun struct {
	// Dir is its directory in the bundle ("exec/1-4242").
	Dir string `json:"dir"`
	// Index is the command's position among the --exec flags, from 1.
	Index   int    `json:"index"`
	Command string `json:"command"`
	// Pid and Comm are the process it ran for; Pid is null when it ran once.
	Pid             *int       `json:"pid"`
	Comm            string     `json:"comm,omitempty"`
	Started         *time.Time `json:"started"`
	DurationSeconds float64    `json:"duration_seconds"`
	// ExitCode is null when the command was killed by a signal (Signal)
	// or did not start (Error).
	ExitCode *int   `json:"exit_code"`
	Signal   string `json:"signal,omitempty"`
	TimedOut bool   `json:"timed_out"`
	Error    string `json:"error,omitempty"`
	// OutputBytes is how much it printed; Truncated says the bundle holds
	// only the first OutputCap bytes of it.
	OutputBytes int64 `json:"output_bytes"`
	OutputCap   int64 `json:"output_cap"`
	Truncated   bool  `json:"truncated"`
	// Head is the first lines of the output in the bundle.
	Head []string `json:"head"`
}

// execResult is the part of exec/<dir>/result.json the section reads:
//
//	{"version": 1, "index": 1, "command": "jcmd 4242 Thread.print",
//	 "pid": 4242, "comm": "java", "started": "2026-11-29T00:41:51Z",
//	 "duration_seconds": 0.8, "timeout_seconds": 10, "exit_code": 0,
//	 "timed_out": false, "output_bytes": 52311, "output_cap": 4194304,
//	 "truncated": false, "nice": 10}
type execResult struct {
	Version         int        `json:"version"`
	Index           int        `json:"index"`
	Command         string     `json:"command"`
	Pid             *int       `json:"pid"`
	Comm            string     `json:"comm"`
	Started         *time.Time `json:"started"`
	DurationSeconds float64    `json:"duration_seconds"`
	ExitCode        *int       `json:"exit_code"`
	Signal          string     `json:"signal"`
	TimedOut        bool       `json:"timed_out"`
	Error           string     `json:"error"`
	OutputBytes     int64      `json:"output_bytes"`
	OutputCap       int64      `json:"output_cap"`
	Truncated       bool       `json:"truncated"`
}

func loadExec(a *analyzer) {
	var runs []ExecRun
	for _, name := range a.b.Names() {
		dir, ok := strings.CutSuffix(name, "/result.json")
		if !ok || !strings.HasPrefix(dir, "exec/") || strings.Count(dir, "/") != 1 {
			continue
		}
		data, _ := a.b.File(name)
		var res execResult
		if err := json.Unmarshal(data, &res); err != nil {
			a.problem(name, err)
			continue
		}
		if res.Version != 1 {
			a.problem(name, fmt.Errorf("unknown version %d", res.Version))
			continue
		}
		run := ExecRun{
			Dir: dir, Index: res.Index, Command: res.Command, Pid: res.Pid, Comm: res.Comm,
			Started: res.Started, DurationSeconds: res.DurationSeconds, ExitCode: res.ExitCode,
			Signal: res.Signal, TimedOut: res.TimedOut, Error: res.Error, OutputBytes: res.OutputBytes,
			OutputCap: res.OutputCap, Truncated: res.Truncated, Head: []string{},
		}
		if out, ok := a.b.File(dir + "/output"); ok {
			run.Head = headLines(out, execHeadLines)
		}
		runs = append(runs, run)
	}
	if runs == nil {
		return
	}
	slices.SortFunc(runs, func(x, y ExecRun) int {
		px, py := -1, -1
		if x.Pid != nil {
			px = *x.Pid
		}
		if y.Pid != nil {
			py = *y.Pid
		}
		return cmp.Or(cmp.Compare(x.Index, y.Index), cmp.Compare(px, py), cmp.Compare(x.Dir, y.Dir))
	})
	a.r.Exec = &ExecSection{Runs: runs}
}

// headLines returns the first n non-empty lines of out, each cut to
// execLineWidth characters.
func headLines(out []byte, n int) []string {
	lines := []string{}
	for _, l := range bytes.Split(out, []byte("\n")) {
		if len(lines) == n {
			break
		}
		s := strings.TrimRight(string(l), "\r \t")
		if s == "" {
			continue
		}
		if utf8.RuneCountInString(s) > execLineWidth {
			s = string([]rune(s)[:execLineWidth-1]) + "…"
		}
		lines = append(lines, s)
	}
	return lines
}

// execOutcome says how a run ended: "exit 0", "killed by SIGKILL after
// timeout", "did not start: …".
func execOutcome(r ExecRun) string {
	var s string
	switch {
	case r.Started == nil && r.Error != "":
		return clean("did not start: " + r.Error)
	case r.ExitCode != nil:
		s = "exit " + strconv.Itoa(*r.ExitCode)
	case r.Signal != "":
		s = "killed by " + r.Signal
	default:
		s = "ended " + unknown
	}
	if r.TimedOut {
		s += " (timed out)"
	}
	if r.Error != "" {
		s += "; " + r.Error
	}
	return clean(s)
}

func execOutputLine(r ExecRun) string {
	s := humanBytes(uint64(max(r.OutputBytes, 0))) + " of output"
	if r.Truncated {
		s += ", truncated to the first " + humanBytes(uint64(max(r.OutputCap, 0)))
	}
	return s
}

func execFor(r ExecRun) string {
	if r.Pid == nil {
		return "once"
	}
	return clean(fmt.Sprintf("pid %d (%s)", *r.Pid, r.Comm))
}

func execText(tw *tabwriter.Writer, r *Report) {
	if r.Exec == nil {
		return
	}
	heading(tw, "Exec", len(r.Exec.Runs))
	for _, run := range r.Exec.Runs {
		fmt.Fprintf(tw, "  [%d] %s\n", run.Index, clean(run.Command))
		fmt.Fprintf(tw, "    %s, %s in %.2fs, %s (%s)\n", execFor(run), execOutcome(run), run.DurationSeconds, execOutputLine(run), clean(run.Dir))
		for _, l := range run.Head {
			fmt.Fprintf(tw, "    | %s\n", clean(l))
		}
	}
}

func execMarkdown(w io.Writer, r *Report) {
	if r.Exec == nil {
		return
	}
	fmt.Fprintf(w, "\n## Exec\n\n")
	for _, run := range r.Exec.Runs {
		fmt.Fprintf(w, "- **[%d]** %s: %s, %s in %.2fs, %s (%s)\n", run.Index, code(run.Command), md(execFor(run)),
			md(execOutcome(run)), run.DurationSeconds, md(execOutputLine(run)), code(run.Dir))
		if len(run.Head) > 0 {
			// An indented block inside the list item: no Markdown inside,
			// and clean() has escaped control characters.
			fmt.Fprintf(w, "\n")
			for _, l := range run.Head {
				fmt.Fprintf(w, "      %s\n", clean(l))
			}
			fmt.Fprintf(w, "\n")
		}
	}
}
