package analyze

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

func init() {
	registerSection(section{name: "memory", order: 30, load: loadMemory, text: memoryText, markdown: memoryMarkdown})
}

// MemorySection is where the target's memory is, from the memory
// module's files: proc/<pid>/smaps_rollup and statm of every process, and
// proc/<pid>/smaps (and maps) of the largest ones.
type MemorySection struct {
	// Processes are those with smaps_rollup, smaps or statm, largest RSS
	// first.
	Processes []MemoryProcess `json:"processes"`
	// Total sums the processes.
	Total MemoryTotal `json:"total"`
}

// MemoryProcess is the memory of one process, in bytes. A field is nil
// when the bundle does not say.
type MemoryProcess struct {
	Pid  int    `json:"pid"`
	Comm string `json:"comm"` // "" when stat is absent
	// RSS comes from smaps_rollup, else smaps, else statm (resident pages
	// × host.page_size); the other fields need smaps_rollup or smaps.
	RSSBytes *uint64 `json:"rss_bytes"`
	PSSBytes *uint64 `json:"pss_bytes"`
	// AnonBytes is "Anonymous": resident pages that belong to no file.
	AnonBytes         *uint64 `json:"anon_bytes"`
	PrivateDirtyBytes *uint64 `json:"private_dirty_bytes"`
	SwapBytes         *uint64 `json:"swap_bytes"`
	// The PSS split exists in smaps_rollup only, since Linux 5.3.
	PSSAnonBytes  *uint64 `json:"pss_anon_bytes"`
	PSSFileBytes  *uint64 `json:"pss_file_bytes"`
	PSSShmemBytes *uint64 `json:"pss_shmem_bytes"`
	// Mappings counts the process's mappings, from smaps or else maps;
	// nil when neither was captured (only the largest processes get them).
	Mappings *int `json:"mappings"`
	// ByKind and Largest need smaps; they are nil without it.
	ByKind  []MappingKind `json:"by_kind"`
	Largest []Mapping     `json:"largest"`
}

// MappingKind sums the mappings of one kind.
type MappingKind struct {
	Kind              string `json:"kind"`
	Mappings          int    `json:"mappings"`
	SizeBytes         uint64 `json:"size_bytes"`
	RSSBytes          uint64 `json:"rss_bytes"`
	PrivateDirtyBytes uint64 `json:"private_dirty_bytes"`
	SwapBytes         uint64 `json:"swap_bytes"`
}

// Mapping is one mapping of smaps.
type Mapping struct {
	// Start and End are the addresses as smaps writes them (hex).
	Start string `json:"start"`
	End   string `json:"end"`
	Perms string `json:"perms"`
	// Kind is heap, stack, anon, file, shm, memfd or special; see
	// mappingKind.
	Kind              string `json:"kind"`
	Path              string `json:"path"`
	SizeBytes         uint64 `json:"size_bytes"`
	RSSBytes          uint64 `json:"rss_bytes"`
	PSSBytes          uint64 `json:"pss_bytes"`
	PrivateDirtyBytes uint64 `json:"private_dirty_bytes"`
	SwapBytes         uint64 `json:"swap_bytes"`
}

// MemoryTotal sums the processes that have smaps_rollup or smaps.
type MemoryTotal struct {
	Processes int `json:"processes"`
	// RSS, anon and file count a page shared by several processes once
	// in each: file is RSS − Anonymous (file-backed and shmem pages).
	RSSBytes  uint64 `json:"rss_bytes"`
	AnonBytes uint64 `json:"anon_bytes"`
	FileBytes uint64 `json:"file_bytes"`
	// PSS divides shared pages among their processes: it adds up.
	PSSBytes uint64 `json:"pss_bytes"`
	// The PSS split is nil unless every process has it (Linux 5.3).
	PSSAnonBytes  *uint64 `json:"pss_anon_bytes"`
	PSSFileBytes  *uint64 `json:"pss_file_bytes"`
	PSSShmemBytes *uint64 `json:"pss_shmem_bytes"`
	SwapBytes     uint64  `json:"swap_bytes"`
}

const (
	// memLargestJSON is how many mappings Largest keeps, by private dirty;
	// the text and Markdown show the first memLargestText.
	memLargestJSON = 10
	memLargestText = 5
)

