package trigger

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/dashcam-dev/dashcam/internal/cpulist"
	"github.com/dashcam-dev/dashcam/internal/kfile"

	"github.com/dashcam-dev/dashcam/capture"
)

// Group is the live cgroup a watcher reads: the target's directory in
// each hierarchy that holds a counter we need. On a hybrid host the CPU
// and memory controllers are v1 mounts while usage and pressure are in the
// unified tree; Group hides where each number comes from, and says so.
//
// Counters are read straight from their files rather than through
// containerd/cgroups' Stat, which reads every file of every controller:
// a watcher samples a handful of numbers every second, and that cost is
// the armed process's overhead.
type Group struct {
	paths capture.Paths
	// Path is the target cgroup, relative to each hierarchy root.
	Path string
	// dirs maps a controller ("unified", "cpu", "cpuacct", "memory",
	// "cpuset") to the target's directory and the hierarchy's root.
	dirs map[string]hierDir

	// mu guards absent and memo: watchers read through the group from
	// their own goroutines.
	mu sync.Mutex
	// absent are files that did not exist (a controller not enabled
	// here): not retried on every sample, only after forget.
	absent map[string]bool
	// memo, while a sample is taken, holds the files read for it, so
	// cpu.stat read for usage is not read again for throttling.
	memo map[string][]byte
}

type hierDir struct{ root, dir string }

// read reads a counter file through the group's caches.
func (g *Group) read(path string) ([]byte, error) {
	g.mu.Lock()
	if g.absent[path] {
		g.mu.Unlock()
		return nil, &os.PathError{Op: "open", Path: path, Err: syscall.ENOENT}
	}
	if b, ok := g.memo[path]; ok {
		g.mu.Unlock()
		return b, nil
	}
	g.mu.Unlock()
	b, err := kfile.Read(path)
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if g.absent == nil {
			g.absent = map[string]bool{}
		}
		g.absent[path] = true
	case err == nil && g.memo != nil:
		g.memo[path] = b
	}
	return b, err
}

// beginSample starts memoizing reads; endSample stops. forget clears the
// record of absent files (controllers get enabled at run time).
func (g *Group) beginSample() { g.mu.Lock(); g.memo = map[string][]byte{}; g.mu.Unlock() }
func (g *Group) endSample()   { g.mu.Lock(); g.memo = nil; g.mu.Unlock() }
func (g *Group) forget()      { g.mu.Lock(); g.absent = nil; g.mu.Unlock() }

// ErrNoCounter means the cgroup does not expose a counter (no controller
// enabled for it, or no such hierarchy mounted).
var ErrNoCounter = errors.New("counter not available for this cgroup")

// NewGroup finds the target's cgroup directories. The target must be a
// cgroup, a unit or the whole host (its root cgroups).
func NewGroup(p capture.Paths, t *capture.Target) (*Group, error) {
	g := &Group{paths: p, dirs: map[string]hierDir{}}
	for _, c := range t.Cgroups {
		if g.Path == "" {
			g.Path = c.Path
		}
		if c.Path != g.Path {
			return nil, fmt.Errorf("target spans several cgroups (%s and %s); arm on one cgroup or unit", g.Path, c.Path)
		}
		root := c.Dir // c.Dir is the hierarchy root joined with c.Path
		if c.Path != "/" {
			root = strings.TrimSuffix(c.Dir, filepath.FromSlash(c.Path))
		}
		// "cpu,cpuacct" serves both controllers.
		for _, ctl := range strings.Split(c.Hierarchy, ",") {
			g.dirs[ctl] = hierDir{root: root, dir: c.Dir}
		}
	}
	if len(g.dirs) == 0 {
		return nil, fmt.Errorf("target has no cgroup to watch")
	}
	return g, nil
}

// file returns the path of name in controller ctl's directory.
func (g *Group) file(ctl, name string) (string, bool) {
	d, ok := g.dirs[ctl]
	if !ok {
		return "", false
	}
	return filepath.Join(d.dir, name), true
}

// ancestors returns the directories from the target up to the root of
// controller ctl's hierarchy, target first.
func (g *Group) ancestors(ctl string) []string {
	d, ok := g.dirs[ctl]
	if !ok {
		return nil
	}
	var dirs []string
	for p := g.Path; ; p = path.Dir(p) {
		dirs = append(dirs, filepath.Join(d.root, p))
		if p == "/" || p == "." {
			return dirs
		}
	}
}

