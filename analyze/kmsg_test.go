package analyze

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dashcam-dev/dashcam/bundle"
	"github.com/dashcam-dev/dashcam/capture"
	"github.com/dashcam-dev/dashcam/internal/testutil"
)

// kmsgClockJSON is a dashcam/kmsg.json as the host module writes it,
// cut to the clock: booted at 2025-03-01 08:00:00 UTC.
const kmsgClockJSON = `{"version": 1, "clock": {"realtime": "2025-03-01T12:00:00Z",
 "monotonic_ns": 14400000000000, "boottime_ns": 14400000000000}, "records": []}`

var kmsgBoot = time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)

func kmsgBundle(t *testing.T, files map[string][]byte) *Report {
	t.Helper()
	all := fixtureFiles()
	for k, v := range files {
		all[k] = v
	}
	return load(t, bundle.New(fixtureManifest(), all))
}

func fixtureKmsg(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "fixtures", "dev", "kmsg"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestKernelLogFixture reads the shared fixture log: a memory cgroup OOM
// kill as Linux 6.18 logs it and a hung-task report.
func TestKernelLogFixture(t *testing.T) {
	r := kmsgBundle(t, map[string][]byte{"dev/kmsg": fixtureKmsg(t), "dashcam/kmsg.json": []byte(kmsgClockJSON)})
	k := r.KernelLog
	if k == nil {
		t.Fatal("no kernel log section")
	}
	if k.Records != 20 || k.FirstSeq != 0 || k.LastSeq != 19 || k.Lost != 0 {
		t.Errorf("records %d seq %d-%d lost %d, want 20 0-19 0", k.Records, k.FirstSeq, k.LastSeq, k.Lost)
	}
	if k.BootTime == nil || !k.BootTime.Equal(kmsgBoot) || k.SuspendedSeconds == nil || *k.SuspendedSeconds != 0 {
		t.Errorf("boot %v suspended %v", k.BootTime, k.SuspendedSeconds)
	}
	if len(k.OOMKills) != 1 {
		t.Fatalf("OOM kills = %+v, want 1", k.OOMKills)
	}
	o := k.OOMKills[0]
	wantTime := kmsgBoot.Add(11969017018 * time.Microsecond) // the oom-kill line
	if o.Pid != 106 || o.Comm != "payment-cache" || o.Scope != "cgroup" || o.Constraint != "CONSTRAINT_MEMCG" ||
		o.Memcg != "/system.slice/payment.service" || o.OOMMemcg != "/system.slice/payment.service" ||
		o.TriggeredBy != "payment" || o.Time == nil || !o.Time.Equal(wantTime) {
		t.Errorf("OOM kill = %+v (time %v, want %v)", o, o.Time, wantTime)
	}
	if o.AnonRSSBytes == nil || *o.AnonRSSBytes != 20224*1024 || o.FileRSSBytes == nil || *o.FileRSSBytes != 6544*1024 ||
		o.TotalVMBytes == nil || *o.TotalVMBytes != 221368*1024 || o.UID == nil || *o.UID != 1000 || o.OOMScoreAdj == nil || *o.OOMScoreAdj != 0 {
		t.Errorf("OOM kill sizes = %+v", o)
	}
	if len(k.HungTasks) != 1 || k.HungTasks[0].Pid != 104 || k.HungTasks[0].Comm != "payment-io" || k.HungTasks[0].BlockedSeconds != 122 {
		t.Errorf("hung tasks = %+v", k.HungTasks)
	}
	// Errors: the USB error only; the OOM and hung-task lines are
	// reported above, the hung task's boilerplate is not an error.
	if k.ErrorCount != 1 || len(k.Errors) != 1 || !strings.HasPrefix(k.Errors[0].Message, "usb 1-1: device descriptor read/64") ||
		k.Errors[0].Level != "err" || k.Errors[0].Seq != 5 {
		t.Errorf("errors (%d) = %+v", k.ErrorCount, k.Errors)
	}

	var txt, mdown bytes.Buffer
	if err := r.WriteText(&txt); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteMarkdown(&mdown); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Kernel log: 20 records (seq 0-19), booted about 2025-03-01 08:00:00 UTC",
		"2025-03-01 11:19:29 UTC  pid 106 (payment-cache), anon-rss 19.8 MiB, file-rss 6.39 MiB, cgroup limit of /system.slice/payment.service, triggered by payment",
		"payment-io:104 blocked for more than 122 seconds",
		"Errors (last 1 of 1):",
	} {
		if !strings.Contains(txt.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, txt.String())
		}
	}
	for _, want := range []string{"## Kernel log", "| 2025-03-01 11:19:29 UTC | 106 | `payment-cache` | 19.8 MiB | cgroup | `/system.slice/payment.service` | `payment` |", "### Hung tasks"} {
		if !strings.Contains(mdown.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, mdown.String())
		}
	}
}

