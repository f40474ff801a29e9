package analyze

import (
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dashcam-dev/dashcam/internal/kmsg"
)

// The kernel log section reads dev/kmsg, the raw records the host module
// copied from /dev/kmsg, and the capture's clocks from dashcam/kmsg.json
// to give them wall-clock times. It reports OOM kills, hung tasks and the
// last error-level records.

const (
	kmsgMember      = "dev/kmsg"
	kmsgJSONMember  = "dashcam/kmsg.json"
	maxKernelErrors = 10
)

func init() {
	registerSection(section{name: "kmsg", order: 60, load: loadKernelLog, text: kernelLogText, markdown: kernelLogMarkdown})
}

// KernelLogSection is what the kernel log says; nil when the bundle has
// no dev/kmsg.
type KernelLogSection struct {
	// Records is how many records the bundle holds: the newest ones the
	// capture kept. FirstSeq and LastSeq are the oldest and newest of them.
	Records  int    `json:"records"`
	FirstSeq uint64 `json:"first_seq"`
	LastSeq  uint64 `json:"last_seq"`
	// Lost counts records missing between those (gaps in seq): the
	// kernel overwrote them before the capture read them.
	Lost uint64 `json:"lost"`
	// BootTime is the estimated wall-clock time of boot the capture
	// recorded; it and every record's time are null when the bundle has
	// no dashcam/kmsg.json. SuspendedSeconds is how long the machine had
	// been suspended: records older than the last resume appear up to
	// that much later than they were written.
	BootTime         *time.Time `json:"boot_time"`
	SuspendedSeconds *float64   `json:"suspended_seconds"`
	OOMKills         []OOMKill  `json:"oom_kills"`
	HungTasks        []HungTask `json:"hung_tasks"`
	// Errors are the last records at level err or worse that are not
	// part of an OOM or hung-task report; ErrorCount counts them all.
	Errors     []KernelRecord `json:"errors"`
	ErrorCount int            `json:"error_count"`
}

// KernelRecord is one kernel log record.
type KernelRecord struct {
	Seq   uint64 `json:"seq"`
	Level string `json:"level"`
	// SinceBootSeconds is the record's own timestamp; Time its estimated
	// wall-clock time, null when unknown.
	SinceBootSeconds float64    `json:"since_boot_seconds"`
	Time             *time.Time `json:"time"`
	Message          string     `json:"message"`
}

// OOMKill is one process the OOM killer killed, from the
// "oom-kill:constraint=…" line and the "Killed process …" line after it.
type OOMKill struct {
	SinceBootSeconds float64    `json:"since_boot_seconds"`
	Time             *time.Time `json:"time"`
	Pid              int        `json:"pid"`
	Comm             string     `json:"comm"`
	// Scope is "cgroup" when a memory cgroup hit its limit ("Memory
	// cgroup out of memory"), "global" when the machine ran out.
	Scope string `json:"scope"`
	// Constraint is CONSTRAINT_NONE, CONSTRAINT_MEMCG, CONSTRAINT_CPUSET
	// or CONSTRAINT_MEMORY_POLICY; Memcg the victim's memory cgroup
	// (task_memcg=), OOMMemcg the cgroup whose limit was hit (oom_memcg=).
	// "" when the oom-kill line is missing (older kernels, or lost).
	Constraint string `json:"constraint"`
	Memcg      string `json:"memcg"`
	OOMMemcg   string `json:"oom_memcg"`
	// TriggeredBy is the comm of the task whose allocation invoked the
	// OOM killer; "" when unknown.
	TriggeredBy string `json:"triggered_by"`
	// Sizes from the "Killed process" line, in bytes; null when missing.
	TotalVMBytes  *uint64 `json:"total_vm_bytes"`
	AnonRSSBytes  *uint64 `json:"anon_rss_bytes"`
	FileRSSBytes  *uint64 `json:"file_rss_bytes"`
	ShmemRSSBytes *uint64 `json:"shmem_rss_bytes"`
	UID           *int    `json:"uid"`
	OOMScoreAdj   *int    `json:"oom_score_adj"`
}

// HungTask is one "INFO: task X:PID blocked for more than N seconds."
type HungTask struct {
	SinceBootSeconds float64    `json:"since_boot_seconds"`
	Time             *time.Time `json:"time"`
	Pid              int        `json:"pid"`
	Comm             string     `json:"comm"`
	BlockedSeconds   int        `json:"blocked_seconds"`
}

