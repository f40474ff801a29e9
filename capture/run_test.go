package capture

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dashcam-dev/dashcam/bundle"
)

func runFixture(t *testing.T, mode string, spec Spec, modules ...string) (*memAdder, Report) {
	t.Helper()
	p := fixtures(t, mode)
	tg, err := Resolve(p, spec, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := newMemAdder()
	rep := Run(context.Background(), tg, out, RunOptions{Modules: modules, Config: &Config{Paths: p}})
	return out, rep
}

func TestRunFixtureHybrid(t *testing.T) {
	out, rep := runFixture(t, ModeHybrid, Spec{Unit: "payment.service"}, "cgroup", "host", "procs")
	for _, m := range rep.Modules {
		if m.Status != bundle.StatusOK {
			t.Errorf("module %s: %s (%s) %v", m.Name, m.Status, m.Reason, m.Errors)
		}
	}
	for _, name := range []string{
		"proc/100/stat", "proc/100/status", "proc/100/cmdline", "proc/100/limits", "proc/100/cgroup",
		"proc/100/sched", "proc/100/wchan", "proc/100/syscall", "proc/100/io", "proc/100/oom_score",
		"proc/100/oom_score_adj", "proc/100/task/100/stat", "proc/100/task/101/stat",
		"proc/103/stat", // the zombie child
		"proc/loadavg", "proc/meminfo", "proc/pressure/memory", "proc/sys/kernel/random/boot_id",
		"sys/devices/system/cpu/online",
		"sys/fs/cgroup/unified/system.slice/payment.service/memory.pressure",
		"sys/fs/cgroup/unified/system.slice/payment.service/workers/cgroup.procs", // descendants too
		"sys/fs/cgroup/unified/system.slice/cpu.max",                              // ancestor limit
		"sys/fs/cgroup/memory/system.slice/payment.service/memory.limit_in_bytes",
		ProcessTableMember,
	} {
		if _, ok := out.files[name]; !ok {
			t.Errorf("member %s missing", name)
		}
	}
	for name := range out.files {
		if strings.HasPrefix(name, "proc/200/") || strings.Contains(name, "nginx.service") {
			t.Errorf("member %s is outside the target", name)
		}
	}
	// Raw first: kernel files are copied byte for byte.
	want, _ := os.ReadFile(filepath.Join(fixtures(t, ModeHybrid).Proc, "100", "status"))
	if !bytes.Equal(out.files["proc/100/status"], want) {
		t.Error("proc/100/status differs from the source file")
	}
	if rep.Counts.ProcessesSeen != 5 || rep.Counts.ThreadsSeen != 6 || rep.Counts.ProcessesVanished != 0 {
		t.Errorf("counts = %+v, want 5 processes, 6 threads, 0 vanished", rep.Counts)
	}

	var table ProcessTable
	if err := json.Unmarshal(out.files[ProcessTableMember], &table); err != nil {
		t.Fatal(err)
	}
	got := map[int]ProcessRow{}
	for _, r := range table.Processes {
		got[r.Pid] = r
	}
	if r := got[103]; r.State != "Z" || r.PPid != 100 {
		t.Errorf("zombie row = %+v", r)
	}
	if r := got[100]; r.Comm != "payment" || r.Threads != 2 || r.Cgroups["unified"] != "/system.slice/payment.service" {
		t.Errorf("row 100 = %+v", r)
	}
}

func TestRunRedactsCmdlines(t *testing.T) {
	out, rep := runFixture(t, ModeV2, Spec{Cgroup: "/system.slice/payment.service"}, "procs")
	for name, data := range out.files {
		for _, secret := range []string{"hunter2", "s3cr3tT0ken", "pa55w0rd"} {
			if bytes.Contains(data, []byte(secret)) {
				t.Errorf("%s contains the secret %q", name, secret)
			}
		}
	}
	if !bytes.Contains(out.files["proc/100/cmdline"], []byte("--port=8080\x00")) {
		t.Errorf("non-secret argument lost: %q", out.files["proc/100/cmdline"])
	}
	seen := map[string]bool{}
	for _, r := range rep.Redactions {
		seen[fmt.Sprint(r.Pid, r.Member)] = true
		if r.Rule == "" || r.Count < 1 {
			t.Errorf("redaction without rule or count: %+v", r)
		}
	}
	if !seen["100proc/100/cmdline"] || !seen["102proc/102/cmdline"] {
		t.Errorf("redactions = %+v, want entries for pids 100 and 102", rep.Redactions)
	}
	if _, ok := out.files["proc/100/environ"]; ok {
		t.Error("environ captured although it is off by default")
	}
}

func TestRunVanishedProcess(t *testing.T) {
	p := fixtures(t, ModeV2)
	tg := &Target{Spec: Spec{Pids: []int{100, 4000000}}, Mode: ModeV2, Pids: []int{100, 4000000}}
	out := newMemAdder()
	rep := Run(context.Background(), tg, out, RunOptions{Modules: []string{"procs"}, Config: &Config{Paths: p}})
	if rep.Counts.ProcessesVanished != 1 {
		t.Errorf("vanished = %d, want 1", rep.Counts.ProcessesVanished)
	}
	if m := rep.Modules[0]; m.Status != bundle.StatusOK || !strings.Contains(m.Reason, "1 process exited during capture") {
		t.Errorf("module = %+v, want ok noting the exit", m)
	}
}

// fakeModule lets tests drive the runner's status decisions.
type fakeModule func(ctx context.Context, t *Target, s *Sink) error

func (f fakeModule) Run(ctx context.Context, t *Target, s *Sink) error { return f(ctx, t, s) }

func registerFake(t *testing.T, name string, f fakeModule) {
	t.Helper()
	register(name, false, func(*Config) Module { return f })
	t.Cleanup(func() { delete(registry, name) })
}

func TestRunStatuses(t *testing.T) {
	registerFake(t, "t-ok", func(_ context.Context, _ *Target, s *Sink) error { return s.Add("a", []byte("x")) })
	registerFake(t, "t-skip", func(context.Context, *Target, *Sink) error {
		return fmt.Errorf("%w: needs Linux 5.8 (BPF ring buffer)", ErrNotSupported)
	})
	registerFake(t, "t-fail", func(context.Context, *Target, *Sink) error { return errors.New("boom") })
	registerFake(t, "t-denied", func(_ context.Context, _ *Target, s *Sink) error {
		s.Denied("proc/1/environ")
		return nil
	})
	registerFake(t, "t-panic", func(context.Context, *Target, *Sink) error { panic("bad module") })
	registerFake(t, "t-slow", func(ctx context.Context, _ *Target, s *Sink) error {
		_ = s.Add("slow/early", []byte("x"))
		time.Sleep(300 * time.Millisecond) // ignores ctx on purpose
		if err := s.Add("slow/late", []byte("x")); !errors.Is(err, ErrSinkClosed) {
			panic(fmt.Sprintf("late Add: %v", err))
		}
		return nil
	})
	out := newMemAdder()
	rep := Run(context.Background(), &Target{}, out, RunOptions{
		Modules:       []string{"t-ok", "t-skip", "t-fail", "t-denied", "t-panic", "t-slow"},
		ModuleTimeout: 50 * time.Millisecond,
	})
	want := map[string]string{
		"t-ok": bundle.StatusOK, "t-skip": bundle.StatusSkipped, "t-fail": bundle.StatusFailed,
		"t-denied": bundle.StatusPartial, "t-panic": bundle.StatusFailed, "t-slow": bundle.StatusPartial,
	}
	for _, m := range rep.Modules {
		if m.Status != want[m.Name] {
			t.Errorf("%s: status %s (%s), want %s", m.Name, m.Status, m.Reason, want[m.Name])
		}
		if m.Status != bundle.StatusOK && m.Reason == "" {
			t.Errorf("%s: %s without a reason", m.Name, m.Status)
		}
	}
	if !strings.Contains(rep.Modules[1].Reason, "ring buffer") {
		t.Errorf("skip reason lost: %q", rep.Modules[1].Reason)
	}
	time.Sleep(400 * time.Millisecond) // let t-slow try its late write
	if _, ok := out.files["slow/late"]; ok {
		t.Error("a write after the module deadline reached the bundle")
	}
	if _, ok := out.files["slow/early"]; !ok {
		t.Error("a write before the module deadline was lost")
	}
}

func TestSelectModules(t *testing.T) {
	tests := []struct {
		in   []string
		want string
	}{
		{nil, strings.Join(DefaultModules(), ",")},
		{[]string{"procs"}, "procs"},
		{[]string{"-host"}, strings.Join(slices.DeleteFunc(DefaultModules(), func(n string) bool { return n == "host" }), ",")},
		{[]string{"host", "procs"}, "host,procs"},
		{[]string{"all"}, strings.Join(ModuleNames(), ",")},
	}
	for _, tt := range tests {
		got, err := SelectModules(tt.in)
		if err != nil || strings.Join(got, ",") != tt.want {
			t.Errorf("SelectModules(%q) = %v, %v; want %s", tt.in, got, err, tt.want)
		}
	}
	if _, err := SelectModules([]string{"nope"}); !errors.Is(err, ErrUnknownModule) {
		t.Errorf("unknown module: err = %v", err)
	}
}

func TestRegisterDuplicatePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("duplicate register did not panic")
		}
	}()
	register("procs", true, nil)
}