// memoryFiles are the files of the memory module that make the section.
var memoryFiles = []string{"smaps_rollup", "smaps", "statm"}

func loadMemory(a *analyzer) {
	pids := map[int]bool{}
	for _, name := range a.b.Names() {
		rest, ok := strings.CutPrefix(name, "proc/")
		if !ok {
			continue
		}
		pid, file, ok := strings.Cut(rest, "/")
		if n, err := strconv.Atoi(pid); ok && err == nil && slices.Contains(memoryFiles, file) {
			pids[n] = true
		}
	}
	if len(pids) == 0 {
		return
	}
	sec := &MemorySection{Processes: []MemoryProcess{}}
	for _, pid := range slices.Sorted(maps.Keys(pids)) {
		if p, ok := a.memoryProcess(pid); ok {
			sec.Processes = append(sec.Processes, p)
		}
	}
	slices.SortStableFunc(sec.Processes, func(x, y MemoryProcess) int {
		return cmp.Or(cmp.Compare(deref(y.RSSBytes), deref(x.RSSBytes)), cmp.Compare(x.Pid, y.Pid))
	})
	sec.Total = memoryTotal(sec.Processes)
	a.r.Memory = sec
}

// memoryProcess reads the memory files of pid; false when none is usable.
func (a *analyzer) memoryProcess(pid int) (MemoryProcess, bool) {
	dir := "proc/" + strconv.Itoa(pid) + "/"
	p := MemoryProcess{Pid: pid}
	proc, err := a.fs.Proc(pid)
	if err != nil {
		return p, false
	}
	if st, err := parse(proc.Stat); err == nil {
		p.Comm = st.Comm
	}
	ok := false
	if data, found := a.b.File(dir + "smaps_rollup"); found {
		err := parseSmaps(bytes.NewReader(data), func(e smapsEntry) error {
			p.setRollup(e)
			ok = true
			return nil
		})
		if err != nil {
			a.problem(dir+"smaps_rollup", err)
		}
	}
	if data, found := a.b.File(dir + "smaps"); found {
		if err := p.setSmaps(data, !ok); err != nil {
			a.problem(dir+"smaps", err)
		} else {
			ok = true
		}
	}
	if p.Mappings == nil {
		if _, found := a.b.File(dir + "maps"); found {
			// procfs parses maps; only the count is of use here.
			if m, err := parse(proc.ProcMaps); err != nil {
				a.problem(dir+"maps", err)
			} else {
				n := len(m)
				p.Mappings = &n
			}
		}
	}
	if p.RSSBytes == nil {
		if data, found := a.b.File(dir + "statm"); found {
			if pages, err := parseStatmResident(data); err != nil {
				a.problem(dir+"statm", err)
			} else if ps := a.r.Host.PageSize; ps != nil && pages > 0 {
				// Zombies and kernel threads have no memory (statm
				// all 0, smaps_rollup refused): they are left out.
				b := pages * uint64(*ps)
				p.RSSBytes = &b
				ok = true
			}
		}
	}
	return p, ok
}

// setRollup fills p from the one entry of smaps_rollup.
func (p *MemoryProcess) setRollup(e smapsEntry) {
	p.RSSBytes = e.get(smapsRss)
	p.PSSBytes = e.get(smapsPss)
	p.AnonBytes = e.get(smapsAnonymous)
	p.PrivateDirtyBytes = e.get(smapsPrivateDirty)
	p.SwapBytes = e.get(smapsSwap)
	p.PSSAnonBytes = e.get(smapsPssAnon)
	p.PSSFileBytes = e.get(smapsPssFile)
	p.PSSShmemBytes = e.get(smapsPssShmem)
}

