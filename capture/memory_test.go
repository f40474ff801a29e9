package capture

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/dashcam-dev/dashcam/analyze"
	"github.com/dashcam-dev/dashcam/bundle"
	"github.com/dashcam-dev/dashcam/internal/testutil"
)

// runMemory runs the memory module alone on pids.
func runMemory(t *testing.T, p Paths, pids []int, top int, budget int64, out Adder) Report {
	t.Helper()
	tg := &Target{Spec: Spec{Pids: pids}, Pids: pids}
	return Run(context.Background(), tg, out, RunOptions{
		Modules: []string{"memory"},
		Config:  &Config{Paths: p, MemoryTop: top, MemoryBudget: budget},
	})
}

// fileSize is the size of a fixture file.
func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// fullFiles lists which of maps, smaps and numa_maps of pid are members.
func fullFiles(out *memAdder, pid int) []string {
	var got []string
	for _, name := range []string{"maps", "smaps", "numa_maps"} {
		if _, ok := out.files[fmt.Sprintf("proc/%d/%s", pid, name)]; ok {
			got = append(got, name)
		}
	}
	return got
}

// The fixture's RSS order (smaps_rollup) is 100 > 104 > 102 > 105, not
// pid order; 103 is a zombie: statm all 0 and no smaps_rollup.
func TestMemoryFixtureTopByRSS(t *testing.T) {
	p := fixtures(t, ModeV2)
	out := newMemAdder()
	rep := runMemory(t, p, []int{100, 102, 103, 104, 105}, 2, 64<<20, out)
	if m := rep.Modules[0]; m.Status != bundle.StatusOK || m.Reason != "" {
		t.Errorf("module = %+v, want ok without a reason", m)
	}
	for _, pid := range []int{100, 102, 103, 104, 105} {
		files := []string{"statm", "smaps_rollup"}
		if pid == 103 {
			files = files[:1]
			if _, ok := out.files["proc/103/smaps_rollup"]; ok {
				t.Error("zombie 103 has an smaps_rollup member")
			}
		}
		switch pid {
		case 100, 104:
			files = append(files, "maps", "smaps", "numa_maps")
		}
		for _, name := range files {
			member := fmt.Sprintf("proc/%d/%s", pid, name)
			want, err := os.ReadFile(filepath.Join(p.Proc, strconv.Itoa(pid), name))
			if err != nil {
				t.Fatal(err)
			}
			if got, ok := out.files[member]; !ok || !bytes.Equal(got, want) {
				t.Errorf("%s: present %v, equal to the source %v", member, ok, bytes.Equal(got, want))
			}
		}
		if got := fullFiles(out, pid); (pid == 102 || pid == 105 || pid == 103) && got != nil {
			t.Errorf("pid %d is not in the top 2 by RSS but has %v", pid, got)
		}
	}
	if len(out.files) != 4*2+1+2*3 {
		t.Errorf("%d members, want 15: %v", len(out.files), slices.Sorted(maps.Keys(out.files)))
	}
	if rep.Counts.ProcessesVanished != 0 {
		t.Errorf("vanished = %d, want 0", rep.Counts.ProcessesVanished)
	}
}