func loadKernelLog(a *analyzer) {
	raw, ok := a.b.File(kmsgMember)
	if !ok {
		return
	}
	sec := &KernelLogSection{OOMKills: []OOMKill{}, HungTasks: []HungTask{}, Errors: []KernelRecord{}}
	var clock *kmsg.Clock
	if data, ok := a.b.File(kmsgJSONMember); ok {
		c, err := parseKmsgClock(data)
		if err != nil {
			a.problem(kmsgJSONMember, err)
		} else {
			clock = &c
			boot := c.BootTime().UTC()
			susp := c.Suspended().Seconds()
			sec.BootTime, sec.SuspendedSeconds = &boot, &susp
		}
	}
	var (
		recs []kmsg.Record
		bad  int
	)
	for _, b := range kmsg.Split(raw) {
		r, err := kmsg.Parse(b)
		if err != nil {
			if bad == 0 {
				a.problem(kmsgMember, err)
			}
			bad++
			continue
		}
		recs = append(recs, r)
	}
	for i, r := range recs {
		if i == 0 {
			sec.FirstSeq = r.Seq
		} else if r.Seq > sec.LastSeq+1 {
			sec.Lost += r.Seq - sec.LastSeq - 1
		}
		sec.LastSeq = r.Seq
	}
	sec.Records = len(recs)
	scanKernelLog(sec, recs, clock)
	a.r.KernelLog = sec
}

