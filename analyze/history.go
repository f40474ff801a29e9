package analyze

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

func init() {
	registerSection(section{name: "history", order: 5, load: loadHistory, text: historyText, markdown: historyMarkdown})
}

// historyMember is where dashcam arm stores its history ring.
const historyMember = "dashcam/history.jsonl"

// maxTimelineRows bounds the timeline table; longer histories are
// downsampled, always keeping the rows around the trigger.
const maxTimelineRows = 24

// HistorySection is the timeline that led up to a triggered capture: the
// arm's per-interval samples of the cgroup, with the trigger marked.
type HistorySection struct {
	// TriggerTime is when the trigger fired; nil when the manifest has none.
	TriggerTime *time.Time `json:"trigger_time"`
	Samples     int        `json:"samples"`
	// Start and End bound the history.
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Rows are the (downsampled) samples, oldest first.
	Rows []HistoryRow `json:"rows"`
	// CPUSparkline and MemSparkline draw every sample's CPU% and memory%
	// of the limit, one character each (at most 60).
	CPUSparkline string `json:"cpu_sparkline,omitempty"`
	MemSparkline string `json:"mem_sparkline,omitempty"`
}

// HistoryRow is one sample; nil numbers were not measured.
type HistoryRow struct {
	Time time.Time `json:"t"`
	// OffsetSeconds is relative to the trigger (negative: before).
	OffsetSeconds *float64 `json:"offset_s"`
	CPUPercent    *float64 `json:"cpu_pct"`
	CPULimitCPUs  float64  `json:"cpu_limit_cpus"`
	Throttled     *float64 `json:"throttled_pct"`
	MemBytes      *uint64  `json:"mem_bytes"`
	MemPercent    *float64 `json:"mem_pct"`
	// PSI is "some avg10" per resource.
	PSI map[string]float64 `json:"psi_some_avg10,omitempty"`
}

// historySample is the subset of the arm's Sample (trigger/sample.go)
// the timeline reads.
type historySample struct {
	T         time.Time `json:"t"`
	CPUPct    *float64  `json:"cpu_pct"`
	CPULimit  float64   `json:"cpu_limit_cpus"`
	Throttled *float64  `json:"throttled_pct"`
	MemBytes  *uint64   `json:"mem_bytes"`
	MemPct    *float64  `json:"mem_pct"`
	PSI       map[string]struct {
		Some *struct {
			Avg10 float64 `json:"avg10"`
		} `json:"some"`
	} `json:"psi"`
}

func loadHistory(a *analyzer) {
	data, ok := a.b.File(historyMember)
	if !ok {
		return
	}
	var samples []historySample
	s := bufio.NewScanner(bytes.NewReader(data))
	s.Buffer(make([]byte, 0, 64<<10), 16<<20) // a line holds per-process samples
	for line := 1; s.Scan(); line++ {
		var hs historySample
		if err := json.Unmarshal(s.Bytes(), &hs); err != nil {
			a.problem(historyMember, fmt.Errorf("line %d: %w", line, err))
			continue
		}
		samples = append(samples, hs)
	}
	if len(samples) == 0 {
		return
	}
	h := &HistorySection{Samples: len(samples), Start: samples[0].T, End: samples[len(samples)-1].T, Rows: []HistoryRow{}}
	if m := a.b.Manifest; m.Trigger.Time != nil {
		t := m.Trigger.Time.UTC()
		h.TriggerTime = &t
	}
	var cpu, mem []*float64
	for _, s := range samples {
		cpu, mem = append(cpu, s.CPUPct), append(mem, s.MemPct)
	}
	h.CPUSparkline, h.MemSparkline = sparkline(cpu), sparkline(mem)
	for _, i := range timelineRows(samples, h.TriggerTime) {
		s := samples[i]
		r := HistoryRow{Time: s.T.UTC(), CPUPercent: s.CPUPct, CPULimitCPUs: s.CPULimit, Throttled: s.Throttled,
			MemBytes: s.MemBytes, MemPercent: s.MemPct}
		if h.TriggerTime != nil {
			off := s.T.Sub(*h.TriggerTime).Seconds()
			r.OffsetSeconds = &off
		}
		for res, p := range s.PSI {
			if p.Some != nil {
				if r.PSI == nil {
					r.PSI = map[string]float64{}
				}
				r.PSI[res] = p.Some.Avg10
			}
		}
		h.Rows = append(h.Rows, r)
	}
	a.r.History = h
}