func TestKernelLogAbsent(t *testing.T) {
	if r := load(t, fixtureBundle()); r.KernelLog != nil {
		t.Errorf("kernel log section without dev/kmsg: %+v", r.KernelLog)
	}
}

// TestKernelLogWithoutClock: without dashcam/kmsg.json the times are
// unknown, and said to be, never made up.
func TestKernelLogWithoutClock(t *testing.T) {
	r := kmsgBundle(t, map[string][]byte{"dev/kmsg": fixtureKmsg(t)})
	k := r.KernelLog
	if k == nil || k.BootTime != nil || len(k.OOMKills) != 1 || k.OOMKills[0].Time != nil || k.OOMKills[0].SinceBootSeconds != 11969.017018 {
		t.Fatalf("kernel log = %+v", k)
	}
	var txt bytes.Buffer
	r.WriteText(&txt)
	if !strings.Contains(txt.String(), "+11969.017s after boot") || !strings.Contains(txt.String(), "wall-clock times unknown") {
		t.Errorf("text:\n%s", txt.String())
	}
}

// TestKernelLogOOMFormats: the global OOM of Linux 5.4+, and a cgroup
// OOM of an older kernel (no oom-kill line, no prefix on Killed).
func TestKernelLogOOMFormats(t *testing.T) {
	log := "4,100,5000000,-;java invoked oom-killer: gfp_mask=0x100cca(GFP_HIGHUSER_MOVABLE), order=0, oom_score_adj=0\n" +
		"6,101,5000100,-;oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,task_memcg=/system.slice/java.service,task=java,pid=4242,uid=998\n" +
		"3,102,5000200,-;Out of memory: Killed process 4242 (java) total-vm:8388608kB, anon-rss:4194304kB, file-rss:0kB, shmem-rss:0kB, UID:998 pgtables:9000kB oom_score_adj:0\n" +
		"3,150,6000000,-;Memory cgroup out of memory: Kill process 77 (my app) score 1000 or sacrifice child\n" +
		"3,151,6000100,-;Killed process 77 (my app) total-vm:100kB, anon-rss:50kB, file-rss:4kB, shmem-rss:0kB\n" +
		"3,152,6000200,-;EXT4-fs error (device sda1): ext4_find_entry:1455: inode #2: comm ls: reading directory lblock 0\n"
	k := kmsgBundle(t, map[string][]byte{"dev/kmsg": []byte(log)}).KernelLog
	if k == nil || len(k.OOMKills) != 2 {
		t.Fatalf("kernel log = %+v", k)
	}
	g := k.OOMKills[0]
	if g.Pid != 4242 || g.Comm != "java" || g.Scope != "global" || g.Memcg != "/system.slice/java.service" || g.OOMMemcg != "" ||
		g.TriggeredBy != "java" || *g.AnonRSSBytes != 4<<30 || *g.UID != 998 {
		t.Errorf("global OOM = %+v", g)
	}
	old := k.OOMKills[1]
	if old.Pid != 77 || old.Comm != "my app" || old.Scope != "cgroup" || old.Constraint != "" || *old.AnonRSSBytes != 50*1024 || old.UID != nil || old.TriggeredBy != "" {
		t.Errorf("old cgroup OOM = %+v", old)
	}
	if k.Lost != 47 || k.ErrorCount != 1 || !strings.HasPrefix(k.Errors[0].Message, "EXT4-fs error") {
		t.Errorf("lost %d errors %d (%+v), want 47 lost (seq 103-149) and the EXT4 error", k.Lost, k.ErrorCount, k.Errors)
	}
}