// parseKmsgClock reads the clocks from dashcam/kmsg.json (version 1):
//
//	{"version": 1, "clock": {"realtime": "2026-11-29T00:41:51.2Z",
//	 "monotonic_ns": 2870950206093, "boottime_ns": 2870950206654}, …}
func parseKmsgClock(data []byte) (kmsg.Clock, error) {
	var v struct {
		Version int `json:"version"`
		Clock   *struct {
			Realtime    time.Time `json:"realtime"`
			MonotonicNS int64     `json:"monotonic_ns"`
			BoottimeNS  int64     `json:"boottime_ns"`
		} `json:"clock"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return kmsg.Clock{}, err
	}
	if v.Version != 1 || v.Clock == nil || v.Clock.Realtime.IsZero() || v.Clock.MonotonicNS <= 0 {
		return kmsg.Clock{}, fmt.Errorf("version %d without a usable clock", v.Version)
	}
	return kmsg.Clock{Realtime: v.Clock.Realtime, MonotonicNS: v.Clock.MonotonicNS, BoottimeNS: v.Clock.BoottimeNS}, nil
}

var (
	// "INFO: task kworker/u4:1:123 blocked for more than 120 seconds."
	// (kernel/hung_task.c); comm may itself hold ':'.
	hungRE = regexp.MustCompile(`^INFO: task (.*):(\d+) blocked for more than (\d+) seconds`)
	// "payment invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0"
	invokedRE = regexp.MustCompile(`^(.*) invoked oom-killer: `)
	// "Memory cgroup out of memory: Killed process 106 (payment-cache) total-vm:221368kB, anon-rss:20224kB,
	// file-rss:6544kB, shmem-rss:0kB, UID:1000 pgtables:104kB oom_score_adj:0" (mm/oom_kill.c);
	// "Out of memory: Killed process …" for the whole machine. Before
	// Linux 5.4 the line had no prefix, and a "Memory cgroup out of
	// memory: Kill process 1234 (x) score 1000 or sacrifice child" line
	// came first for a cgroup.
	killedRE = regexp.MustCompile(`^(?:(.*?): )?Killed process (\d+) \((.*)\) (total-vm:.*)$`)
)

// scanKernelLog finds OOM kills, hung tasks and error records in recs.
func scanKernelLog(sec *KernelLogSection, recs []kmsg.Record, clock *kmsg.Clock) {
	var (
		invoker  string
		pending  = -1 // index of the kill an oom-kill line began
		memcgOld bool // an old kernel's "Memory cgroup out of memory: Kill process" came before
	)
	for _, r := range recs {
		since, when := r.Since.Seconds(), recordTime(r, clock)
		msg := r.Message
		switch {
		case invokedRE.MatchString(msg):
			invoker = invokedRE.FindStringSubmatch(msg)[1]
			continue
		case strings.HasPrefix(msg, "Memory cgroup out of memory: Kill process "):
			memcgOld = true
			continue
		case strings.HasPrefix(msg, "oom-kill:"):
			// oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,
			// oom_memcg=/test,task_memcg=/test,task=python3,pid=12117,uid=0
			kv := map[string]string{}
			for _, f := range strings.Split(strings.TrimPrefix(msg, "oom-kill:"), ",") {
				if k, v, ok := strings.Cut(f, "="); ok {
					kv[k] = v
				}
			}
			pid, err := strconv.Atoi(kv["pid"])
			if err != nil {
				break
			}
			k := OOMKill{SinceBootSeconds: since, Time: when, Pid: pid, Comm: kv["task"], Scope: "global",
				Constraint: kv["constraint"], Memcg: kv["task_memcg"], OOMMemcg: kv["oom_memcg"], TriggeredBy: invoker}
			if k.Constraint == "CONSTRAINT_MEMCG" {
				k.Scope = "cgroup"
			}
			sec.OOMKills = append(sec.OOMKills, k)
			pending = len(sec.OOMKills) - 1
			continue
		case killedRE.MatchString(msg):
			m := killedRE.FindStringSubmatch(msg)
			pid, _ := strconv.Atoi(m[2])
			// The oom-kill line comes just before (Linux 4.19+); join them.
			var k *OOMKill
			if pending >= 0 && sec.OOMKills[pending].Pid == pid {
				k = &sec.OOMKills[pending]
			} else {
				sec.OOMKills = append(sec.OOMKills, OOMKill{SinceBootSeconds: since, Time: when, Pid: pid, TriggeredBy: invoker})
				k = &sec.OOMKills[len(sec.OOMKills)-1]
			}
			k.Comm = m[3]
			switch {
			case strings.Contains(m[1], "cgroup"), memcgOld, k.Constraint == "CONSTRAINT_MEMCG":
				k.Scope = "cgroup"
			default:
				k.Scope = "global"
			}
			parseKilledSizes(k, m[4])
			invoker, pending, memcgOld = "", -1, false
			continue
		case hungRE.MatchString(msg):
			m := hungRE.FindStringSubmatch(msg)
			pid, _ := strconv.Atoi(m[2])
			secs, _ := strconv.Atoi(m[3])
			sec.HungTasks = append(sec.HungTasks, HungTask{SinceBootSeconds: since, Time: when, Pid: pid, Comm: m[1], BlockedSeconds: secs})
			continue
		case isHungTaskBoilerplate(msg):
			continue
		}
		if r.Level <= 3 {
			sec.ErrorCount++
			sec.Errors = append(sec.Errors, KernelRecord{Seq: r.Seq, Level: r.LevelName(), SinceBootSeconds: since, Time: when, Message: msg})
		}
	}
	if n := len(sec.Errors); n > maxKernelErrors {
		sec.Errors = sec.Errors[n-maxKernelErrors:]
	}
}

// isHungTaskBoilerplate tells the err-level lines a hung-task report
// prints after its headline.
func isHungTaskBoilerplate(msg string) bool {
	t := strings.TrimSpace(msg)
	return strings.HasPrefix(t, "Not tainted ") || strings.HasPrefix(t, "Tainted: ") ||
		strings.HasSuffix(t, "/proc/sys/kernel/hung_task_timeout_secs\" disables this message.")
}

// parseKilledSizes reads "total-vm:221368kB, anon-rss:20224kB,
// file-rss:6544kB, shmem-rss:0kB, UID:1000 pgtables:104kB
// oom_score_adj:0".
func parseKilledSizes(k *OOMKill, s string) {
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' }) {
		key, val, ok := strings.Cut(f, ":")
		if !ok {
			continue
		}
		kb := func() *uint64 {
			v, err := strconv.ParseUint(strings.TrimSuffix(val, "kB"), 10, 54)
			if err != nil {
				return nil
			}
			v *= 1024
			return &v
		}
		num := func() *int {
			v, err := strconv.Atoi(val)
			if err != nil {
				return nil
			}
			return &v
		}
		switch key {
		case "total-vm":
			k.TotalVMBytes = kb()
		case "anon-rss":
			k.AnonRSSBytes = kb()
		case "file-rss":
			k.FileRSSBytes = kb()
		case "shmem-rss":
			k.ShmemRSSBytes = kb()
		case "UID":
			k.UID = num()
		case "oom_score_adj":
			k.OOMScoreAdj = num()
		}
	}
}

func recordTime(r kmsg.Record, c *kmsg.Clock) *time.Time {
	if c == nil {
		return nil
	}
	t := c.Time(r.Since).UTC()
	return &t
}

// kernelTime shows a record's time: wall clock when known, else the
// time since boot.
func kernelTime(t *time.Time, since float64) string {
	if t == nil {
		return fmt.Sprintf("+%.3fs after boot", since)
	}
	return t.Format("2006-01-02 15:04:05 UTC")
}

func kernelLogSummary(k *KernelLogSection) string {
	s := fmt.Sprintf("%d records", k.Records)
	if k.Records > 0 {
		s += fmt.Sprintf(" (seq %d-%d", k.FirstSeq, k.LastSeq)
		if k.Lost > 0 {
			s += fmt.Sprintf(", %d overwritten before capture", k.Lost)
		}
		s += ")"
	}
	if k.BootTime != nil {
		s += ", booted about " + k.BootTime.Format("2006-01-02 15:04:05 UTC")
	} else {
		s += ", wall-clock times unknown (no " + kmsgJSONMember + ")"
	}
	if k.SuspendedSeconds != nil && *k.SuspendedSeconds >= 1 {
		s += fmt.Sprintf("; suspended %.0fs since boot: records before the last resume may show up to that much late", *k.SuspendedSeconds)
	}
	return s
}

func oomLine(k OOMKill) string {
	s := fmt.Sprintf("pid %d (%s)", k.Pid, k.Comm)
	if k.AnonRSSBytes != nil {
		s += ", anon-rss " + humanBytes(*k.AnonRSSBytes)
	}
	if k.FileRSSBytes != nil {
		s += ", file-rss " + humanBytes(*k.FileRSSBytes)
	}
	switch {
	case k.Scope == "cgroup" || k.OOMMemcg != "":
		s += ", cgroup limit"
		if k.OOMMemcg != "" {
			s += " of " + k.OOMMemcg
		}
	case k.Scope == "global":
		s += ", machine out of memory"
	}
	if k.Memcg != "" && k.Memcg != k.OOMMemcg {
		s += ", victim in " + k.Memcg
	}
	if k.TriggeredBy != "" {
		s += ", triggered by " + k.TriggeredBy
	}
	return clean(s)
}

func hungLine(h HungTask) string {
	return clean(fmt.Sprintf("%s:%d blocked for more than %d seconds", h.Comm, h.Pid, h.BlockedSeconds))
}

// kernelMessage shortens a record's message for a table.
func kernelMessage(m string) string {
	m = clean(m)
	if r := []rune(m); len(r) > 160 {
		m = string(r[:159]) + "…"
	}
	return m
}

func kernelLogText(tw *tabwriter.Writer, r *Report) {
	k := r.KernelLog
	if k == nil {
		return
	}
	fmt.Fprintf(tw, "\nKernel log: %s\n", kernelLogSummary(k))
	heading(tw, "  OOM kills", len(k.OOMKills))
	for _, o := range k.OOMKills {
		fmt.Fprintf(tw, "    %s\t%s\n", kernelTime(o.Time, o.SinceBootSeconds), oomLine(o))
	}
	heading(tw, "  Hung tasks", len(k.HungTasks))
	for _, h := range k.HungTasks {
		fmt.Fprintf(tw, "    %s\t%s\n", kernelTime(h.Time, h.SinceBootSeconds), hungLine(h))
	}
	if len(k.Errors) == 0 {
		fmt.Fprintf(tw, "\n  Errors: none\n")
		return
	}
	fmt.Fprintf(tw, "\n  Errors (last %d of %d):\n", len(k.Errors), k.ErrorCount)
	for _, e := range k.Errors {
		fmt.Fprintf(tw, "    %s\t%s\t%s\n", kernelTime(e.Time, e.SinceBootSeconds), e.Level, kernelMessage(e.Message))
	}
}

func kernelLogMarkdown(w io.Writer, r *Report) {
	k := r.KernelLog
	if k == nil {
		return
	}
	fmt.Fprintf(w, "\n## Kernel log\n\n%s.\n", md(kernelLogSummary(k)))
	fmt.Fprintf(w, "\n### OOM kills\n\n")
	if len(k.OOMKills) == 0 {
		fmt.Fprintf(w, "None.\n")
	} else {
		fmt.Fprintf(w, "| Time | Pid | Comm | Anon RSS | Scope | Memory cgroup | Triggered by |\n|---|---|---|---|---|---|---|\n")
		for _, o := range k.OOMKills {
			fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %s | %s |\n", kernelTime(o.Time, o.SinceBootSeconds), o.Pid,
				code(o.Comm), bytesOr(o.AnonRSSBytes), md(orUnknown(o.Scope)), code(o.Memcg), code(o.TriggeredBy))
		}
	}
	fmt.Fprintf(w, "\n### Hung tasks\n\n")
	if len(k.HungTasks) == 0 {
		fmt.Fprintf(w, "None.\n")
	} else {
		fmt.Fprintf(w, "| Time | Pid | Comm | Blocked for |\n|---|---|---|---|\n")
		for _, h := range k.HungTasks {
			fmt.Fprintf(w, "| %s | %d | %s | more than %ds |\n", kernelTime(h.Time, h.SinceBootSeconds), h.Pid, code(h.Comm), h.BlockedSeconds)
		}
	}
	fmt.Fprintf(w, "\n### Errors\n\n")
	if len(k.Errors) == 0 {
		fmt.Fprintf(w, "None.\n")
		return
	}
	fmt.Fprintf(w, "Last %d of %d records at level err or worse.\n\n| Time | Level | Message |\n|---|---|---|\n", len(k.Errors), k.ErrorCount)
	for _, e := range k.Errors {
		fmt.Fprintf(w, "| %s | %s | %s |\n", kernelTime(e.Time, e.SinceBootSeconds), e.Level, code(kernelMessage(e.Message)))
	}
}
