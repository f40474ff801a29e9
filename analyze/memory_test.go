package analyze

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"

	"github.com/dashcam-dev/dashcam/bundle"
)

// memoryFixtureFiles reads, from the shared fixture tree, what the memory
// module captures of the payment service with --memory-top 2: stat,
// statm and smaps_rollup of each process, full files of the two largest
// (100 and 104), and, as if 102's smaps had not fit the budget, its maps.
// The samples are real (Linux 6.18, x86-64, 4 KiB pages); 103 is a
// zombie: statm all 0, no smaps_rollup.
func memoryFixtureFiles(t *testing.T) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	add := func(pid int, names ...string) {
		for _, name := range names {
			b, err := os.ReadFile(filepath.Join("..", "testdata", "fixtures", "proc", strconv.Itoa(pid), name))
			if err != nil {
				t.Fatal(err)
			}
			files["proc/"+strconv.Itoa(pid)+"/"+name] = b
		}
	}
	for _, pid := range []int{100, 102, 104, 105} {
		add(pid, "stat", "statm", "smaps_rollup")
	}
	add(103, "stat", "statm")
	add(100, "maps", "smaps", "numa_maps")
	add(104, "maps", "smaps", "numa_maps")
	add(102, "maps")
	return files
}

func memoryManifest() *bundle.Manifest {
	m := fixtureManifest()
	m.Host.PageSize = 4096
	return m
}

func kib(n uint64) *uint64 { n <<= 10; return &n }

func eq(p *uint64, want *uint64) bool {
	return (p == nil) == (want == nil) && (p == nil || *p == *want)
}

func TestMemorySection(t *testing.T) {
	r := load(t, bundle.New(memoryManifest(), memoryFixtureFiles(t)))
	m := r.Memory
	if m == nil {
		t.Fatal("no memory section")
	}
	var pids []int
	for _, p := range m.Processes {
		pids = append(pids, p.Pid)
	}
	// Largest RSS first; the zombie has no memory and is left out.
	if want := []int{100, 104, 102, 105}; !slices.Equal(pids, want) {
		t.Fatalf("processes = %v, want %v", pids, want)
	}
	p := m.Processes[0]
	for _, f := range []struct {
		name      string
		got, want *uint64
	}{
		{"rss", p.RSSBytes, kib(56752)}, {"pss", p.PSSBytes, kib(55321)}, {"anon", p.AnonBytes, kib(51332)},
		{"private_dirty", p.PrivateDirtyBytes, kib(55172)}, {"swap", p.SwapBytes, kib(0)},
		{"pss_anon", p.PSSAnonBytes, kib(51332)}, {"pss_file", p.PSSFileBytes, kib(661)},
		{"pss_shmem", p.PSSShmemBytes, kib(3328)},
	} {
		if !eq(f.got, f.want) {
			t.Errorf("pid 100 %s = %v, want %d", f.name, f.got, *f.want)
		}
	}
	if p.Comm != "payment" || p.Mappings == nil || *p.Mappings != 29 {
		t.Errorf("pid 100: comm %q, mappings %v; want payment, 29", p.Comm, p.Mappings)
	}
	// The mapping that grew: the 44 MiB anonymous region, then the heap.
	want := []Mapping{
		{Start: "7f1a90e00000", End: "7f1a93a00000", Perms: "rw-p", Kind: "anon", SizeBytes: 45056 << 10,
			RSSBytes: 45056 << 10, PSSBytes: 45056 << 10, PrivateDirtyBytes: 45056 << 10},
		{Start: "5598334de000", End: "559833aed000", Perms: "rw-p", Kind: "heap", Path: "[heap]",
			SizeBytes: 6204 << 10, RSSBytes: 6176 << 10, PSSBytes: 6176 << 10, PrivateDirtyBytes: 6176 << 10},
	}
	if len(p.Largest) != memLargestJSON || !slices.Equal(p.Largest[:2], want) {
		t.Errorf("largest of 100 (%d):\n%+v\nwant first\n%+v", len(p.Largest), p.Largest[:min(2, len(p.Largest))], want)
	}
	kinds := map[string]MappingKind{}
	for _, k := range p.ByKind {
		kinds[k.Kind] = k
	}
	for kind, n := range map[string]int{"anon": 4, "heap": 1, "memfd": 1, "shm": 2, "file": 16, "stack": 1, "special": 4} {
		if kinds[kind].Mappings != n {
			t.Errorf("pid 100 kind %s: %d mappings, want %d (%+v)", kind, kinds[kind].Mappings, n, p.ByKind)
		}
	}
	if k := kinds["memfd"]; k.RSSBytes != 2<<20 {
		t.Errorf("memfd = %+v, want 2 MiB resident", k)
	}
	if p.ByKind[0].Kind != "anon" {
		t.Errorf("by kind starts with %s, want anon (most private dirty)", p.ByKind[0].Kind)
	}

	// 102: maps but no smaps (over the budget): a count, no mappings.
	p102 := m.Processes[2]
	if p102.Mappings == nil || *p102.Mappings != 24 || p102.Largest != nil || p102.ByKind != nil {
		t.Errorf("pid 102 = mappings %v, largest %v, by kind %v; want 24 from maps, nil, nil",
			p102.Mappings, p102.Largest, p102.ByKind)
	}
	if p105 := m.Processes[3]; p105.Mappings != nil || p105.Largest != nil {
		t.Errorf("pid 105 without maps or smaps: mappings %v, largest %v; want nil", p105.Mappings, p105.Largest)
	}

	tot := m.Total
	if tot.Processes != 4 || tot.RSSBytes != (56752+11648+4700+1520)<<10 ||
		tot.AnonBytes != (51332+10348+3184+100)<<10 || tot.RSSBytes-tot.AnonBytes != tot.FileBytes {
		t.Errorf("total = %+v", tot)
	}
	if tot.PSSAnonBytes == nil || *tot.PSSAnonBytes+*tot.PSSFileBytes+*tot.PSSShmemBytes != tot.PSSBytes {
		t.Errorf("total PSS split %v %v %v does not add up to %d", tot.PSSAnonBytes, tot.PSSFileBytes, tot.PSSShmemBytes, tot.PSSBytes)
	}
	if len(r.Problems) != 0 {
		t.Errorf("problems: %+v", r.Problems)
	}
}

