package capture

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dashcam-dev/dashcam/bundle"
	"github.com/dashcam-dev/dashcam/internal/kmsg"
	"github.com/dashcam-dev/dashcam/internal/testutil"
)

func TestKmsgPath(t *testing.T) {
	for proc, want := range map[string]string{
		"/proc": "/dev/kmsg", "/proc/": "/dev/kmsg", "/host/proc": "/host/dev/kmsg",
		"testdata/fixtures/proc": "testdata/fixtures/dev/kmsg",
	} {
		if got := kmsgPath(Paths{Proc: proc}); got != want {
			t.Errorf("kmsgPath(%q) = %q, want %q", proc, got, want)
		}
	}
}

func TestRecordRing(t *testing.T) {
	r := &recordRing{keep: 3}
	for _, s := range []string{"a", "b", "c", "d", "e"} {
		r.push([]byte(s))
	}
	if got := string(bytes.Join(r.records(), nil)); got != "cde" || r.total != 5 {
		t.Errorf("records = %q of %d, want cde of 5", got, r.total)
	}
	r = &recordRing{keep: 3}
	r.push([]byte("a"))
	if got := string(bytes.Join(r.records(), nil)); got != "a" {
		t.Errorf("records = %q, want a", got)
	}
}

// TestHostKmsgFixture reads the fixture tree's dev/kmsg, a plain file of
// records: the raw member is the newest records byte for byte, and the
// derived JSON has them parsed, with wall-clock times.
func TestHostKmsgFixture(t *testing.T) {
	p := fixtures(t, ModeV2)
	src, err := os.ReadFile(filepath.Join(filepath.Dir(p.Proc), "dev", "kmsg"))
	if err != nil {
		t.Fatal(err)
	}
	for _, keep := range []int{0, 5} {
		out := newMemAdder()
		before := time.Now()
		rep := Run(context.Background(), &Target{Mode: ModeV2}, out, RunOptions{
			Modules: []string{"host"}, Config: &Config{Paths: p, KmsgRecords: keep},
		})
		if m := rep.Modules[0]; m.Status != bundle.StatusOK {
			t.Fatalf("keep %d: host module %s: %s %v", keep, m.Status, m.Reason, m.Errors)
		}
		all := kmsg.Split(src)
		want := all
		if keep > 0 {
			want = all[len(all)-keep:]
		}
		if got := out.files[KmsgMember]; !bytes.Equal(got, bytes.Join(want, nil)) {
			t.Errorf("keep %d: dev/kmsg =\n%s\nwant the newest %d records:\n%s", keep, got, len(want), bytes.Join(want, nil))
		}
		var l KmsgLog
		if err := json.Unmarshal(out.files[KmsgJSONMember], &l); err != nil {
			t.Fatalf("keep %d: %s: %v", keep, KmsgJSONMember, err)
		}
		if l.Version != 1 || l.Read != len(all) || l.Kept != len(want) || len(l.Records) != len(want) || l.Lost != 0 {
			t.Errorf("keep %d: read %d kept %d records %d lost %d, want %d %d %d 0", keep, l.Read, l.Kept, len(l.Records), l.Lost, len(all), len(want), len(want))
		}
		// The boot time is this machine's: the fixture is read as if live.
		if d := l.Clock.Realtime.Sub(before); d < 0 || d > 5*time.Second {
			t.Errorf("clock realtime %v not at capture time %v", l.Clock.Realtime, before)
		}
		last := l.Records[len(l.Records)-1]
		if last.Seq != 19 || last.SinceBootUS != 12245001030 || last.LevelName != "info" ||
			!last.Time.Equal(l.BootTime.Add(12245001030*time.Microsecond)) {
			t.Errorf("keep %d: last record = %+v (boot %v)", keep, last, l.BootTime)
		}
		if keep == 0 {
			usb := l.Records[5]
			if usb.Level != 3 || usb.Fields["SUBSYSTEM"] != "usb" || usb.Fields["DEVICE"] != "c189:1" || usb.Extra[0] != "caller=T1" {
				t.Errorf("record with continuation lines = %+v", usb)
			}
		}
	}
	// A negative count turns the kernel log off.
	out := newMemAdder()
	Run(context.Background(), &Target{Mode: ModeV2}, out, RunOptions{Modules: []string{"host"}, Config: &Config{Paths: p, KmsgRecords: -1}})
	if _, ok := out.files[KmsgMember]; ok {
		t.Error("KmsgRecords -1 still copied dev/kmsg")
	}
}