// TestKernelLogHostile: garbage in dev/kmsg is a problem, not a panic.
func TestKernelLogHostile(t *testing.T) {
	r := kmsgBundle(t, map[string][]byte{
		"dev/kmsg":          []byte("garbage\n6,1,2,-;ok\x1b[31m\n 3,4\n;;;\n6,99999999999999999999,1,-;x\n"),
		"dashcam/kmsg.json": []byte(`{"version": 1}`),
	})
	if r.KernelLog == nil || r.KernelLog.Records != 1 || r.KernelLog.BootTime != nil {
		t.Errorf("kernel log = %+v", r.KernelLog)
	}
	paths := map[string]bool{}
	for _, p := range r.Problems {
		paths[p.Path] = true
	}
	if !paths["dev/kmsg"] || !paths["dashcam/kmsg.json"] {
		t.Errorf("problems = %+v", r.Problems)
	}
}

// TestKernelLogLiveOOM makes the kernel kill a process in a test cgroup
// for exceeding its memory limit, captures the host, and finds the kill
// with its pid, memory cgroup and a wall-clock time close to now.
func TestKernelLogLiveOOM(t *testing.T) {
	cg := testutil.NewCgroup(t)
	limited := false
	for _, d := range cg.Dirs {
		for _, f := range []string{"memory.limit_in_bytes", "memory.max"} { // v1, v2
			if err := os.WriteFile(filepath.Join(d, f), []byte("33554432"), 0); err == nil {
				limited = true
			}
		}
	}
	if !limited {
		testutil.SkipOrFail(t, "no memory controller in the test cgroup")
	}
	// The shell doubles a string until the 32 MiB limit is hit.
	cmd := exec.Command("/bin/sh", "-c", `read x; a=x; while :; do a="$a$a"; done`)
	testutil.StartIn(t, cg, cmd)
	victim := cmd.Process.Pid
	testutil.WaitState(t, victim, "Z")
	killed := time.Now()

	tg := &capture.Target{Spec: capture.Spec{Pids: []int{victim}}, Pids: []int{victim}}
	res, err := capture.Capture(context.Background(), capture.Options{
		Config: capture.DefaultConfig(), Target: tg, OutDir: t.TempDir(), Modules: []string{"host"},
		Trigger: bundle.Trigger{Kind: "manual"}, ToolVersion: "test",
	})
	if err != nil {
		t.Fatal(err)
	}
	r, err := Open(res.Path)
	if err != nil {
		t.Fatal(err)
	}
	if r.KernelLog == nil {
		t.Fatal("no kernel log section")
	}
	var found *OOMKill
	for i, o := range r.KernelLog.OOMKills {
		if o.Pid == victim {
			found = &r.KernelLog.OOMKills[i]
		}
	}
	if found == nil {
		t.Fatalf("OOM kill of pid %d not found in %+v", victim, r.KernelLog.OOMKills)
	}
	if found.Comm != "sh" || found.Scope != "cgroup" || !strings.HasSuffix(found.Memcg, cg.Path) || found.AnonRSSBytes == nil {
		t.Errorf("OOM kill = %+v, want sh in cgroup %s", found, cg.Path)
	}
	if found.Time == nil || found.Time.Sub(killed).Abs() > time.Minute {
		t.Errorf("OOM kill time %v, killed about %v", found.Time, killed)
	}
}