// CPUUsage returns the cgroup's cumulative CPU time in nanoseconds and the
// file it came from: v2 cpu.stat usage_usec (present in every v2 cgroup,
// controller enabled or not), else v1 cpuacct.usage.
func (g *Group) CPUUsage() (uint64, string, error) {
	if f, ok := g.file("unified", "cpu.stat"); ok {
		if kv, err := g.readKV(f); err == nil {
			if v, ok := kv["usage_usec"]; ok {
				return v * 1000, f, nil
			}
		}
	}
	if f, ok := g.file("cpuacct", "cpuacct.usage"); ok {
		v, err := g.readUint(f)
		return v, f, err
	}
	return 0, "", fmt.Errorf("cpu usage: %w", ErrNoCounter)
}

// Throttling returns the cgroup's cumulative nr_periods and nr_throttled
// from cpu.stat: v2 when the cpu controller is enabled for the group,
// else the v1 cpu controller's.
//
//	nr_periods 1000
//	nr_throttled 400
//	throttled_usec 9000000     (v1: throttled_time in ns)
func (g *Group) Throttling() (periods, throttled uint64, source string, err error) {
	for _, ctl := range []string{"unified", "cpu"} {
		f, ok := g.file(ctl, "cpu.stat")
		if !ok {
			continue
		}
		kv, err := g.readKV(f)
		if err != nil {
			continue
		}
		p, ok1 := kv["nr_periods"]
		t, ok2 := kv["nr_throttled"]
		if ok1 && ok2 {
			return p, t, f, nil
		}
	}
	return 0, 0, "", fmt.Errorf("throttling: %w (no cpu controller: no CPU quota can apply)", ErrNoCounter)
}

// MemoryUsage returns the cgroup's memory use in bytes: v2
// memory.current, else v1 memory.usage_in_bytes.
func (g *Group) MemoryUsage() (uint64, string, error) {
	for _, c := range [][2]string{{"unified", "memory.current"}, {"memory", "memory.usage_in_bytes"}} {
		if f, ok := g.file(c[0], c[1]); ok {
			if v, err := g.readUint(f); err == nil {
				return v, f, nil
			}
		}
	}
	return 0, "", fmt.Errorf("memory usage: %w", ErrNoCounter)
}

// Limit is an effective resource limit and where it comes from.
type Limit struct {
	Value  float64 `json:"value"`  // CPUs, or bytes
	Source string  `json:"source"` // e.g. "cpu.max of /system.slice (2 CPUs)"
}

// CPULimit returns the effective CPU limit in CPUs: the lowest
// quota/period of the target and its ancestors (v2 cpu.max, v1
// cpu.cfs_quota_us/cpu.cfs_period_us), else the size of its cpuset, else
// the online CPUs.
func (g *Group) CPULimit() Limit {
	best := Limit{Value: math.Inf(1)}
	consider := func(cpus float64, source string) {
		if cpus > 0 && cpus < best.Value {
			best = Limit{Value: cpus, Source: source}
		}
	}
	// v2: cpu.max is "$MAX $PERIOD", $MAX may be "max".
	for _, dir := range g.ancestors("unified") {
		b, err := kfile.Read(filepath.Join(dir, "cpu.max"))
		if f := strings.Fields(string(b)); err == nil && len(f) == 2 && f[0] != "max" {
			q, e1 := strconv.ParseFloat(f[0], 64)
			p, e2 := strconv.ParseFloat(f[1], 64)
			if e1 == nil && e2 == nil && p > 0 {
				consider(q/p, fmt.Sprintf("cpu.max of %s (%s)", g.rel("unified", dir), fmtCPUs(q/p)))
			}
		}
	}
	// v1: cpu.cfs_quota_us is -1 when unlimited.
	for _, dir := range g.ancestors("cpu") {
		q, e1 := readInt(filepath.Join(dir, "cpu.cfs_quota_us"))
		p, e2 := readInt(filepath.Join(dir, "cpu.cfs_period_us"))
		if e1 == nil && e2 == nil && q > 0 && p > 0 {
			consider(float64(q)/float64(p), fmt.Sprintf("cpu.cfs_quota_us of %s (%s)", g.rel("cpu", dir), fmtCPUs(float64(q)/float64(p))))
		}
	}
	if !math.IsInf(best.Value, 1) {
		return best
	}
	for _, c := range [][2]string{{"unified", "cpuset.cpus.effective"}, {"cpuset", "cpuset.effective_cpus"}} {
		if f, ok := g.file(c[0], c[1]); ok {
			if b, err := kfile.Read(f); err == nil {
				if n := cpulist.Count(string(b)); n > 0 {
					return Limit{Value: float64(n), Source: fmt.Sprintf("%s of %s (%d CPUs)", c[1], g.Path, n)}
				}
			}
		}
	}
	n := onlineCPUs(g.paths)
	return Limit{Value: float64(n), Source: fmt.Sprintf("online CPUs (%d)", n)}
}

