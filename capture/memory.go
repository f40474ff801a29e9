package capture

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/dashcam-dev/dashcam/bundle"
)

func init() {
	register("memory", true, func(c *Config) Module {
		return &memory{paths: c.Paths, top: c.MemoryTop, budget: c.MemoryBudget}
	})
}

// memory copies where each target process's memory is: smaps_rollup and
// statm of every process, and the full smaps, maps and numa_maps of the
// top processes by RSS, which name the mapping that grew.
//
// smaps_rollup is one entry whatever the number of mappings, but the
// kernel walks the page tables to sum it: on Linux 6.18 (x86-64) it takes
// ~20 µs for a small process, ~0.2 ms with 20 MiB resident, ~0.7 ms with
// 200 MiB. Full files cost in proportion to the mappings: smaps is ~720
// bytes and ~1.7 µs per mapping, so a process with 100k mappings has 72
// MB of smaps that take 170 ms or more to read. They are bounded by count
// (top) and bytes (budget); a process that does not fit is skipped whole,
// never truncated (half an smaps misleads), and the reason names the
// flags to change.
type memory struct {
	paths  Paths
	top    int   // Config.MemoryTop
	budget int64 // Config.MemoryBudget
}

// memorySmallFiles are copied for every process.
var memorySmallFiles = []string{"statm", "smaps_rollup"}

// smapsMinBytesPerMapping is a lower bound of the size of one mapping in
// smaps beyond its maps line: 20 lines of at least 28 bytes ("Rss:" and
// the value padded to 8 digits, " kB"). Linux 4.14 writes 19 such lines
// and VmFlags; 6.18 writes 22, THPeligible and VmFlags. maps gives the
// count of mappings, so an smaps that cannot fit is skipped without
// reading it; the bounded read catches an underestimate.
const smapsMinBytesPerMapping = 20 * 28

// memoryReadChunk is the size of one read() of a full file. The kernel
// may hold the process's mmap lock for a whole read() of smaps, so a
// chunk is kept small (~90 mappings) not to stall the process's faults.
const memoryReadChunk = 64 << 10

// errOverBudget means a file did not fit in the bytes left.
var errOverBudget = errors.New("larger than the memory budget left")

func (m *memory) Run(ctx context.Context, t *Target, s *Sink) error {
	var ranked []memProc
	for _, pid := range t.Pids {
		if err := ctx.Err(); err != nil {
			return err
		}
		if p, ok := m.small(pid, s); ok {
			ranked = append(ranked, p)
		}
	}
	// Largest RSS first; kernel threads and zombies (no mm: RSS 0,
	// smaps_rollup fails with ESRCH) have nothing to map.
	ranked = slices.DeleteFunc(ranked, func(p memProc) bool { return p.rss == 0 })
	slices.SortStableFunc(ranked, func(a, b memProc) int {
		return cmp.Or(cmp.Compare(b.rss, a.rss), cmp.Compare(a.pid, b.pid))
	})
	left := m.budget
	for _, p := range ranked[:min(max(m.top, 0), len(ranked))] {
		if err := ctx.Err(); err != nil {
			return err
		}
		var err error
		if left, err = m.full(ctx, p, left, s); err != nil {
			return err
		}
	}
	return nil
}

// memProc is a process ranked for full files.
type memProc struct {
	pid int
	rss uint64 // bytes
}

// small copies statm and smaps_rollup of pid and returns its RSS. It
// returns false when the process is gone or has no memory to show.
func (m *memory) small(pid int, s *Sink) (memProc, bool) {
	var (
		dir    = filepath.Join(m.paths.Proc, strconv.Itoa(pid))
		member = "proc/" + strconv.Itoa(pid) + "/"
		p      = memProc{pid: pid}
		found  bool
	)
	for _, name := range memorySmallFiles {
		data, err := s.Copy(member+name, filepath.Join(dir, name))
		if err != nil {
			if isGone(err) && !exists(dir) {
				s.Vanished(pid)
				return p, false
			}
			// ESRCH from smaps_rollup of a live pid: a zombie or kernel
			// thread, which has no mm; nothing to capture.
			continue
		}
		found = true
		// smaps_rollup's Rss is exact; statm's resident pages are the
		// fallback (smaps_rollup needs Linux 4.14).
		switch name {
		case "statm":
			if pages, ok := statmResident(data); ok {
				p.rss = pages * uint64(os.Getpagesize())
			}
		case "smaps_rollup":
			if kb, ok := smapsField(data, "Rss:"); ok {
				p.rss = kb << 10
			}
		}
	}
	return p, found
}

