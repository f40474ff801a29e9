package analyze

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/diff"

	"github.com/dashcam-dev/dashcam/bundle"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

func load(t *testing.T, b *bundle.Bundle) *Report {
	t.Helper()
	r, err := Load(b)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return r
}

func TestGolden(t *testing.T) {
	r := load(t, fixtureBundle())
	for _, tc := range []struct {
		file  string
		write func(*Report, *bytes.Buffer) error
	}{
		{"report.txt.golden", func(r *Report, b *bytes.Buffer) error { return r.WriteText(b) }},
		{"report.md.golden", func(r *Report, b *bytes.Buffer) error { return r.WriteMarkdown(b) }},
		{"report.json.golden", func(r *Report, b *bytes.Buffer) error { return r.WriteJSON(b) }},
	} {
		t.Run(tc.file, func(t *testing.T) {
			var got bytes.Buffer
			if err := tc.write(r, &got); err != nil {
				t.Fatal(err)
			}
			golden(t, tc.file, got.Bytes())
		})
	}
}

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./analyze -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (go test ./analyze -update rewrites it):\n%s",
			path, diff.Diff(path, want, "got", got))
	}
}

func TestZombiesGroupedByParent(t *testing.T) {
	r := load(t, fixtureBundle())
	if len(r.Zombies) != 1 {
		t.Fatalf("got %d zombie groups, want 1: %+v", len(r.Zombies), r.Zombies)
	}
	g := r.Zombies[0]
	wantParent := Parent{Pid: 100, Comm: "app", State: "S", SIGCHLD: "default"}
	if g.Parent != wantParent {
		t.Errorf("parent = %+v, want %+v", g.Parent, wantParent)
	}
	if want := []Zombie{{101, "worker"}, {102, "worker"}}; !slices.Equal(g.Zombies, want) {
		t.Errorf("zombies = %+v, want %+v", g.Zombies, want)
	}
	const advice = "2 zombies already exited; their parent 100 (app) must reap them (wait) — killing the zombies does nothing"
	if g.Advice != advice {
		t.Errorf("advice = %q, want %q", g.Advice, advice)
	}
	var text bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), advice) {
		t.Errorf("text report lacks the advice:\n%s", &text)
	}
}

func TestZombieAdvice(t *testing.T) {
	for _, tc := range []struct {
		parent Parent
		n      int
		want   string
	}{
		{Parent{Pid: 7, Comm: "sh"}, 1,
			"zombie already exited; its parent 7 (sh) must reap it (wait) — killing the zombie does nothing"},
		{Parent{Pid: 1}, 1,
			"zombie already exited; its parent 1 must reap it (wait) — killing the zombie does nothing"},
		{Parent{Pid: 7, Comm: "a\x1b[2Jb"}, 1,
			`zombie already exited; its parent 7 (a\x1b[2Jb) must reap it (wait) — killing the zombie does nothing`},
	} {
		if got := zombieAdvice(tc.parent, tc.n); got != tc.want {
			t.Errorf("zombieAdvice(%+v, %d) = %q, want %q", tc.parent, tc.n, got, tc.want)
		}
	}
}

func TestSIGCHLD(t *testing.T) {
	for _, tc := range []struct {
		status, want string
	}{
		{"SigIgn:\t0000000000000000\nSigCgt:\t0000000000010000\n", "caught"},
		{"SigIgn:\t0000000000010000\nSigCgt:\t0000000000000000\n", "ignored"},
		// SIGINT, USR1, USR2, TERM caught: bit 16 clear.
		{"SigIgn:\t0000000000001000\nSigCgt:\t0000000000004a02\n", "default"},
	} {
		m, err := parseSigMasks(strings.NewReader(tc.status))
		if err != nil {
			t.Fatalf("parseSigMasks(%q): %v", tc.status, err)
		}
		if got := m.sigchld(); got != tc.want {
			t.Errorf("sigchld of %q = %q, want %q", tc.status, got, tc.want)
		}
	}
	for _, bad := range []string{"", "SigCgt:\t0\n", "SigIgn:\tzz\nSigCgt:\t0\n"} {
		if m, err := parseSigMasks(strings.NewReader(bad)); err == nil {
			t.Errorf("parseSigMasks(%q) = %+v, want error", bad, m)
		}
	}
	if got := (*sigMasks)(nil).sigchld(); got != "unknown" {
		t.Errorf("nil masks: %q, want unknown", got)
	}
}

func TestBlockedThreads(t *testing.T) {
	r := load(t, fixtureBundle())
	want := []Task{
		// A D thread of a process in S: its own wchan is not in the bundle.
		{Pid: 120, Tid: 122, Comm: "db-flush", Wchan: ""},
		// A D process listed once, from its task stat, with its wchan.
		{Pid: 130, Tid: 130, Comm: "nfs-reader", Wchan: "rpc_wait_bit_killable"},
	}
	if !slices.Equal(r.Blocked, want) {
		t.Errorf("blocked = %+v\nwant      %+v", r.Blocked, want)
	}
	var text bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"120  122  db-flush    unknown", "130  130  nfs-reader  rpc_wait_bit_killable"} {
		if !strings.Contains(text.String(), line) {
			t.Errorf("text report lacks %q:\n%s", line, &text)
		}
	}
}