// A budget that holds pid 100's files and 104's maps, plus 100 bytes:
// 104's smaps is skipped on the estimate from its maps, 102's maps does
// not fit at all, and the manifest's module result says so.
func TestMemoryBudgetTruncation(t *testing.T) {
	p := fixtures(t, ModeV2)
	dir := func(pid int, name string) string { return filepath.Join(p.Proc, strconv.Itoa(pid), name) }
	budget := fileSize(t, dir(100, "maps")) + fileSize(t, dir(100, "smaps")) + fileSize(t, dir(100, "numa_maps")) +
		fileSize(t, dir(104, "maps")) + 100
	out := newMemAdder()
	rep := runMemory(t, p, []int{100, 102, 103, 104, 105}, 3, budget, out)
	if got := fullFiles(out, 100); len(got) != 3 {
		t.Errorf("pid 100: full files %v, want all three", got)
	}
	if got := fullFiles(out, 104); !slices.Equal(got, []string{"maps"}) {
		t.Errorf("pid 104: full files %v, want maps only", got)
	}
	if got := fullFiles(out, 102); got != nil {
		t.Errorf("pid 102: full files %v, want none", got)
	}
	for _, pid := range []int{100, 102, 104, 105} {
		if _, ok := out.files[fmt.Sprintf("proc/%d/smaps_rollup", pid)]; !ok {
			t.Errorf("pid %d: smaps_rollup missing", pid)
		}
	}
	m := rep.Modules[0]
	if m.Status != bundle.StatusPartial || !strings.Contains(m.Reason, "--memory-budget") {
		t.Errorf("module = %s (%s), want partial naming --memory-budget", m.Status, m.Reason)
	}
	if len(m.Errors) != 2 {
		t.Fatalf("errors = %q, want 2", m.Errors)
	}
	for i, want := range []string{
		"proc/104/smaps and numa_maps not copied: smaps of pid 104 is about 15.3 KiB, more than the 100 B left of --memory-budget (",
		"proc/102/maps and smaps and numa_maps not copied: maps of pid 102 is larger than the 100 B left of --memory-budget (",
	} {
		if e := m.Errors[i]; !strings.HasPrefix(e, want) || !strings.HasSuffix(e, "; smaps_rollup kept; raise --memory-budget or lower --memory-top") {
			t.Errorf("error %d = %q\nwant prefix  %q and the flags", i, e, want)
		}
	}
}

// writeProc writes files into root/<pid>/.
func writeProc(t *testing.T, root string, pid int, files map[string]string) {
	t.Helper()
	dir := filepath.Join(root, strconv.Itoa(pid))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// copyProc copies the memory files of a fixture pid into root.
func copyProc(t *testing.T, root string, pid int) {
	t.Helper()
	files := map[string]string{}
	for _, name := range []string{"statm", "smaps_rollup", "maps", "smaps", "numa_maps"} {
		b, err := os.ReadFile(filepath.Join("testdata", "fixtures", "proc", strconv.Itoa(pid), name))
		if err != nil {
			t.Fatal(err)
		}
		files[name] = string(b)
	}
	writeProc(t, root, pid, files)
}

// bigProc writes pid 300 with n mappings, the largest RSS, into root;
// its maps lists only mapsLines of them (all when 0).
func bigProc(t *testing.T, root string, n, mapsLines int) (smapsSize int) {
	t.Helper()
	var mapsText, smaps strings.Builder
	for i := range n {
		start := 0x7f0000000000 + uint64(i)*0x2000
		line := fmt.Sprintf("%x-%x rw-p 00000000 00:00 0 \n", start, start+0x1000)
		if mapsLines == 0 || i < mapsLines {
			mapsText.WriteString(line)
		}
		smaps.WriteString(line)
		for _, f := range []string{"Size: 4", "KernelPageSize: 4", "MMUPageSize: 4", "Rss: 4", "Pss: 4",
			"Pss_Dirty: 4", "Shared_Clean: 0", "Shared_Dirty: 0", "Private_Clean: 0", "Private_Dirty: 4",
			"Referenced: 4", "Anonymous: 4", "KSM: 0", "LazyFree: 0", "AnonHugePages: 0", "ShmemPmdMapped: 0",
			"FilePmdMapped: 0", "Shared_Hugetlb: 0", "Private_Hugetlb: 0", "Swap: 0", "SwapPss: 0", "Locked: 0"} {
			k, v, _ := strings.Cut(f, " ")
			fmt.Fprintf(&smaps, "%-16s%8s kB\n", k, v)
		}
		smaps.WriteString("THPeligible:           0\nVmFlags: rd wr mr mw me ac \n")
	}
	writeProc(t, root, 300, map[string]string{
		"statm":        "250000 240000 100 1 0 240000 0\n",
		"smaps_rollup": "7f0000000000-7fffffffffff ---p 00000000 00:00 0      [rollup]\nRss:  960000 kB\nPss:  960000 kB\n",
		"maps":         mapsText.String(),
		"smaps":        smaps.String(),
		"numa_maps":    "7f0000000000 default anon=1 dirty=1 N0=1 kernelpagesize_kB=4\n",
	})
	return smaps.Len()
}

// A process whose smaps is bigger than the budget is skipped whole, with
// the reason, and the next process still gets its files: whether the
// estimate from maps tells beforehand, or the bounded read finds out.
func TestMemorySmapsOverBudgetSkipped(t *testing.T) {
	for _, tc := range []struct {
		name      string
		mapsLines int
		reason    string
	}{
		{"estimated", 0, "smaps of pid 300 is about "},
		{"read", 5, "smaps of pid 300 is larger than the "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			size := bigProc(t, root, 2000, tc.mapsLines)
			copyProc(t, root, 100)
			const budget = 512 << 10
			if size <= budget {
				t.Fatalf("smaps of 300 is %d bytes, not over the %d budget", size, budget)
			}
			out := newMemAdder()
			rep := runMemory(t, Paths{Proc: root}, []int{100, 300}, 10, budget, out)
			if got := fullFiles(out, 300); !slices.Equal(got, []string{"maps"}) {
				t.Errorf("pid 300: full files %v, want maps only", got)
			}
			if _, ok := out.files["proc/300/smaps_rollup"]; !ok {
				t.Error("pid 300: smaps_rollup not kept")
			}
			if got := fullFiles(out, 100); len(got) != 3 {
				t.Errorf("pid 100: full files %v, want all three (it fits in what is left)", got)
			}
			m := rep.Modules[0]
			if m.Status != bundle.StatusPartial || len(m.Errors) != 1 {
				t.Fatalf("module = %+v, want partial with one error", m)
			}
			for _, want := range []string{"proc/300/smaps and numa_maps not copied: ", tc.reason,
				"of --memory-budget (512.0 KiB)", "smaps_rollup kept", "raise --memory-budget"} {
				if !strings.Contains(m.Errors[0], want) {
					t.Errorf("error %q lacks %q", m.Errors[0], want)
				}
			}
		})
	}
}