func TestCgroupSkipsWriteOnlyFiles(t *testing.T) {
	dir := t.TempDir()
	cg := filepath.Join(dir, "grp")
	if err := os.MkdirAll(cg, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(cg, "cgroup.procs"), []byte("1\n"), 0o644)
	os.WriteFile(filepath.Join(cg, "cgroup.event_control"), nil, 0o200)
	tg := &Target{Spec: Spec{Cgroup: "/grp"}, Cgroups: []Cgroup{{Hierarchy: "memory", Path: "/grp", Dir: cg, Member: "sys/fs/cgroup/memory/grp"}}}
	out := newMemAdder()
	rep := Run(context.Background(), tg, out, RunOptions{Modules: []string{"cgroup"}, Config: &Config{Paths: Paths{Cgroup: dir}}})
	if rep.Modules[0].Status != bundle.StatusOK {
		t.Errorf("status %+v", rep.Modules[0])
	}
	if _, ok := out.files["sys/fs/cgroup/memory/grp/cgroup.event_control"]; ok {
		t.Error("write-only control file was copied")
	}
	if _, ok := out.files["sys/fs/cgroup/memory/grp/cgroup.procs"]; !ok {
		t.Error("cgroup.procs missing")
	}
}

func TestRunEnvironOptIn(t *testing.T) {
	p := fixtures(t, ModeV2)
	tg, err := Resolve(p, Spec{Pids: []int{100}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := newMemAdder()
	rep := Run(context.Background(), tg, out, RunOptions{Modules: []string{"procs"}, Config: &Config{Paths: p, Environ: true}})
	env, ok := out.files["proc/100/environ"]
	if !ok {
		t.Fatal("environ not captured with Environ set")
	}
	for _, secret := range []string{"hunter2", "pa55w0rd"} {
		if bytes.Contains(env, []byte(secret)) {
			t.Errorf("environ contains %q: %q", secret, env)
		}
	}
	if !bytes.Contains(env, []byte("PATH=/usr/bin:/bin\x00")) || !bytes.Contains(env, []byte("HOME=/home/app\x00")) {
		t.Errorf("ordinary variables lost: %q", env)
	}
	n := 0
	for _, r := range rep.Redactions {
		if r.Member == "proc/100/environ" {
			n += r.Count
		}
	}
	if n < 2 {
		t.Errorf("environ redactions = %d, want at least 2 (%+v)", n, rep.Redactions)
	}
}
