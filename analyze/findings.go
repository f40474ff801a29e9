package analyze

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// Finding is what an experienced SRE would write first on the ticket:
// what is wrong, the evidence (numbers, and where in the bundle they come
// from), why it matters, and what to do next.
type Finding struct {
	// Rule names the rule that found it ("zombies", "d-state", …).
	Rule string `json:"rule"`
	// Severity is "critical", "warning" or "info".
	Severity string   `json:"severity"`
	Title    string   `json:"title"`
	Evidence []string `json:"evidence"`
	Why      string   `json:"why"`
	Next     string   `json:"next"`
	// Pids are the processes it is about, for automation.
	Pids []int `json:"pids,omitempty"`
}

// A rule reads the loaded report and returns its findings; it is silent
// (nil) unless its evidence is in the bundle. One rule per file
// (rule_*.go), registered from init.
type rule struct {
	name  string
	check func(r *Report) []Finding
}

var rules []rule

func registerRule(name string, check func(*Report) []Finding) {
	rules = append(rules, rule{name, check})
}

var severityRank = map[string]int{"critical": 0, "warning": 1, "info": 2}

// findings runs every rule and ranks the findings: most severe first, then
// by rule name, so the order is deterministic.
func findings(r *Report) []Finding {
	out := []Finding{}
	for _, ru := range rules {
		for _, f := range ru.check(r) {
			f.Rule = ru.name
			out = append(out, f)
		}
	}
	slices.SortStableFunc(out, func(a, b Finding) int {
		if d := severityRank[a.Severity] - severityRank[b.Severity]; d != 0 {
			return d
		}
		return strings.Compare(a.Rule, b.Rule)
	})
	return out
}

func findingsText(tw *tabwriter.Writer, r *Report) {
	heading(tw, "Findings", len(r.Findings))
	for i, f := range r.Findings {
		fmt.Fprintf(tw, "  %d. [%s] %s\n", i+1, strings.ToUpper(f.Severity), clean(f.Title))
		for _, e := range f.Evidence {
			fmt.Fprintf(tw, "     - %s\n", clean(e))
		}
		if f.Why != "" {
			fmt.Fprintf(tw, "     why: %s\n", clean(f.Why))
		}
		if f.Next != "" {
			fmt.Fprintf(tw, "     next: %s\n", clean(f.Next))
		}
	}
}

func findingsMarkdown(w io.Writer, r *Report) {
	fmt.Fprint(w, "\n## Findings\n\n")
	if len(r.Findings) == 0 {
		fmt.Fprint(w, "None: no rule found a problem in this bundle.\n")
		return
	}
	for i, f := range r.Findings {
		fmt.Fprintf(w, "%d. **%s** — %s\n", i+1, strings.ToUpper(f.Severity), md(f.Title))
		for _, e := range f.Evidence {
			fmt.Fprintf(w, "   - %s\n", md(e))
		}
		if f.Why != "" {
			fmt.Fprintf(w, "   - *Why it matters:* %s\n", md(f.Why))
		}
		if f.Next != "" {
			fmt.Fprintf(w, "   - *Next:* %s\n", md(f.Next))
		}
	}
}
