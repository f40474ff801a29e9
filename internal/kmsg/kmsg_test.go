package kmsg

import (
	"bytes"
	"slices"
	"testing"
	"time"
)

// Records as /dev/kmsg returned them on Linux 6.18 (the OOM kill of a
// process in a memory cgroup), plus the documented continuation lines
// and escapes (Documentation/ABI/testing/dev-kmsg).
const sample = "4,343,2969016649,-;python3 invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0\n" +
	"6,419,2969017018,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/dashcam-oomprobe,task_memcg=/dashcam-oomprobe,task=python3,pid=12117,uid=0\n" +
	"3,420,2969017034,-;Memory cgroup out of memory: Killed process 12117 (python3) total-vm:221368kB, anon-rss:20224kB, file-rss:6544kB, shmem-rss:0kB, UID:0 pgtables:104kB oom_score_adj:0\n" +
	"7,160,424069,-,caller=T1;pci_root PNP0A03:00: host bridge window [io  0x0000-0x0cf7] (ignored)\n" +
	" SUBSYSTEM=acpi\n" +
	" DEVICE=+acpi:PNP0A03:00\n" +
	"6,339,5340096,-;NET: Registered protocol family 10\\x0aescaped \\x5c backslash\n" +
	"14,342,2894621696,-;dashcam-probe-xyz\n"

func TestSplitAndParse(t *testing.T) {
	raws := Split([]byte(sample))
	if len(raws) != 6 {
		t.Fatalf("Split: %d records, want 6: %q", len(raws), raws)
	}
	if !bytes.Equal(bytes.Join(raws, nil), []byte(sample)) {
		t.Error("Split lost or reordered bytes")
	}
	var recs []Record
	for _, raw := range raws {
		r, err := Parse(raw)
		if err != nil {
			t.Fatalf("Parse(%q): %v", raw, err)
		}
		recs = append(recs, r)
	}
	if r := recs[2]; r.Seq != 420 || r.Level != 3 || r.Facility != 0 || r.LevelName() != "err" ||
		r.Since != 2969017034*time.Microsecond || r.Flags != "-" ||
		r.Message != "Memory cgroup out of memory: Killed process 12117 (python3) total-vm:221368kB, anon-rss:20224kB, file-rss:6544kB, shmem-rss:0kB, UID:0 pgtables:104kB oom_score_adj:0" {
		t.Errorf("OOM record = %+v", r)
	}
	pci := recs[3]
	if pci.Level != 7 || !slices.Equal(pci.Extra, []string{"caller=T1"}) ||
		!slices.Equal(pci.Fields, []Field{{"SUBSYSTEM", "acpi"}, {"DEVICE", "+acpi:PNP0A03:00"}}) {
		t.Errorf("record with continuation lines = %+v", pci)
	}
	if m := recs[4].Message; m != "NET: Registered protocol family 10\nescaped \\ backslash" {
		t.Errorf("escapes: message = %q", m)
	}
	// "<6>" written to /dev/kmsg by a user: facility 1 (LOG_USER), level 6.
	if r := recs[5]; r.Facility != 1 || r.Level != 6 || r.LevelName() != "info" {
		t.Errorf("user record = %+v", r)
	}
}

func TestSplitDropsPartialRecord(t *testing.T) {
	raws := Split([]byte("6,1,10,-;one\n SUBSYSTEM=x\n6,2,20,-;tw"))
	if len(raws) != 1 || string(raws[0]) != "6,1,10,-;one\n SUBSYSTEM=x\n" {
		t.Errorf("Split = %q", raws)
	}
	if got := Split(nil); got != nil {
		t.Errorf("Split(nil) = %q", got)
	}
}

func TestParseMalformed(t *testing.T) {
	for _, s := range []string{
		"no semicolon\n", "6,1;two fields\n", "x,1,2,-;bad prio\n", "6,1,-5,-;negative time\n", ";\n", "\n",
	} {
		if _, err := Parse([]byte(s)); err == nil {
			t.Errorf("Parse(%q) succeeded", s)
		}
	}
	// A malformed escape is kept as it is.
	if r, err := Parse([]byte("6,1,2,-;50\\x% done \\x4\n")); err != nil || r.Message != "50\\x% done \\x4" {
		t.Errorf("Parse = %+v, %v", r, err)
	}
}

func TestClock(t *testing.T) {
	// Clocks read together on the test VM: booted 2870.95 s before
	// 2026-11-29T00:41:52.213Z, never suspended.
	c := Clock{
		Realtime:    time.Date(2026, 11, 29, 0, 41, 52, 213115700, time.UTC),
		MonotonicNS: 2870950206093,
		BoottimeNS:  2870950206654,
	}
	boot := time.Date(2026, 11, 29, 0, 41, 52, 213115700, time.UTC).Add(-2870950206093)
	if !c.BootTime().Equal(boot) {
		t.Errorf("BootTime = %v, want %v", c.BootTime(), boot)
	}
	// The record written 2894.621696 s after boot.
	want := boot.Add(2894621696 * time.Microsecond)
	if got := c.Time(2894621696 * time.Microsecond); !got.Equal(want) {
		t.Errorf("Time = %v, want %v", got, want)
	}
	if c.Suspended() > time.Microsecond {
		t.Errorf("Suspended = %v, want about 0 (561 ns between the reads)", c.Suspended())
	}
	// A laptop suspended for an hour: BOOTTIME ran on, MONOTONIC did not.
	c.BoottimeNS += int64(time.Hour)
	if c.Suspended() < time.Hour || c.Suspended() > time.Hour+time.Microsecond {
		t.Errorf("Suspended = %v, want 1h", c.Suspended())
	}
	if !c.BootTime().Equal(boot) {
		t.Error("BootTime must follow CLOCK_MONOTONIC, which record timestamps follow, not CLOCK_BOOTTIME")
	}
}

func FuzzParse(f *testing.F) {
	for _, r := range Split([]byte(sample)) {
		f.Add(r)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, r := range Split(b) {
			_, _ = Parse(r)
		}
	})
}
