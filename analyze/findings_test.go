package analyze

import (
	"slices"
	"strings"
	"testing"
)

func ruleNames(fs []Finding) []string {
	var names []string
	for _, f := range fs {
		names = append(names, f.Rule)
	}
	return names
}

// TestFindingsFromFixture: the fixture's zombies, D-state threads and
// partial modules become ranked findings naming the right pids.
func TestFindingsFromFixture(t *testing.T) {
	r := load(t, fixtureBundle())
	if got, want := ruleNames(r.Findings), []string{"d-state", "zombies", "capture-quality"}; !slices.Equal(got, want) {
		t.Fatalf("findings %v, want %v (warnings before info, then by rule)", got, want)
	}
	z := r.Findings[1]
	if !slices.Equal(z.Pids, []int{100, 101, 102}) || !strings.Contains(z.Title, "parent pid 100 (app)") || z.Next == "" || z.Why == "" {
		t.Errorf("zombie finding = %+v", z)
	}
	if d := r.Findings[0]; !slices.Equal(d.Pids, []int{120, 130}) || !strings.Contains(strings.Join(d.Evidence, "\n"), "rpc_wait_bit_killable") {
		t.Errorf("d-state finding = %+v", d)
	}
}

// TestRulesSilentWithoutEvidence: no section, no finding; a manual
// capture is not a trigger.
func TestRulesSilentWithoutEvidence(t *testing.T) {
	r := &Report{Capture: Capture{Trigger: "manual"}, Modules: []Module{{Name: "procs", Status: "ok"}}}
	if fs := findings(r); len(fs) != 0 {
		t.Errorf("findings on an empty report: %+v", fs)
	}
}

func TestRuleFDLimitCloseWaitTrigger(t *testing.T) {
	limit, use := uint64(1024), 97.0
	r := &Report{
		Capture: Capture{Trigger: "cpu", TriggerReason: "cpu at 95% of its limit (cpu.max of /app (0.5 CPUs))"},
		FDs: &FDSection{NearLimit: []FDProcess{{Pid: 42, Comm: "api", Open: 993, Limit: &limit, UsePercent: &use,
			Kinds: FDKinds{Sockets: 990, Files: 3}}}},
		Sockets: &SocketSection{CloseWait: []CloseWaitGroup{
			{Pid: 42, Comm: "api", Direction: "inbound", Local: "10.0.0.1:8080", Peer: "10.0.0.9", Count: 250},
			{Pid: 43, Comm: "ok", Direction: "outbound", Local: "10.0.0.1", Peer: "10.0.0.2:5432", Count: 2},
		}},
	}
	fs := findings(r)
	if got, want := ruleNames(fs), []string{"close-wait", "fd-limit", "trigger"}; !slices.Equal(got, want) {
		t.Fatalf("findings %v, want %v", got, want)
	}
	for _, f := range fs {
		if f.Severity != "critical" {
			t.Errorf("%s: severity %s, want critical", f.Rule, f.Severity)
		}
	}
	if !strings.Contains(fs[0].Title, "250 connections in CLOSE_WAIT") || !strings.Contains(fs[1].Title, "97% of its limit 1024") ||
		!strings.Contains(fs[2].Title, "0.5 CPUs") || fs[2].Why == "" {
		t.Errorf("findings = %+v", fs)
	}
}