// timelineRows picks at most maxTimelineRows sample indexes: evenly spread,
// plus the samples just before and after the trigger.
func timelineRows(samples []historySample, trigger *time.Time) []int {
	n := len(samples)
	if n <= maxTimelineRows {
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		return idx
	}
	keep := map[int]bool{0: true, n - 1: true}
	if trigger != nil {
		for i, s := range samples {
			if !s.T.Before(*trigger) {
				for j := max(i-2, 0); j <= min(i+2, n-1); j++ {
					keep[j] = true
				}
				break
			}
		}
	}
	for i := 0; len(keep) < maxTimelineRows; i++ {
		keep[i*(n-1)/(maxTimelineRows-1)] = true
		if i >= maxTimelineRows {
			break
		}
	}
	var idx []int
	for i := range n {
		if keep[i] {
			idx = append(idx, i)
		}
	}
	return idx
}

// sparkline draws values (percent) with block characters, 60 at most.
func sparkline(vals []*float64) string {
	const bars = "▁▂▃▄▅▆▇█"
	runes := []rune(bars)
	if len(vals) > 60 {
		step := float64(len(vals)) / 60
		var d []*float64
		for i := range 60 {
			d = append(d, vals[int(float64(i)*step)])
		}
		vals = d
	}
	var b strings.Builder
	any := false
	for _, v := range vals {
		if v == nil {
			b.WriteRune(' ')
			continue
		}
		any = true
		i := int(*v / 100 * float64(len(runes)-1))
		b.WriteRune(runes[min(max(i, 0), len(runes)-1)])
	}
	if !any {
		return ""
	}
	return b.String()
}

func historyText(tw *tabwriter.Writer, r *Report) {
	h := r.History
	if h == nil {
		return
	}
	fmt.Fprintf(tw, "\nHistory: %d samples from %s to %s", h.Samples, h.Start.UTC().Format("15:04:05"), h.End.UTC().Format("15:04:05 MST"))
	if h.TriggerTime != nil {
		fmt.Fprintf(tw, ", trigger at %s", h.TriggerTime.Format("15:04:05"))
	}
	fmt.Fprintln(tw)
	if h.CPUSparkline != "" {
		fmt.Fprintf(tw, "  cpu %% of limit  %s\n", h.CPUSparkline)
	}
	if h.MemSparkline != "" {
		fmt.Fprintf(tw, "  mem %% of limit  %s\n", h.MemSparkline)
	}
	fmt.Fprintln(tw, "  T\tCPU%LIM\tTHROTTLED\tMEM\tMEM%LIM\tPSI SOME10 cpu/mem/io\t")
	for _, row := range h.Rows {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t\n", offsetCell(row), pctCell(row.CPUPercent), pctCell(row.Throttled),
			memCell(row.MemBytes), pctCell(row.MemPercent), psiCell(row.PSI))
	}
}

func historyMarkdown(w io.Writer, r *Report) {
	h := r.History
	if h == nil {
		return
	}
	fmt.Fprintf(w, "\n## History before the trigger\n\n%d samples from %s to %s.", h.Samples,
		h.Start.UTC().Format(time.RFC3339), h.End.UTC().Format(time.RFC3339))
	if h.CPUSparkline != "" {
		fmt.Fprintf(w, " CPU %% of limit: `%s`.", h.CPUSparkline)
	}
	if h.MemSparkline != "" {
		fmt.Fprintf(w, " Memory %% of limit: `%s`.", h.MemSparkline)
	}
	fmt.Fprint(w, "\n\n| T | CPU % of limit | throttled | memory | memory % of limit | PSI some avg10 cpu/mem/io |\n|---|---|---|---|---|---|\n")
	for _, row := range h.Rows {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", offsetCell(row), pctCell(row.CPUPercent), pctCell(row.Throttled),
			memCell(row.MemBytes), pctCell(row.MemPercent), psiCell(row.PSI))
	}
}

func offsetCell(r HistoryRow) string {
	if r.OffsetSeconds == nil {
		return r.Time.Format("15:04:05")
	}
	mark := ""
	if *r.OffsetSeconds >= 0 && *r.OffsetSeconds < 1 {
		mark = " ◀ trigger"
	}
	return fmt.Sprintf("%+.0fs%s", *r.OffsetSeconds, mark)
}

func pctCell(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.0f%%", *v)
}

func memCell(v *uint64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.1f MiB", float64(*v)/(1<<20))
}

func psiCell(p map[string]float64) string {
	if p == nil {
		return "-"
	}
	var parts []string
	for _, res := range []string{"cpu", "memory", "io"} {
		if v, ok := p[res]; ok {
			parts = append(parts, fmt.Sprintf("%.1f", v))
		} else {
			parts = append(parts, "-")
		}
	}
	return strings.Join(parts, "/")
}
