package analyze

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dashcam-dev/dashcam/bundle"
)

// TestHistoryTimeline: an arm's history ring becomes a timeline with the
// trigger marked; a bundle without one has no history section.
func TestHistoryTimeline(t *testing.T) {
	if r := load(t, fixtureBundle()); r.History != nil {
		t.Fatalf("bundle without history.jsonl has a history section: %+v", r.History)
	}
	files := fixtureFiles()
	m := fixtureManifest()
	start := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	trig := start.Add(40 * time.Second)
	m.Trigger = bundle.Trigger{Kind: "cpu", Reason: "cpu at 95% of its limit", Time: &trig}
	var lines []string
	for i := range 50 {
		cpu := 30.0
		if i >= 10 {
			cpu = 95
		}
		mem := "" // memory unknown in the first sample: absent, not zero
		if i > 0 {
			mem = fmt.Sprintf(`,"mem_bytes":%d,"mem_pct":%d`, 100<<20, 50)
		}
		lines = append(lines, fmt.Sprintf(`{"t":%q,"cpu_pct":%v,"cpu_limit_cpus":0.5%s,"psi":{"cpu":{"some":{"avg10":%d,"avg60":0,"avg300":0,"total_us":1}}}}`,
			start.Add(time.Duration(i)*time.Second).Format(time.RFC3339Nano), cpu, mem, i))
	}
	files[historyMember] = []byte(strings.Join(lines, "\n") + "\n")
	r := load(t, bundle.New(m, files))
	h := r.History
	if h == nil {
		t.Fatal("no history section")
	}
	if h.Samples != 50 || len(h.Rows) > maxTimelineRows+5 || len(h.Rows) < 10 {
		t.Errorf("samples %d, rows %d", h.Samples, len(h.Rows))
	}
	var atTrigger *HistoryRow
	for i, row := range h.Rows {
		if row.OffsetSeconds != nil && *row.OffsetSeconds == 0 {
			atTrigger = &h.Rows[i]
		}
	}
	if atTrigger == nil || *atTrigger.CPUPercent != 95 || atTrigger.PSI["cpu"] != 40 {
		t.Fatalf("the trigger's sample is not in the timeline: %+v", h.Rows)
	}
	if h.Rows[0].MemBytes != nil {
		t.Error("an absent memory reading became a number")
	}
	if !strings.HasPrefix(h.CPUSparkline, "▃") || !strings.HasSuffix(h.CPUSparkline, "▇") {
		t.Errorf("cpu sparkline %q: want low then high", h.CPUSparkline)
	}
	var text, md bytes.Buffer
	r.WriteText(&text)
	r.WriteMarkdown(&md)
	for _, out := range []string{text.String(), md.String()} {
		if !strings.Contains(out, "◀ trigger") || !strings.Contains(out, "-40s") {
			t.Errorf("timeline without the trigger mark or offsets:\n%s", out)
		}
	}
}