// A D process whose threads were not captured is listed from its stat.
func TestBlockedWithoutTasks(t *testing.T) {
	files := fixtureFiles()
	delete(files, "proc/130/task/130/stat")
	r := load(t, bundle.New(fixtureManifest(), files))
	want := Task{Pid: 130, Tid: 130, Comm: "nfs-reader", Wchan: "rpc_wait_bit_killable"}
	if len(r.Blocked) != 2 || r.Blocked[1] != want {
		t.Errorf("blocked = %+v, want second %+v", r.Blocked, want)
	}
}

// A task wchan, if the bundle has one, is the thread's own.
func TestBlockedThreadWchan(t *testing.T) {
	files := fixtureFiles()
	files["proc/120/task/122/wchan"] = []byte("jbd2_log_wait_commit")
	r := load(t, bundle.New(fixtureManifest(), files))
	if got := r.Blocked[0]; got.Tid != 122 || got.Wchan != "jbd2_log_wait_commit" {
		t.Errorf("blocked[0] = %+v, want tid 122 in jbd2_log_wait_commit", got)
	}
}

func TestTopRSSUsesManifestPageSize(t *testing.T) {
	r := load(t, fixtureBundle())
	var pids []int
	for _, p := range r.TopRSS {
		pids = append(pids, p.Pid)
	}
	if want := []int{120, 110, 100, 130, 140, 160}; !slices.Equal(pids, want) {
		t.Errorf("top RSS pids = %v, want %v", pids, want)
	}
	top := r.TopRSS[0]
	if top.RSSBytes == nil || *top.RSSBytes != 300000*fixturePageSize {
		t.Fatalf("rss_bytes of %d = %v, want %d (pages × manifest page size)", top.Pid, top.RSSBytes, 300000*fixturePageSize)
	}
	var text bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "120  db          4.58 GiB") {
		t.Errorf("text report lacks 4.58 GiB for db:\n%s", &text)
	}

	if want := []int{110, 120, 100, 130, 101, 102, 140, 160}; !slices.Equal(pidsOf(r.TopCPU), want) {
		t.Errorf("top CPU pids = %v, want %v", pidsOf(r.TopCPU), want)
	}
	if s := r.TopCPU[0].CPUSeconds; s == nil || *s != 930 {
		t.Errorf("cpu_seconds of busy = %v, want 930 ((90000+3000)/100)", s)
	}
}

func pidsOf(ps []Process) []int {
	var pids []int
	for _, p := range ps {
		pids = append(pids, p.Pid)
	}
	return pids
}

// Absent files and manifest fields read as unknown, never as 0.
func TestAbsentIsUnknown(t *testing.T) {
	m := fixtureManifest()
	m.Host.PageSize, m.Host.ClockTicks, m.Host.CPUs, m.Host.MemTotalBytes = 0, 0, 0, nil
	files := fixtureFiles()
	for _, name := range []string{"proc/loadavg", "proc/meminfo", "proc/pressure/cpu", "proc/pressure/memory", "proc/pressure/io"} {
		delete(files, name)
	}
	r := load(t, bundle.New(m, files))

	if r.Load != nil || r.Host.MemAvailableBytes != nil || len(r.Pressure) != 0 {
		t.Errorf("load %v, mem available %v, pressure %v: want all unknown", r.Load, r.Host.MemAvailableBytes, r.Pressure)
	}
	for _, p := range r.TopRSS {
		if p.RSSBytes != nil {
			t.Errorf("pid %d: rss_bytes %d without a page size", p.Pid, *p.RSSBytes)
		}
	}
	for _, p := range r.TopCPU {
		if p.CPUSeconds != nil {
			t.Errorf("pid %d: cpu_seconds %v without clock ticks", p.Pid, *p.CPUSeconds)
		}
	}
	// ghost (160) has a stat only.
	ghost := r.TopCPU[slices.IndexFunc(r.TopCPU, func(p Process) bool { return p.Pid == 160 })]
	if ghost.Cmdline != nil {
		t.Errorf("ghost cmdline = %q, want nil (absent)", ghost.Cmdline)
	}

	var text, js bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"kernel 6.8.0-45-generic, unknown cpus, unknown memory, cgroup v2",
		"load      unknown",
		"160  ghost       unknown  1        S      unknown",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, &text)
		}
	}
	for _, want := range []string{`"load": null`, `"page_size": null`, `"rss_bytes": null`, `"cpu_seconds": null`, `"cmdline": null`} {
		if !strings.Contains(js.String(), want) {
			t.Errorf("JSON lacks %s", want)
		}
	}
	// A zombie's empty cmdline is known to be empty: [].
	if !strings.Contains(js.String(), `"cmdline": []`) {
		t.Errorf("JSON lacks an empty (known) cmdline")
	}
}