// MemoryLimit returns the effective memory limit in bytes: the lowest of
// the target's and its ancestors' v2 memory.max (memory.high throttles
// before it, so it counts too) or v1 memory.limit_in_bytes, else the
// host's MemTotal.
func (g *Group) MemoryLimit() Limit {
	best := Limit{Value: math.Inf(1)}
	for _, c := range [][3]string{{"unified", "memory.max"}, {"unified", "memory.high"}, {"memory", "memory.limit_in_bytes"}} {
		for _, dir := range g.ancestors(c[0]) {
			v, err := readUint(filepath.Join(dir, c[1])) // "max" fails to parse: no limit
			// v1 reports "no limit" as a huge page-rounded number.
			if err == nil && v < 1<<62 && float64(v) < best.Value {
				best = Limit{Value: float64(v), Source: fmt.Sprintf("%s of %s (%s)", c[1], g.rel(c[0], dir), fmtBytes(v))}
			}
		}
	}
	if !math.IsInf(best.Value, 1) {
		return best
	}
	if b, err := kfile.Read(filepath.Join(g.paths.Proc, "meminfo")); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
				if kb, err := strconv.ParseUint(f[1], 10, 64); err == nil {
					return Limit{Value: float64(kb * 1024), Source: fmt.Sprintf("host MemTotal (%s)", fmtBytes(kb*1024))}
				}
			}
		}
	}
	return Limit{Value: math.Inf(1), Source: "unknown"}
}

// PressureFile returns the cgroup's PSI file for resource ("cpu",
// "memory", "io"), which lives in the unified tree (also on hybrid hosts),
// or /proc/pressure/<resource> when the cgroup has none; fallback says so.
func (g *Group) PressureFile(resource string) (file string, fallback bool) {
	if f, ok := g.file("unified", resource+".pressure"); ok {
		if _, err := os.Stat(f); err == nil {
			return f, false
		}
	}
	return filepath.Join(g.paths.Proc, "pressure", resource), true
}

// readPressure reads the pressure file PressureFile names, through the
// group's caches: a cgroup without one (not in the unified tree) costs a
// failed open once per limits refresh, not a stat every sample.
func (g *Group) readPressure(resource string) ([]byte, error) {
	if f, ok := g.file("unified", resource+".pressure"); ok {
		if b, err := g.read(f); !errors.Is(err, fs.ErrNotExist) {
			return b, err
		}
	}
	return g.read(filepath.Join(g.paths.Proc, "pressure", resource))
}

func (g *Group) rel(ctl, dir string) string {
	d := g.dirs[ctl]
	r, err := filepath.Rel(d.root, dir)
	if err != nil || r == "." {
		return "/"
	}
	return "/" + r
}

// readKV reads a flat keyed file ("key value" lines) such as cpu.stat.
func readKV(file string) (map[string]uint64, error) {
	b, err := kfile.Read(file)
	if err != nil {
		return nil, err
	}
	return parseKV(b), nil
}

func (g *Group) readKV(file string) (map[string]uint64, error) {
	b, err := g.read(file)
	if err != nil {
		return nil, err
	}
	return parseKV(b), nil
}

func (g *Group) readUint(file string) (uint64, error) {
	b, err := g.read(file)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
}

func parseKV(b []byte) map[string]uint64 {
	kv := map[string]uint64{}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if f := bytes.Fields(line); len(f) == 2 {
			if v, err := strconv.ParseUint(string(f[1]), 10, 64); err == nil {
				kv[string(f[0])] = v
			}
		}
	}
	return kv
}

func readUint(file string) (uint64, error) {
	b, err := kfile.Read(file)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
}

func readInt(file string) (int64, error) {
	b, err := kfile.Read(file)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

func onlineCPUs(p capture.Paths) int {
	if b, err := kfile.Read(filepath.Join(p.Sys, "devices/system/cpu/online")); err == nil {
		if n := cpulist.Count(string(b)); n > 0 {
			return n
		}
	}
	return 1
}

func fmtCPUs(v float64) string {
	if v == 1 {
		return "1 CPU"
	}
	return strconv.FormatFloat(v, 'f', -1, 64) + " CPUs"
}

func fmtBytes(v uint64) string {
	switch {
	case v >= 1<<30:
		return strconv.FormatFloat(float64(v)/(1<<30), 'f', 2, 64) + " GiB"
	case v >= 1<<20:
		return strconv.FormatFloat(float64(v)/(1<<20), 'f', 1, 64) + " MiB"
	}
	return strconv.FormatUint(v, 10) + " B"
}