// memorySectionOutput renders only the memory section.
func memorySectionOutput(t *testing.T, r *Report) (text, markdown string) {
	t.Helper()
	var tb, mb bytes.Buffer
	tw := tabwriter.NewWriter(&tb, 0, 0, 2, ' ', 0)
	memoryText(tw, r)
	tw.Flush()
	memoryMarkdown(&mb, r)
	return tb.String(), mb.String()
}

func TestMemoryGolden(t *testing.T) {
	r := load(t, bundle.New(memoryManifest(), memoryFixtureFiles(t)))
	text, markdown := memorySectionOutput(t, r)
	golden(t, "memory.txt.golden", []byte(text))
	golden(t, "memory.md.golden", []byte(markdown))
	var js bytes.Buffer
	if err := json.NewEncoder(&js).Encode(r.Memory); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"processes":`, `"rss_bytes":58114048`, `"pss_anon_bytes":`, `"by_kind":[{"kind":"anon"`,
		`"largest":[{"start":"7f1a90e00000","end":"7f1a93a00000","perms":"rw-p","kind":"anon","path":""`,
		`"mappings":24,"by_kind":null,"largest":null`, `"total":{"processes":4`} {
		if !strings.Contains(js.String(), key) {
			t.Errorf("JSON lacks %s:\n%s", key, js.String())
		}
	}
}

// A bundle without the memory module's files has no memory section.
func TestMemoryAbsent(t *testing.T) {
	r := load(t, fixtureBundle())
	if r.Memory != nil {
		t.Fatalf("memory section from a bundle without its files: %+v", r.Memory)
	}
	var js bytes.Buffer
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(js.String(), `"memory": `) {
		t.Error(`JSON has a "memory" key for a bundle without memory files`)
	}
	text, markdown := memorySectionOutput(t, r)
	if text != "" || markdown != "" {
		t.Errorf("absent section printed %q / %q", text, markdown)
	}
}

// Without smaps_rollup, RSS comes from statm with the manifest's page
// size (16 KiB here), and what statm cannot say stays unknown; with only
// smaps (Linux before 4.14), the totals are summed from its mappings.
func TestMemoryFallbacks(t *testing.T) {
	files := fixtureFiles()
	files["proc/120/statm"] = []byte("400000 300000 1000 10 0 290000 0\n")
	smaps, err := os.ReadFile(filepath.Join("..", "testdata", "fixtures", "proc", "104", "smaps"))
	if err != nil {
		t.Fatal(err)
	}
	files["proc/110/smaps"] = smaps
	r := load(t, bundle.New(fixtureManifest(), files))
	if r.Memory == nil || len(r.Memory.Processes) != 2 {
		t.Fatalf("memory = %+v, want 2 processes", r.Memory)
	}
	db := r.Memory.Processes[0]
	if db.Pid != 120 || !eq(db.RSSBytes, kib(300000*16)) || db.PSSBytes != nil || db.AnonBytes != nil || db.Mappings != nil {
		t.Errorf("statm only: %+v, want rss 300000 pages × 16 KiB and the rest unknown", db)
	}
	old := r.Memory.Processes[1]
	if old.Pid != 110 || !eq(old.RSSBytes, kib(11648)) || !eq(old.PrivateDirtyBytes, kib(10348)) || old.PSSAnonBytes != nil ||
		old.Mappings == nil || *old.Mappings != 24 || old.Largest[0].Kind != "anon" {
		t.Errorf("smaps only: %+v", old)
	}
	// The statm-only process is not in the totals: it has no PSS.
	if tot := r.Memory.Total; tot.Processes != 1 || tot.PSSAnonBytes != nil {
		t.Errorf("total = %+v, want 1 process, no PSS split", tot)
	}
	text, _ := memorySectionOutput(t, r)
	if !slices.ContainsFunc(strings.Split(text, "\n"), func(l string) bool {
		return strings.Join(strings.Fields(l), " ") == "120 db 4.58 GiB unknown unknown unknown unknown unknown"
	}) {
		t.Errorf("text does not print unknown for what statm cannot say:\n%s", text)
	}
}

func TestMappingKind(t *testing.T) {
	for _, tc := range []struct{ path, perms, want string }{
		{"[heap]", "rw-p", "heap"},
		{"[stack]", "rw-p", "stack"},
		{"[stack:1234]", "rw-p", "stack"},
		{"", "rw-p", "anon"},
		{"[anon:jemalloc]", "rw-p", "anon"},
		{"[anon_shmem:ring]", "rw-s", "shm"},
		{"/memfd:payment-cache (deleted)", "rw-s", "memfd"},
		{"/dev/shm/payment-ring", "rw-s", "shm"},
		{"/SYSV00000000 (deleted)", "rw-s", "shm"},
		{"/dev/zero (deleted)", "rw-s", "shm"},
		{"[vdso]", "r-xp", "special"},
		{"[vsyscall]", "--xp", "special"},
		{"/usr/lib/x86_64-linux-gnu/libc.so.6", "r-xp", "file"},
		{"/var/lib/my data/file (deleted)", "r--p", "file"},
	} {
		if got := mappingKind(tc.path, tc.perms); got != tc.want {
			t.Errorf("mappingKind(%q, %q) = %s, want %s", tc.path, tc.perms, got, tc.want)
		}
	}
}

func TestParseSmaps(t *testing.T) {
	const good = "7f00-7f10 rw-p 00000000 00:00 0 \nSize:  64 kB\nRss:   8 kB\nTHPeligible:  0\nVmFlags: rd wr \n" +
		"7f10-7f20 r--p 00001000 fe:00 42                       /opt/my app/lib.so (deleted)\nSize: 4 kB\n"
	var got []smapsEntry
	if err := parseSmaps(strings.NewReader(good), func(e smapsEntry) error { got = append(got, e); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].path != "" || *got[0].get(smapsSize) != 64<<10 || *got[0].get(smapsRss) != 8<<10 ||
		got[0].get(smapsSwap) != nil || got[1].path != "/opt/my app/lib.so (deleted)" || got[1].start != "7f10" {
		t.Errorf("parsed %+v", got)
	}
	for _, bad := range []string{
		"",
		"Rss: 4 kB\n",
		"7f00-7f10 rw-p 00000000 00:00 0\nRss: lots kB\n",
		"7f00-7f10 rw-p 00000000 00:00 0\nRss: 99999999999999999999 kB\n",
		"zz-7f10 rw-p 00000000 00:00 0\n",
		"7f00-7f10 rw-p\n",
		"7f00-7f10 rw-p 00000000 00:00 0\n" + strings.Repeat("x", 20000) + "\n",
	} {
		if err := parseSmaps(strings.NewReader(bad), func(smapsEntry) error { return nil }); !errors.Is(err, errSmaps) {
			t.Errorf("parseSmaps(%.40q) = %v, want errSmaps", bad, err)
		}
	}
}

// Malformed memory files become problems, not panics or zeros.
func TestMemoryMalformed(t *testing.T) {
	files := memoryFixtureFiles(t)
	files["proc/100/smaps_rollup"] = []byte("Rss: 12 kB\n")
	files["proc/104/smaps"] = []byte("\x00\x01garbage\n")
	files["proc/105/statm"] = []byte("1 2\n")
	delete(files, "proc/105/smaps_rollup")
	r := load(t, bundle.New(memoryManifest(), files))
	var paths []string
	for _, p := range r.Problems {
		paths = append(paths, p.Path)
	}
	slices.Sort(paths)
	if want := []string{"proc/100/smaps_rollup", "proc/104/smaps", "proc/105/statm"}; !slices.Equal(paths, want) {
		t.Errorf("problems = %+v, want %v", r.Problems, want)
	}
	for _, p := range r.Memory.Processes {
		if p.Pid == 105 {
			t.Errorf("pid 105 listed from a malformed statm: %+v", p)
		}
		// smaps stands in for a malformed smaps_rollup, without the
		// PSS split that only smaps_rollup has.
		if p.Pid == 100 && (p.PSSAnonBytes != nil || !eq(p.RSSBytes, kib(56752))) {
			t.Errorf("pid 100 with a malformed smaps_rollup: %+v", p)
		}
	}
}