func TestMalformedStat(t *testing.T) {
	r := load(t, fixtureBundle())
	var paths []string
	for _, p := range r.Problems {
		paths = append(paths, p.Path)
	}
	if want := []string{"proc/170/stat", "proc/171/stat"}; !slices.Equal(paths, want) {
		t.Errorf("problems = %+v, want paths %v", r.Problems, want)
	}
	if r.Processes != len(fixtureProcs) {
		t.Errorf("processes = %d, want %d (the malformed ones skipped)", r.Processes, len(fixtureProcs))
	}
	for _, p := range append(r.TopCPU, r.TopRSS...) {
		if p.Pid == 170 || p.Pid == 171 {
			t.Errorf("malformed pid %d listed: %+v", p.Pid, p)
		}
	}
}

// Each of these files, alone in an otherwise good bundle, must give a
// report (perhaps with problems), never a panic.
func TestMalformedFiles(t *testing.T) {
	bad := []string{
		"", "\x00", ")", "(", ") (", "1 )x( S", "1 (a) S", "1 (a)\n", "1 (a) S 0 0 0 0 0 0 0 0 0 0 x",
		"SigIgn:\tffffffffffffffffff\nSigCgt:\t1\n", "Uid:\t1\t2\t3\t4\t5\t6\n",
		"some avg10=x", "full avg10=1 avg60=2", "nan nan nan", "1 2",
	}
	for _, name := range []string{
		"proc/100/stat", "proc/100/status", "proc/120/task/122/stat", "proc/100/cmdline", "proc/100/wchan",
		"proc/loadavg", "proc/meminfo", "proc/pressure/io",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel() // each Load extracts to disk
			for _, data := range bad {
				files := fixtureFiles()
				files[name] = []byte(data)
				if _, err := Load(bundle.New(fixtureManifest(), files)); err != nil {
					t.Errorf("%q: %v", data, err)
				}
			}
		})
	}
}

func TestEmptyBundle(t *testing.T) {
	r := load(t, bundle.New(nil, nil))
	var text, md, js bytes.Buffer
	for _, err := range []error{r.WriteText(&text), r.WriteMarkdown(&md), r.WriteJSON(&js)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if r.Processes != 0 || len(r.Problems) != 0 {
		t.Errorf("empty bundle: %d processes, problems %+v", r.Processes, r.Problems)
	}
}

func TestOpen(t *testing.T) {
	var buf bytes.Buffer
	if err := fixtureBundle().Write(&buf); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "b.tar.zst")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if r.Host.Hostname != "web-1" || r.Processes != len(fixtureProcs) {
		t.Errorf("Open: host %q, %d processes", r.Host.Hostname, r.Processes)
	}
	if _, err := Open(filepath.Join(t.TempDir(), "missing.tar.zst")); err == nil {
		t.Error("Open of a missing file succeeded")
	}
}

// fuzzNames are the files FuzzLoadProcFile replaces, one per input.
var fuzzNames = []string{
	"proc/100/stat", "proc/100/status", "proc/100/cmdline", "proc/100/wchan",
	"proc/120/task/122/stat", "proc/loadavg", "proc/meminfo", "proc/pressure/cpu",
}

// FuzzLoadProcFile replaces one file of the fixture bundle: Load must
// return a report, never panic or fail.
func FuzzLoadProcFile(f *testing.F) {
	f.Add(uint8(0), []byte("100 (app) S 1"))
	f.Add(uint8(1), []byte("SigIgn:\t0\nSigCgt:\t10000\n"))
	f.Add(uint8(4), []byte("122 (x) D 1 0 0 0 0 0 0 0 0 0 1 1 0 0 20 0 1 0 1 1 1"))
	f.Add(uint8(5), []byte("1 2 3 1/2 3\n"))
	f.Add(uint8(7), []byte("some avg10=1.00 avg60=1.00 avg300=1.00 total=1\n"))
	f.Fuzz(func(t *testing.T, i uint8, data []byte) {
		files := fixtureFiles()
		files[fuzzNames[int(i)%len(fuzzNames)]] = data
		if _, err := Load(bundle.New(fixtureManifest(), files)); err != nil {
			t.Fatal(err)
		}
	})
}

// A bad status keeps the process; only its SIGCHLD disposition is unknown.
func TestMalformedStatus(t *testing.T) {
	files := fixtureFiles()
	files["proc/100/status"] = []byte("Name:\tapp\nSigIgn:\tnot-hex\nSigCgt:\t0\n")
	r := load(t, bundle.New(fixtureManifest(), files))
	if got := r.Zombies[0].Parent; got.Comm != "app" || got.SIGCHLD != "unknown" {
		t.Errorf("parent = %+v, want app with SIGCHLD unknown", got)
	}
	if len(r.Problems) != 3 || r.Problems[0].Path != "proc/100/status" {
		t.Errorf("problems = %+v, want proc/100/status first", r.Problems)
	}
}