// hookAdder runs a function before storing one member.
type hookAdder struct {
	*memAdder
	member string
	hook   func()
}

func (h *hookAdder) Add(name string, data []byte) error {
	if name == h.member {
		h.hook()
	}
	return h.memAdder.Add(name, data)
}

// A process that exits between its smaps_rollup and its full files is
// counted as vanished, not an error, and the others are captured.
func TestMemoryVanishedMidway(t *testing.T) {
	root := t.TempDir()
	copyProc(t, root, 100)
	copyProc(t, root, 104)
	out := &hookAdder{memAdder: newMemAdder(), member: "proc/104/smaps_rollup", hook: func() {
		os.RemoveAll(filepath.Join(root, "100"))
	}}
	rep := runMemory(t, Paths{Proc: root}, []int{100, 104, 4000000}, 10, 64<<20, out)
	if m := rep.Modules[0]; m.Status != bundle.StatusOK || len(m.Errors) != 0 {
		t.Errorf("module = %+v, want ok", m)
	}
	if rep.Counts.ProcessesVanished != 2 {
		t.Errorf("vanished = %d, want 2 (100 mid-way, 4000000 before)", rep.Counts.ProcessesVanished)
	}
	if _, ok := out.files["proc/100/smaps_rollup"]; !ok {
		t.Error("pid 100: smaps_rollup, read before it exited, missing")
	}
	if got := fullFiles(out.memAdder, 100); got != nil {
		t.Errorf("pid 100: full files %v after it exited", got)
	}
	if got := fullFiles(out.memAdder, 104); len(got) != 3 {
		t.Errorf("pid 104: full files %v, want all three", got)
	}
}

func TestReadBoundedStopsOnContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	path := filepath.Join("testdata", "fixtures", "proc", "100", "smaps")
	if data, err := readBounded(ctx, path, 1<<20, 0); !errors.Is(err, context.Canceled) || data != nil {
		t.Errorf("readBounded after cancel = %d bytes, %v; want nil, context.Canceled", len(data), err)
	}
	want, _ := os.ReadFile(path)
	if data, err := readBounded(context.Background(), path, int64(len(want)), 0); err != nil || !bytes.Equal(data, want) {
		t.Errorf("readBounded with limit = size: %d bytes, %v; want the file", len(data), err)
	}
	if _, err := readBounded(context.Background(), path, int64(len(want))-1, 0); !errors.Is(err, errOverBudget) {
		t.Errorf("readBounded with limit = size-1: %v, want errOverBudget", err)
	}
}

