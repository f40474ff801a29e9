package analyze

import "fmt"

func init() { registerRule("capture-quality", ruleCapture) }

// ruleCapture: modules that were skipped, partial or failed hide part of
// the picture; say so, so nobody trusts a silent section.
func ruleCapture(r *Report) []Finding {
	var ev []string
	sev := "info"
	for _, m := range r.Modules {
		if m.Status == "ok" {
			continue
		}
		if m.Status == "failed" {
			sev = "warning"
		}
		reason := m.Reason
		if reason == "" {
			reason = "no reason recorded"
		}
		ev = append(ev, fmt.Sprintf("%s: %s — %s", m.Name, m.Status, clean(reason)))
	}
	if len(ev) == 0 {
		return nil
	}
	return []Finding{{
		Severity: sev,
		Title:    fmt.Sprintf("%d capture modules did not capture everything", len(ev)),
		Evidence: ev,
		Why:      "a section built from a partial or skipped module can be silent or incomplete: absence of evidence there is not evidence of absence",
		Next:     "each reason names what would fill the gap: root, a budget flag to raise, or the kernel feature missing",
	}}
}