// setSmaps fills the mapping fields of p from smaps, and the totals too
// when rollup is set (smaps_rollup absent: Linux before 4.14).
func (p *MemoryProcess) setSmaps(data []byte, rollup bool) error {
	var (
		sum    smapsEntry
		kinds  = map[string]*MappingKind{}
		all    []Mapping
		nmaps  int
		sumOne = func(f smapsField, e smapsEntry) {
			if v := e.get(f); v != nil {
				sum.v[f] += *v
				sum.has[f] = true
			}
		}
	)
	err := parseSmaps(bytes.NewReader(data), func(e smapsEntry) error {
		nmaps++
		for _, f := range []smapsField{smapsRss, smapsPss, smapsAnonymous, smapsPrivateDirty, smapsSwap} {
			sumOne(f, e)
		}
		m := Mapping{
			Start: e.start, End: e.end, Perms: e.perms, Kind: mappingKind(e.path, e.perms), Path: e.path,
			SizeBytes: deref(e.get(smapsSize)), RSSBytes: deref(e.get(smapsRss)), PSSBytes: deref(e.get(smapsPss)),
			PrivateDirtyBytes: deref(e.get(smapsPrivateDirty)), SwapBytes: deref(e.get(smapsSwap)),
		}
		k := kinds[m.Kind]
		if k == nil {
			k = &MappingKind{Kind: m.Kind}
			kinds[m.Kind] = k
		}
		k.Mappings++
		k.SizeBytes += m.SizeBytes
		k.RSSBytes += m.RSSBytes
		k.PrivateDirtyBytes += m.PrivateDirtyBytes
		k.SwapBytes += m.SwapBytes
		// Keep only what may be among the largest: a mapping with
		// nothing resident or swapped out cannot have grown.
		if m.PrivateDirtyBytes > 0 || m.RSSBytes > 0 || m.SwapBytes > 0 {
			all = append(all, m)
			if len(all) > 4*memLargestJSON {
				all = largestMappings(all)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	p.Mappings = &nmaps
	p.Largest = append([]Mapping{}, largestMappings(all)...)
	p.ByKind = []MappingKind{}
	for _, k := range kinds {
		p.ByKind = append(p.ByKind, *k)
	}
	slices.SortFunc(p.ByKind, func(x, y MappingKind) int {
		return cmp.Or(cmp.Compare(y.PrivateDirtyBytes, x.PrivateDirtyBytes), cmp.Compare(y.RSSBytes, x.RSSBytes),
			cmp.Compare(x.Kind, y.Kind))
	})
	if rollup {
		p.RSSBytes, p.PSSBytes, p.AnonBytes = sum.get(smapsRss), sum.get(smapsPss), sum.get(smapsAnonymous)
		p.PrivateDirtyBytes, p.SwapBytes = sum.get(smapsPrivateDirty), sum.get(smapsSwap)
	}
	return nil
}

// largestMappings sorts by private dirty, then RSS, then swap, and keeps
// the first memLargestJSON. Ties go to the lower address, as in smaps.
func largestMappings(all []Mapping) []Mapping {
	slices.SortStableFunc(all, func(x, y Mapping) int {
		return cmp.Or(cmp.Compare(y.PrivateDirtyBytes, x.PrivateDirtyBytes), cmp.Compare(y.RSSBytes, x.RSSBytes),
			cmp.Compare(y.SwapBytes, x.SwapBytes))
	})
	return slices.Clip(all[:min(len(all), memLargestJSON)])
}

func memoryTotal(procs []MemoryProcess) MemoryTotal {
	var (
		t                      MemoryTotal
		pssAnon, pssFile, pssS uint64
		split                  = true
	)
	for _, p := range procs {
		if p.PSSBytes == nil {
			continue // statm only: RSS without its parts
		}
		t.Processes++
		t.RSSBytes += deref(p.RSSBytes)
		t.AnonBytes += deref(p.AnonBytes)
		t.FileBytes += deref(p.RSSBytes) - min(deref(p.AnonBytes), deref(p.RSSBytes))
		t.PSSBytes += deref(p.PSSBytes)
		t.SwapBytes += deref(p.SwapBytes)
		if p.PSSAnonBytes == nil || p.PSSFileBytes == nil || p.PSSShmemBytes == nil {
			split = false
			continue
		}
		pssAnon += *p.PSSAnonBytes
		pssFile += *p.PSSFileBytes
		pssS += *p.PSSShmemBytes
	}
	if split && t.Processes > 0 {
		t.PSSAnonBytes, t.PSSFileBytes, t.PSSShmemBytes = &pssAnon, &pssFile, &pssS
	}
	return t
}

// mappingKind classifies a mapping by the path smaps shows for it:
//
//	[heap], [stack]            the brk heap and the main thread's stack
//	                           ([stack:tid] before Linux 4.5)
//	""                         anonymous mmap (thread stacks, malloc arenas)
//	[anon:name]                anonymous, named by prctl (Linux 5.17)
//	[anon_shmem:name]          shared anonymous, named (Linux 6.2)
//	/memfd:name (deleted)      memfd_create
//	/dev/shm/…, /SYSV…         POSIX and System V shared memory
//	/dev/zero (deleted)        shared anonymous mmap (shmem)
//	[vdso], [vvar], [vsyscall] mapped by the kernel: "special"
//	any other path             a file
func mappingKind(path, perms string) string {
	switch {
	case path == "[heap]":
		return "heap"
	case path == "[stack]", strings.HasPrefix(path, "[stack:"):
		return "stack"
	case path == "", strings.HasPrefix(path, "[anon:"):
		return "anon"
	case strings.HasPrefix(path, "[anon_shmem:"), strings.HasPrefix(path, "/dev/shm/"),
		strings.HasPrefix(path, "/SYSV"), path == "/dev/zero (deleted)" && strings.Contains(perms, "s"):
		return "shm"
	case strings.HasPrefix(path, "/memfd:"):
		return "memfd"
	case strings.HasPrefix(path, "["):
		return "special"
	}
	return "file"
}

// smapsField names the smaps fields the section uses.
type smapsField int

const (
	smapsSize smapsField = iota
	smapsRss
	smapsPss
	smapsPssAnon
	smapsPssFile
	smapsPssShmem
	smapsPrivateDirty
	smapsAnonymous
	smapsSwap
	nSmapsFields
)

var smapsKeys = map[string]smapsField{
	"Size": smapsSize, "Rss": smapsRss, "Pss": smapsPss, "Pss_Anon": smapsPssAnon,
	"Pss_File": smapsPssFile, "Pss_Shmem": smapsPssShmem, "Private_Dirty": smapsPrivateDirty,
	"Anonymous": smapsAnonymous, "Swap": smapsSwap,
}

// smapsEntry is one mapping of smaps, or the one entry of smaps_rollup.
type smapsEntry struct {
	start, end, perms, path string
	v                       [nSmapsFields]uint64 // bytes
	has                     [nSmapsFields]bool
}

// get returns field f, or nil when the entry lacks it.
func (e *smapsEntry) get(f smapsField) *uint64 {
	if !e.has[f] {
		return nil
	}
	v := e.v[f]
	return &v
}

// errSmaps is wrapped by every parse error of smaps and smaps_rollup.
var errSmaps = errors.New("malformed smaps")

// parseSmaps reads /proc/<pid>/smaps or /proc/<pid>/smaps_rollup and calls
// fn with each entry, streaming (a process with 100k mappings has 72 MB
// of smaps). procfs parses smaps_rollup but keeps neither the mappings
// nor the Pss_Anon/Pss_File/Pss_Shmem split, and reads absent fields as 0.
// Each entry is a maps line, then "Key: value kB" lines; fields without
// kB (THPeligible, ProtectionKey) and VmFlags are skipped:
//
//	7f1a90e00000-7f1a93a00000 rw-p 00000000 00:00 0
//	Size:              45056 kB
//	KernelPageSize:        4 kB
//	Rss:               45056 kB
//	Pss:               45056 kB
//	Private_Dirty:     45056 kB
//	Anonymous:         45056 kB
//	THPeligible:           0
//	VmFlags: rd wr mr mw me ac
//	7f1a93a04000-7f1a93a44000 rw-s 00000000 00:01 26      /dev/zero (deleted)
//
// smaps_rollup has one entry, named [rollup], spanning all mappings:
//
//	559811033000-7ffd3d502000 ---p 00000000 00:00 0      [rollup]
//	Rss:               56752 kB
//	Pss_Anon:          51332 kB
func parseSmaps(r io.Reader, fn func(smapsEntry) error) error {
	var (
		sc   = bufio.NewScanner(r)
		cur  smapsEntry
		open bool
		line int
	)
	// A path is at most PATH_MAX (4096) bytes; leave room for the rest.
	sc.Buffer(make([]byte, 0, 8192), 16384)
	for sc.Scan() {
		line++
		text := sc.Text()
		if text == "" {
			continue
		}
		key, rest, _ := strings.Cut(text, " ")
		if k, ok := strings.CutSuffix(key, ":"); ok {
			if !open {
				return fmt.Errorf("%w: line %d: field before the first mapping", errSmaps, line)
			}
			f, known := smapsKeys[k]
			v, kb := strings.CutSuffix(strings.TrimSpace(rest), " kB")
			if !known || !kb {
				continue
			}
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil || n > 1<<53 {
				return fmt.Errorf("%w: line %d: %s: bad value %q", errSmaps, line, k, v)
			}
			cur.v[f], cur.has[f] = n<<10, true
			continue
		}
		if open {
			if err := fn(cur); err != nil {
				return err
			}
		}
		var err error
		if cur, err = parseMapsLine(text); err != nil {
			return fmt.Errorf("%w: line %d: %v", errSmaps, line, err)
		}
		open = true
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%w: line %d: %v", errSmaps, line+1, err)
	}
	if !open {
		return fmt.Errorf("%w: no mapping", errSmaps)
	}
	return fn(cur)
}

// parseMapsLine parses the header of an smaps entry, a line of maps:
//
//	start-end perms offset dev inode [path]
//
// The path starts after the padding that follows the inode; it may hold
// spaces and ends with " (deleted)" once the file is unlinked.
func parseMapsLine(s string) (smapsEntry, error) {
	var e smapsEntry
	rest := s
	var f [5]string
	for i := range f {
		rest = strings.TrimLeft(rest, " ")
		var ok bool
		if f[i], rest, ok = strings.Cut(rest, " "); !ok && i < 4 {
			return e, fmt.Errorf("not a mapping: %q", s)
		}
	}
	start, end, ok := strings.Cut(f[0], "-")
	if !ok || !isHex(start) || !isHex(end) || len(f[1]) != 4 {
		return e, fmt.Errorf("not a mapping: %q", s)
	}
	e.start, e.end, e.perms = start, end, f[1]
	e.path = strings.TrimLeft(rest, " ")
	return e, nil
}

func isHex(s string) bool {
	_, err := strconv.ParseUint(s, 16, 64)
	return err == nil
}

// parseStatmResident returns the resident pages of /proc/<pid>/statm:
//
//	size resident shared text lib data dt
//	14361 14188 1355 1 0 12871 0
func parseStatmResident(b []byte) (uint64, error) {
	f := strings.Fields(string(b))
	if len(f) != 7 {
		return 0, fmt.Errorf("malformed statm: %d fields, want 7", len(f))
	}
	n, err := strconv.ParseUint(f[1], 10, 64)
	// 2^40 pages are 4 PiB of 4 KiB pages: more is not a real process,
	// and the product with a page size must not overflow.
	if err != nil || n > 1<<40 {
		return 0, fmt.Errorf("malformed statm: resident %q", f[1])
	}
	return n, nil
}

func deref(p *uint64) uint64 {
	if p == nil {
		return 0
	}
	return *p
}

// memoryTotalLine sums up the target in one line.
func memoryTotalLine(t MemoryTotal) string {
	procs := "processes"
	if t.Processes == 1 {
		procs = "process"
	}
	s := fmt.Sprintf("%d %s: RSS %s (anon %s, file and shmem %s; shared pages counted in each process), PSS %s",
		t.Processes, procs, humanBytes(t.RSSBytes), humanBytes(t.AnonBytes), humanBytes(t.FileBytes), humanBytes(t.PSSBytes))
	if t.PSSAnonBytes != nil {
		s += fmt.Sprintf(" (anon %s, file %s, shmem %s)",
			humanBytes(*t.PSSAnonBytes), humanBytes(*t.PSSFileBytes), humanBytes(*t.PSSShmemBytes))
	}
	return s + ", swap " + humanBytes(t.SwapBytes)
}

// byKindLine lists the kinds of a process's mappings, most private dirty first.
func byKindLine(kinds []MappingKind) string {
	var s []string
	for _, k := range kinds {
		s = append(s, fmt.Sprintf("%s %s (%d)", k.Kind, humanBytes(k.PrivateDirtyBytes), k.Mappings))
	}
	return strings.Join(s, ", ")
}

func memoryText(tw *tabwriter.Writer, r *Report) {
	m := r.Memory
	if m == nil {
		return
	}
	heading(tw, "Memory (largest RSS first)", len(m.Processes))
	if len(m.Processes) == 0 {
		return
	}
	fmt.Fprintf(tw, "  target: %s\n", clean(memoryTotalLine(m.Total)))
	memRow(tw, "  PID", "COMM", "RSS", "PSS", "ANON", "PRIVATE DIRTY", "SWAP", "MAPPINGS")
	for _, p := range m.Processes[:min(topN, len(m.Processes))] {
		memRow(tw, "  "+strconv.Itoa(p.Pid), clean(p.Comm), bytesOr(p.RSSBytes), bytesOr(p.PSSBytes),
			bytesOr(p.AnonBytes), bytesOr(p.PrivateDirtyBytes), bytesOr(p.SwapBytes), intOr(p.Mappings))
	}
	if n := len(m.Processes) - topN; n > 0 {
		fmt.Fprintf(tw, "  … and %d more (--format json lists all)\n", n)
	}
	for _, p := range m.Processes {
		if p.Largest == nil {
			continue
		}
		fmt.Fprintf(tw, "\nLargest mappings by private dirty, pid %d (%s):\n", p.Pid, clean(p.Comm))
		fmt.Fprintf(tw, "  by kind (private dirty, mappings): %s\n", clean(byKindLine(p.ByKind)))
		if len(p.Largest) == 0 {
			continue
		}
		memRow(tw, "  KIND", "ADDRESS", "PERMS", "SIZE", "RSS", "PRIVATE DIRTY", "SWAP", "PATH")
		for _, mp := range p.Largest[:min(memLargestText, len(p.Largest))] {
			memRow(tw, "  "+mp.Kind, clean(mp.Start+"-"+mp.End), clean(mp.Perms), humanBytes(mp.SizeBytes),
				humanBytes(mp.RSSBytes), humanBytes(mp.PrivateDirtyBytes), humanBytes(mp.SwapBytes), clean(mp.Path))
		}
	}
}

// memRow writes one table row; a trailing empty cell (an anonymous
// mapping's path) would leave padding at the end of the line.
func memRow(tw io.Writer, cells ...string) {
	for len(cells) > 1 && cells[len(cells)-1] == "" {
		cells = cells[:len(cells)-1]
	}
	fmt.Fprintln(tw, strings.Join(cells, "\t"))
}

func memoryMarkdown(w io.Writer, r *Report) {
	m := r.Memory
	if m == nil {
		return
	}
	fmt.Fprintf(w, "\n## Memory\n\n")
	if len(m.Processes) == 0 {
		fmt.Fprintf(w, "None.\n")
		return
	}
	fmt.Fprintf(w, "Target: %s.\n\n", md(memoryTotalLine(m.Total)))
	fmt.Fprintf(w, "| PID | Comm | RSS | PSS | Anon | Private dirty | Swap | Mappings |\n|---|---|---|---|---|---|---|---|\n")
	for _, p := range m.Processes[:min(topN, len(m.Processes))] {
		fmt.Fprintf(w, "| %d | %s | %s | %s | %s | %s | %s | %s |\n", p.Pid, code(p.Comm), bytesOr(p.RSSBytes),
			bytesOr(p.PSSBytes), bytesOr(p.AnonBytes), bytesOr(p.PrivateDirtyBytes),
			bytesOr(p.SwapBytes), intOr(p.Mappings))
	}
	if n := len(m.Processes) - topN; n > 0 {
		fmt.Fprintf(w, "\n… and %d more (`--format json` lists all).\n", n)
	}
	for _, p := range m.Processes {
		if p.Largest == nil {
			continue
		}
		fmt.Fprintf(w, "\n### Largest mappings by private dirty, pid %d %s\n\n", p.Pid, code(p.Comm))
		fmt.Fprintf(w, "By kind (private dirty, mappings): %s.\n", md(byKindLine(p.ByKind)))
		if len(p.Largest) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n| Kind | Address | Perms | Size | RSS | Private dirty | Swap | Path |\n|---|---|---|---|---|---|---|---|\n")
		for _, mp := range p.Largest[:min(memLargestText, len(p.Largest))] {
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", mp.Kind, code(mp.Start+"-"+mp.End),
				code(mp.Perms), humanBytes(mp.SizeBytes), humanBytes(mp.RSSBytes),
				humanBytes(mp.PrivateDirtyBytes), humanBytes(mp.SwapBytes), code(mp.Path))
		}
	}
}