func TestMemoryParseHelpers(t *testing.T) {
	if n, ok := statmResident([]byte("14361 14188 1355 1 0 12871 0\n")); !ok || n != 14188 {
		t.Errorf("statmResident = %d, %v", n, ok)
	}
	if _, ok := statmResident([]byte("14361\n")); ok {
		t.Error("statmResident accepted one field")
	}
	rollup := []byte("559811033000-7ffd3d502000 ---p 00000000 00:00 0      [rollup]\nRss:               56752 kB\nPss:  1 kB\n")
	if kb, ok := smapsField(rollup, "Rss:"); !ok || kb != 56752 {
		t.Errorf("smapsField Rss = %d, %v", kb, ok)
	}
	if _, ok := smapsField(rollup, "Swap:"); ok {
		t.Error("smapsField found an absent field")
	}
}

// Helper processes for the live tests (see helperMain).
const memAnonSize = 20 << 20

// memoryHelper maps memory for a live test and prints what it mapped:
// "memory-anon" a 20 MiB anonymous region, touched so that it is all
// private dirty, between two PROT_NONE guard pages so that the kernel
// cannot merge it with a neighbour ("start-end" in hex); "memory-many"
// DASHCAM_TEST_MAPPINGS (default 30000) one-page mappings of alternating
// protections, so that they do not merge (the count).
func memoryHelper(mode string) {
	page := os.Getpagesize()
	fail := func(err error) {
		fmt.Println("error", err)
		os.Exit(1)
	}
	switch mode {
	case "memory-anon":
		b, err := syscall.Mmap(-1, 0, memAnonSize+2*page, syscall.PROT_NONE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
		if err != nil {
			fail(err)
		}
		region := b[page : page+memAnonSize]
		if err := syscall.Mprotect(region, syscall.PROT_READ|syscall.PROT_WRITE); err != nil {
			fail(err)
		}
		for i := 0; i < len(region); i += page {
			region[i] = 1
		}
		start := uintptr(unsafe.Pointer(&region[0]))
		fmt.Printf("%x-%x\n", start, start+memAnonSize)
	case "memory-many":
		n := 30000
		if s := os.Getenv("DASHCAM_TEST_MAPPINGS"); s != "" {
			n, _ = strconv.Atoi(s)
		}
		b, err := syscall.Mmap(-1, 0, n*page, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
		if err != nil {
			fail(err)
		}
		for i := 1; i < n; i += 2 {
			if err := syscall.Mprotect(b[i*page:(i+1)*page], syscall.PROT_READ); err != nil {
				fail(fmt.Errorf("mapping %d (vm.max_map_count?): %w", i, err))
			}
		}
		fmt.Println(n)
	}
}

// smapsEntryOf returns the lines of the entry of smaps whose header starts
// with prefix, or nil.
func smapsEntryOf(smaps []byte, prefix string) []string {
	var (
		lines []string
		in    bool
	)
	sc := bufio.NewScanner(bytes.NewReader(smaps))
	for sc.Scan() {
		line := sc.Text()
		header := !strings.Contains(strings.Fields(line + " x")[0], ":")
		switch {
		case header && in:
			return lines
		case header && strings.HasPrefix(line, prefix):
			in = true
		}
		if in {
			lines = append(lines, line)
		}
	}
	return lines
}

// smapsKB returns the value of key in an entry's lines.
func smapsKB(entry []string, key string) string {
	for _, l := range entry {
		if v, ok := strings.CutPrefix(l, key+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// TestMemoryLive captures a process with a known 20 MiB anonymous
// mapping and one with 30000 mappings on the real kernel: the first
// mapping is in smaps with its size and is the analyzer's largest
// private-dirty mapping of its pid; the second is captured within the
// default budget, or skipped with the reason under a small one; the
// module ends within its deadline either way.
func TestMemoryLive(t *testing.T) {
	cg := testutil.NewCgroup(t)
	anon, line := startHelper(t, cg, "memory-anon")
	startS, endS, _ := strings.Cut(line, "-")
	start, err1 := strconv.ParseUint(startS, 16, 64)
	end, err2 := strconv.ParseUint(endS, 16, 64)
	if err1 != nil || err2 != nil || end-start != memAnonSize {
		t.Fatalf("memory-anon said %q", line)
	}
	many, line := startHelper(t, cg, "memory-many")
	nmaps, err := strconv.Atoi(line)
	if err != nil {
		t.Fatalf("memory-many said %q", line)
	}
	tg, err := Resolve(DefaultPaths(), Spec{Cgroup: cg.Path}, os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	const deadline = 30 * time.Second
	cfg := DefaultConfig()

	t.Run("default-budget", func(t *testing.T) {
		began := time.Now()
		res, err := Capture(context.Background(), Options{
			Config: cfg, Target: tg, OutDir: t.TempDir(), Modules: []string{"memory", "procs"},
			ModuleTimeout: deadline, Trigger: bundle.Trigger{Kind: "manual"}, ToolVersion: "test",
		})
		if err != nil {
			t.Fatal(err)
		}
		took := time.Since(began)
		b, err := bundle.Open(res.Path)
		if err != nil {
			t.Fatal(err)
		}
		var mod bundle.ModuleResult
		for _, m := range b.Manifest.Modules {
			if m.Name == "memory" {
				mod = m
			}
		}
		if mod.Status != bundle.StatusOK || time.Duration(mod.DurationMS*float64(time.Millisecond)) >= deadline {
			t.Errorf("memory module = %+v, want ok within %v", mod, deadline)
		}
		smaps, ok := b.File(fmt.Sprintf("proc/%d/smaps", anon))
		if !ok {
			t.Fatalf("proc/%d/smaps missing", anon)
		}
		entry := smapsEntryOf(smaps, fmt.Sprintf("%08x-%08x rw-p 00000000 00:00 0", start, end))
		if entry == nil {
			t.Fatalf("smaps of %d has no entry for %x-%x", anon, start, end)
		}
		if got := smapsKB(entry, "Size"); got != "20480 kB" {
			t.Errorf("Size of the mapping = %q, want 20480 kB", got)
		}
		if got := smapsKB(entry, "Private_Dirty"); got != "20480 kB" {
			t.Errorf("Private_Dirty of the mapping = %q, want 20480 kB", got)
		}
		manySmaps, ok := b.File(fmt.Sprintf("proc/%d/smaps", many))
		if !ok {
			t.Fatalf("smaps of the %d-mapping process not captured within the default budget (%v)", nmaps, mod.Errors)
		}
		if n := bytes.Count(manySmaps, []byte("\nVmFlags:")); n < nmaps {
			t.Errorf("smaps of %d has %d mappings, want at least %d", many, n, nmaps)
		}
		t.Logf("capture of %d + %d mappings: memory module %.1f ms (whole capture %v), smaps %.1f MB",
			len(smapsHeaders(b, anon)), nmaps, mod.DurationMS, took.Round(time.Millisecond), float64(len(manySmaps))/1e6)

		r, err := analyze.Load(b)
		if err != nil {
			t.Fatal(err)
		}
		if r.Memory == nil {
			t.Fatal("no memory section")
		}
		var proc *analyze.MemoryProcess
		for i := range r.Memory.Processes {
			if r.Memory.Processes[i].Pid == anon {
				proc = &r.Memory.Processes[i]
			}
		}
		if proc == nil || len(proc.Largest) == 0 {
			t.Fatalf("analyzer has no mappings for pid %d: %+v", anon, proc)
		}
		top := proc.Largest[0]
		if top.Start != fmt.Sprintf("%08x", start) || top.End != fmt.Sprintf("%08x", end) || top.Kind != "anon" ||
			top.SizeBytes != memAnonSize || top.PrivateDirtyBytes != memAnonSize {
			t.Errorf("largest private-dirty mapping of %d = %+v, want anon %x-%x of 20 MiB", anon, top, start, end)
		}
	})

	t.Run("small-budget", func(t *testing.T) {
		small := cfg
		small.MemoryBudget = 4 << 20
		out := newMemAdder()
		rep := Run(context.Background(), tg, out, RunOptions{Modules: []string{"memory"}, Config: &small, ModuleTimeout: deadline})
		m := rep.Modules[0]
		if m.Status != bundle.StatusPartial || strings.Contains(m.Reason, "stopped early") {
			t.Fatalf("module = %+v, want partial for the budget, not the deadline", m)
		}
		if _, ok := out.files[fmt.Sprintf("proc/%d/smaps", many)]; ok {
			t.Errorf("smaps of %d (%d mappings) captured within 4 MiB", many, nmaps)
		}
		if _, ok := out.files[fmt.Sprintf("proc/%d/smaps_rollup", many)]; !ok {
			t.Errorf("smaps_rollup of %d not kept", many)
		}
		if _, ok := out.files[fmt.Sprintf("proc/%d/smaps", anon)]; !ok {
			t.Errorf("smaps of %d, which fits, missing", anon)
		}
		want := fmt.Sprintf("smaps of pid %d is about ", many)
		if !slices.ContainsFunc(m.Errors, func(e string) bool {
			return strings.Contains(e, want) && strings.Contains(e, "raise --memory-budget")
		}) {
			t.Errorf("errors = %q, want one with %q naming --memory-budget", m.Errors, want)
		}
	})
}

// smapsHeaders lists the mapping headers of pid's smaps in b.
func smapsHeaders(b *bundle.Bundle, pid int) []string {
	smaps, _ := b.File(fmt.Sprintf("proc/%d/smaps", pid))
	var out []string
	for line := range strings.Lines(string(smaps)) {
		if f := strings.Fields(line); len(f) > 0 && !strings.HasSuffix(f[0], ":") {
			out = append(out, f[0])
		}
	}
	return out
}

// startMemoryHelper is startHelper for a benchmark.
func startMemoryHelper(b *testing.B, c *testutil.Cgroup, mode string) int {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "DASHCAM_TEST_HELPER="+mode)
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	testutil.StartIn(b, c, cmd)
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.HasPrefix(line, "error") {
		b.Fatalf("helper %s: %q %v", mode, line, err)
	}
	return cmd.Process.Pid
}

// BenchmarkMemory measures, on the live kernel, smaps_rollup of an
// ordinary process and smaps_rollup, smaps and the whole module for a
// process with DASHCAM_TEST_MAPPINGS mappings (default 30000; more needs
// a higher vm.max_map_count).
func BenchmarkMemory(b *testing.B) {
	cg := testutil.NewCgroup(b)
	small := startMemoryHelper(b, cg, "memory-anon")
	many := startMemoryHelper(b, cg, "memory-many")
	// read reads a file as the module does, with its size hint for smaps.
	read := func(b *testing.B, pid int, name string) {
		path := fmt.Sprintf("/proc/%d/%s", pid, name)
		var hint int64
		if name == "smaps" {
			maps, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
			if err != nil {
				b.Fatal(err)
			}
			hint = int64(len(maps)) + int64(bytes.Count(maps, []byte("\n")))*smapsMinBytesPerMapping
		}
		var n int
		for b.Loop() {
			data, err := readBounded(context.Background(), path, 1<<30, hint)
			if err != nil {
				b.Fatal(err)
			}
			n = len(data)
		}
		b.ReportMetric(float64(n), "bytes")
	}
	b.Run("statm-ordinary", func(b *testing.B) { read(b, small, "statm") })
	b.Run("rollup-ordinary", func(b *testing.B) { read(b, small, "smaps_rollup") })
	b.Run("rollup-many", func(b *testing.B) { read(b, many, "smaps_rollup") })
	b.Run("maps-many", func(b *testing.B) { read(b, many, "maps") })
	b.Run("smaps-many", func(b *testing.B) { read(b, many, "smaps") })
	b.Run("module", func(b *testing.B) {
		cfg := DefaultConfig()
		cfg.MemoryBudget = 1 << 30
		tg := &Target{Spec: Spec{Pids: []int{small, many}}, Pids: []int{small, many}}
		for b.Loop() {
			rep := Run(context.Background(), tg, newMemAdder(), RunOptions{Modules: []string{"memory"}, Config: &cfg})
			if rep.Modules[0].Status != bundle.StatusOK {
				b.Fatalf("%+v", rep.Modules[0])
			}
		}
	})
}