// full copies maps, smaps and numa_maps of p within left bytes, in that
// order, and returns the bytes left. The first file that does not fit
// ends the process's full files, with one problem naming the flags. A
// process that vanished is ordinary; a file missing from a live process
// is a kernel option (numa_maps needs CONFIG_NUMA) and stays absent. Only
// ctx's error is returned.
func (m *memory) full(ctx context.Context, p memProc, left int64, s *Sink) (int64, error) {
	var (
		dir    = filepath.Join(m.paths.Proc, strconv.Itoa(p.pid))
		member = "proc/" + strconv.Itoa(p.pid) + "/"
		// want is a lower bound of the next file's size, when known.
		want int64
	)
	names := []string{"maps", "smaps", "numa_maps"}
	for i, name := range names {
		if err := ctx.Err(); err != nil {
			return left, err
		}
		var (
			// The user's budget is the bound here, not kfile.MaxBytes:
			// 100k mappings make 72 MB of smaps.
			limit = min(left, bundle.DefaultLimits.MaxMemberBytes)
			data  []byte
			err   = errOverBudget
		)
		if want <= limit && limit > 0 {
			data, err = readBounded(ctx, filepath.Join(dir, name), limit, want)
		}
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return left, ctx.Err()
		case errors.Is(err, errOverBudget):
			size := "larger than"
			if want > limit {
				size = "about " + humanSize(want) + ", more than"
			}
			s.Truncated("%s%s not copied: %s of pid %d is %s the %s left of --memory-budget (%s); "+
				"smaps_rollup kept; raise --memory-budget or lower --memory-top",
				member, strings.Join(names[i:], " and "), name, p.pid, size, humanSize(limit), humanSize(m.budget))
			return left, nil
		case isGone(err) && !exists(dir):
			s.Vanished(p.pid)
			return left, nil
		default:
			s.fileError(member+name, err)
			continue
		}
		if err := s.Add(member+name, data); err != nil {
			return left, nil // the module's deadline passed
		}
		left -= int64(len(data))
		if name == "maps" {
			// One line per mapping; smaps has those lines and at
			// least 20 more for each.
			want = int64(len(data)) + int64(bytes.Count(data, []byte("\n")))*smapsMinBytesPerMapping
		} else {
			want = 0
		}
	}
	return left, nil
}

// readBounded reads a kernel file to EOF, checking ctx between reads, and
// fails with errOverBudget as soon as it passes limit bytes: nothing is
// returned then, since a cut smaps would look complete. hint is the
// expected size, to allocate once.
func readBounded(ctx context.Context, path string, limit, hint int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, 0, min(hint+hint/4, limit)+memoryReadChunk)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		buf = slices.Grow(buf, memoryReadChunk)
		n, err := f.Read(buf[len(buf) : len(buf)+memoryReadChunk])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			return nil, fmt.Errorf("%s: %w", path, errOverBudget)
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// statmResident returns the second field of /proc/<pid>/statm, the
// resident set in pages:
//
//	size resident shared text lib data dt
//	14361 14188 1355 1 0 12871 0
func statmResident(b []byte) (uint64, bool) {
	f := bytes.Fields(b)
	if len(f) < 2 {
		return 0, false
	}
	n, err := strconv.ParseUint(string(f[1]), 10, 64)
	return n, err == nil
}

// smapsField returns the value in kB of the first line starting with key
// in an smaps_rollup (or smaps) file:
//
//	559811033000-7ffd3d502000 ---p 00000000 00:00 0    [rollup]
//	Rss:               56752 kB
//	Pss:               55323 kB
func smapsField(b []byte, key string) (uint64, bool) {
	for line := range bytes.Lines(b) {
		if v, ok := bytes.CutPrefix(line, []byte(key)); ok {
			v = bytes.TrimSuffix(bytes.TrimSpace(v), []byte(" kB"))
			n, err := strconv.ParseUint(string(v), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

// humanSize formats n bytes for a reason a human reads.
func humanSize(n int64) string {
	switch {
	case n < 1<<10:
		return strconv.FormatInt(max(n, 0), 10) + " B"
	case n < 1<<20:
		return strconv.FormatFloat(float64(n)/(1<<10), 'f', 1, 64) + " KiB"
	}
	return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MiB"
}