func TestHostKmsgMissing(t *testing.T) {
	p := fixtures(t, ModeV2)
	tree := t.TempDir()
	if err := os.Symlink(must(filepath.Abs(p.Proc)), filepath.Join(tree, "proc")); err != nil {
		t.Fatal(err)
	}
	p.Proc = filepath.Join(tree, "proc")
	rep := Run(context.Background(), &Target{Mode: ModeV2}, newMemAdder(), RunOptions{Modules: []string{"host"}, Config: &Config{Paths: p}})
	if m := rep.Modules[0]; m.Status != bundle.StatusPartial || !strings.Contains(m.Reason, "no kernel log device") {
		t.Errorf("host module = %+v, want partial for the missing dev/kmsg", m)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestKmsgLive writes a marker into the real kernel log and finds it in
// the captured dev/kmsg, with a wall-clock time close to now; the read
// must end by itself (EAGAIN), well before the deadline.
func TestKmsgLive(t *testing.T) {
	testutil.RequireRoot(t)
	marker := "dashcam-test-marker-" + hex.EncodeToString(must(randomBytes(8)))
	if err := os.WriteFile("/dev/kmsg", []byte("<6>"+marker+"\n"), 0); err != nil {
		t.Fatalf("write /dev/kmsg: %v", err)
	}
	written := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out := newMemAdder()
	start := time.Now()
	rep := Run(ctx, &Target{Mode: DefaultPaths().CgroupMode()}, out, RunOptions{
		Modules: []string{"host"}, Config: &Config{Paths: DefaultPaths(), KmsgRecords: 1000},
	})
	took := time.Since(start)
	if took > 10*time.Second || ctx.Err() != nil {
		t.Fatalf("host module took %v: reading /dev/kmsg blocked", took)
	}
	if m := rep.Modules[0]; m.Status != bundle.StatusOK {
		t.Errorf("host module %s: %s %v", m.Status, m.Reason, m.Errors)
	}
	raw := out.files[KmsgMember]
	if !bytes.Contains(raw, []byte(";"+marker+"\n")) {
		t.Fatalf("dev/kmsg (%d bytes) lacks the marker %s", len(raw), marker)
	}
	var l KmsgLog
	if err := json.Unmarshal(out.files[KmsgJSONMember], &l); err != nil {
		t.Fatal(err)
	}
	var found *KmsgRecord
	for i := range l.Records {
		if l.Records[i].Message == marker {
			found = &l.Records[i]
		}
	}
	if found == nil {
		t.Fatalf("%s lacks the marker", KmsgJSONMember)
	}
	if found.Facility != 1 || found.Level != 6 {
		t.Errorf("marker facility %d level %d, want 1 (user) and 6 (info)", found.Facility, found.Level)
	}
	if d := found.Time.Sub(written); d < -time.Minute || d > time.Minute {
		t.Errorf("marker time %v is %v from when it was written (%v)", found.Time, d, written)
	}
	if n := len(kmsg.Split(raw)); l.Kept > 1000 || l.Kept != n || l.Read < n {
		t.Errorf("read %d, kept %d records; raw has %d", l.Read, l.Kept, n)
	}
	t.Logf("read %d records, kept %d, in %v (host module total)", l.Read, l.Kept, took)
}

func randomBytes(n int) ([]byte, error) {
	b := make([]byte, n)
	_, err := rand.Read(b)
	return b, err
}

// TestKmsgNeedsCAPSYSLOG drops CAP_SYSLOG from this thread (capabilities
// are per thread) and checks the capture says why the log is missing.
func TestKmsgNeedsCAPSYSLOG(t *testing.T) {
	testutil.RequireRoot(t)
	if b, _ := os.ReadFile("/proc/sys/kernel/dmesg_restrict"); strings.TrimSpace(string(b)) != "1" {
		t.Skip("kernel.dmesg_restrict is not 1: anyone may read the kernel log here")
	}
	runtime.LockOSThread()
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var caps [2]unix.CapUserData
	if err := unix.Capget(&hdr, &caps[0]); err != nil {
		t.Fatal(err)
	}
	saved := caps
	caps[1].Effective &^= 1 << (unix.CAP_SYSLOG - 32)
	if err := unix.Capset(&hdr, &caps[0]); err != nil {
		t.Fatal(err)
	}
	s := newSink("host", newMemAdder())
	m := &host{paths: DefaultPaths()}
	m.kernelLog(context.Background(), s)
	if err := unix.Capset(&hdr, &saved[0]); err != nil {
		t.Fatalf("restore capabilities: %v", err) // the thread stays locked and dies with the test
	}
	runtime.UnlockOSThread()
	r := result("host", nil, s)
	if r.Status != bundle.StatusPartial || !strings.Contains(r.Reason, "kernel log needs CAP_SYSLOG (dmesg_restrict=1)") {
		t.Errorf("result = %+v, want partial naming CAP_SYSLOG", r)
	}
	if s.members != 0 {
		t.Errorf("%d members stored without the kernel log", s.members)
	}
}

// BenchmarkReadKmsg reads the live kernel log to its end, and derives
// the JSON, as the host module does.
func BenchmarkReadKmsg(b *testing.B) {
	testutil.RequireRoot(b)
	var n, size int
	for b.Loop() {
		recs, _, err := readKmsg(context.Background(), "/dev/kmsg", defaultKmsgRecords)
		if err != nil {
			b.Fatal(err)
		}
		data, _ := json.Marshal(deriveKmsg(recs, len(recs), readClock()))
		n, size = len(recs), len(data)
	}
	b.ReportMetric(float64(n), "records")
	b.ReportMetric(float64(size), "json-bytes")
}
