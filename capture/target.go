package capture

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"
)

// Spec is a capture target as the user asked for it. At most one of the
// fields is set; none means the whole host.
type Spec struct {
	Cgroup string // path relative to the cgroup root, e.g. /system.slice/foo.service
	Unit   string // systemd unit name, e.g. payment.service
	Pids   []int
}

// Kind is "host", "cgroup", "unit" or "pid".
func (s Spec) Kind() string {
	switch {
	case s.Cgroup != "":
		return "cgroup"
	case s.Unit != "":
		return "unit"
	case len(s.Pids) > 0:
		return "pid"
	}
	return "host"
}

// String is the spec as the user typed it ("" for host).
func (s Spec) String() string {
	switch s.Kind() {
	case "cgroup":
		return s.Cgroup
	case "unit":
		return s.Unit
	case "pid":
		ps := make([]string, len(s.Pids))
		for i, p := range s.Pids {
			ps[i] = strconv.Itoa(p)
		}
		return strings.Join(ps, ",")
	}
	return ""
}

// Cgroup is one cgroup of a resolved target.
type Cgroup struct {
	Hierarchy string // "unified" or a v1 mount name
	Path      string // relative to the hierarchy root, starting with "/"
	Dir       string // absolute directory on this machine
	Member    string // directory in the bundle
	Pids      int    // processes in it and its descendants
}

// Target is a Spec resolved on the live system (or a fixture tree).
type Target struct {
	Spec    Spec
	Mode    string
	Cgroups []Cgroup
	// Pids are the target's processes, sorted, without dashcam itself and
	// with zombie children of target processes added.
	Pids []int
	// Excluded are members left out on purpose (dashcam's own pid).
	Excluded []int
	// Zombies are the pids added because they are zombie children of
	// target processes: a zombie has left its cgroup.procs.
	Zombies []int

	fds fdCache // see FDLinks
}

// Host reports whether the target is the whole machine.
func (t *Target) Host() bool { return t.Spec.Kind() == "host" }

// Resolution errors. The CLI treats them as usage errors.
var (
	ErrTargetNotFound = errors.New("target not found")
	ErrAmbiguousUnit  = errors.New("unit name is ambiguous")
	ErrSelfTarget     = errors.New("refusing to capture dashcam itself")
	ErrBadSpec        = errors.New("invalid target")
)

// Resolve finds the cgroups and processes of s under p. self is the pid to
// leave out (dashcam's own); pass 0 to exclude nothing.
func Resolve(p Paths, s Spec, self int) (*Target, error) {
	t := &Target{Spec: s, Mode: p.CgroupMode()}
	var err error
	switch s.Kind() {
	case "host":
		err = t.resolveHost(p)
	case "pid":
		err = t.resolvePids(p, self)
	case "unit":
		var rel string
		if rel, err = findUnit(p, s.Unit); err == nil {
			err = t.resolveCgroup(p, rel)
		}
	case "cgroup":
		var rel string
		if rel, err = cleanCgroupPath(s.Cgroup); err == nil {
			err = t.resolveCgroup(p, rel)
		}
	}
	if err != nil {
		return nil, err
	}
	if i := slices.Index(t.Pids, self); self > 0 && i >= 0 {
		t.Pids = slices.Delete(t.Pids, i, i+1)
		t.Excluded = append(t.Excluded, self)
	}
	if t.Host() {
		for i := range t.Cgroups {
			t.Cgroups[i].Pids = len(t.Pids)
		}
	} else {
		t.addZombieChildren(p)
	}
	slices.Sort(t.Pids)
	return t, nil
}

func cleanCgroupPath(s string) (string, error) {
	s = "/" + strings.Trim(s, "/")
	if slices.Contains(strings.Split(s, "/"), "..") {
		return "", fmt.Errorf("%w: cgroup path %q contains \"..\"", ErrBadSpec, s)
	}
	return path.Clean(s), nil
}

func (t *Target) resolveHost(p Paths) error {
	pids, err := listPids(p.Proc)
	if err != nil {
		return fmt.Errorf("list processes: %w", err)
	}
	t.Pids = pids
	for _, h := range p.hierarchies() {
		t.Cgroups = append(t.Cgroups, Cgroup{Hierarchy: h.name, Path: "/", Dir: h.dir,
			Member: p.bundleDir(h, "/"), Pids: len(pids)})
	}
	return nil
}

func (t *Target) resolvePids(p Paths, self int) error {
	seen := map[[2]string]int{}
	hs := map[string]hierarchy{}
	for _, h := range p.hierarchies() {
		hs[h.name] = h
	}
	for _, pid := range s(t.Spec.Pids) {
		if pid <= 0 {
			return fmt.Errorf("%w: pid %d", ErrBadSpec, pid)
		}
		if pid == self {
			return fmt.Errorf("%w (pid %d)", ErrSelfTarget, pid)
		}
		raw, err := os.ReadFile(filepath.Join(p.Proc, strconv.Itoa(pid), "cgroup"))
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, errESRCH) {
			return fmt.Errorf("%w: pid %d: no such process", ErrTargetNotFound, pid)
		} else if err != nil {
			return fmt.Errorf("pid %d: %w", pid, err)
		}
		t.Pids = append(t.Pids, pid)
		// /proc/<pid>/cgroup: "hierarchy-ID:controller-list:cgroup-path", e.g.
		//   4:memory:/process_api/x
		//   0::/system.slice/foo.service
		for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
			f := strings.SplitN(line, ":", 3)
			if len(f) != 3 {
				continue
			}
			key := [2]string{hierarchyFor(f[1]), f[2]}
			if _, ok := seen[key]; !ok {
				h, mounted := hs[key[0]]
				if !mounted {
					continue
				}
				seen[key] = len(t.Cgroups)
				t.Cgroups = append(t.Cgroups, Cgroup{Hierarchy: key[0], Path: f[2],
					Dir: filepath.Join(h.dir, f[2]), Member: p.bundleDir(h, f[2])})
			}
			t.Cgroups[seen[key]].Pids++
		}
	}
	t.Pids = slices.Compact(t.Pids)
	return nil
}

// s returns a sorted copy of pids.
func s(pids []int) []int {
	c := slices.Clone(pids)
	slices.Sort(c)
	return c
}

func (t *Target) resolveCgroup(p Paths, rel string) error {
	hs := p.hierarchies()
	if len(hs) == 0 {
		return fmt.Errorf("%w: no cgroup hierarchy mounted under %s", ErrTargetNotFound, p.Cgroup)
	}
	set := map[int]bool{}
	for _, h := range hs {
		dir := filepath.Join(h.dir, rel)
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			continue
		}
		pids, err := cgroupProcs(h, rel)
		if err != nil {
			return fmt.Errorf("read processes of %s: %w", dir, err)
		}
		for _, pid := range pids {
			set[pid] = true
		}
		t.Cgroups = append(t.Cgroups, Cgroup{Hierarchy: h.name, Path: rel, Dir: dir,
			Member: p.bundleDir(h, rel), Pids: len(pids)})
	}
	if len(t.Cgroups) == 0 {
		return fmt.Errorf("%w: cgroup %s exists in no hierarchy under %s", ErrTargetNotFound, rel, p.Cgroup)
	}
	for pid := range set {
		t.Pids = append(t.Pids, pid)
	}
	return nil
}

// cgroupProcs lists the processes of rel and its descendants in h, with
// containerd/cgroups. Its walk fails when a child cgroup is removed under
// it, which services do all the time, so retry a few times.
func cgroupProcs(h hierarchy, rel string) ([]int, error) {
	var err error
	for range 3 {
		var pids []int
		if pids, err = cgroupProcsOnce(h, rel); err == nil {
			return pids, nil
		}
	}
	return nil, err
}

func cgroupProcsOnce(h hierarchy, rel string) ([]int, error) {
	var pids []int
	if h.name == "unified" {
		m, err := cgroup2.Load(rel, cgroup2.WithMountpoint(h.dir))
		if err != nil {
			return nil, err
		}
		ps, err := m.Procs(true)
		if err != nil {
			return nil, err
		}
		for _, p := range ps {
			pids = append(pids, int(p))
		}
		return pids, nil
	}
	// A v1 hierarchy is addressed as a "named" subsystem rooted at the
	// cgroup mount, which works for any controller set, co-mounted or not.
	name := cgroup1.Name(h.name)
	root := filepath.Dir(h.dir)
	cg, err := cgroup1.Load(cgroup1.StaticPath(rel), cgroup1.WithHierarchy(func() ([]cgroup1.Subsystem, error) {
		return []cgroup1.Subsystem{cgroup1.NewNamed(root, name)}, nil
	}))
	if err != nil {
		return nil, err
	}
	ps, err := cg.Processes(name, true)
	if err != nil {
		return nil, err
	}
	for _, p := range ps {
		pids = append(pids, p.Pid)
	}
	return pids, nil
}

// unitSuffixes are the systemd unit types that own cgroups.
var unitSuffixes = []string{".service", ".scope", ".slice", ".socket", ".mount", ".swap"}

// findUnit finds the cgroup of a systemd unit by its directory name, which
// works without systemd running (in a container, from a rescue shell). A
// name without a unit suffix means ".service", as in systemctl.
func findUnit(p Paths, unit string) (string, error) {
	if strings.Contains(unit, "/") {
		return "", fmt.Errorf("%w: unit name %q contains \"/\" (use --cgroup for paths)", ErrBadSpec, unit)
	}
	if !slices.ContainsFunc(unitSuffixes, func(s string) bool { return strings.HasSuffix(unit, s) }) {
		unit += ".service"
	}
	var found []string
	for _, h := range p.hierarchies() {
		_ = filepath.WalkDir(h.dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() || d.Name() != unit {
				return nil // unreadable or vanished cgroups are not this unit
			}
			rel, _ := filepath.Rel(h.dir, path)
			found = append(found, "/"+filepath.ToSlash(rel))
			return filepath.SkipDir
		})
	}
	slices.Sort(found)
	found = slices.Compact(found)
	switch len(found) {
	case 0:
		return "", fmt.Errorf("%w: no cgroup named %s under %s", ErrTargetNotFound, unit, p.Cgroup)
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("%w: %s is at %s", ErrAmbiguousUnit, unit, strings.Join(found, " and "))
}

// addZombieChildren adds zombies whose parent is a target process: an
// exited process leaves cgroup.procs but stays in the process table, and
// its parent (in the target) is the one that must reap it.
func (t *Target) addZombieChildren(p Paths) {
	in := map[int]bool{}
	for _, pid := range t.Pids {
		in[pid] = true
	}
	all, err := listPids(p.Proc)
	if err != nil {
		return
	}
	for _, pid := range all {
		if in[pid] {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(p.Proc, strconv.Itoa(pid), "stat"))
		if err != nil {
			continue
		}
		st, err := parseStat(raw)
		if err == nil && st.State == "Z" && in[st.PPid] {
			t.Pids = append(t.Pids, pid)
			t.Zombies = append(t.Zombies, pid)
		}
	}
}

// listPids returns the numeric entries of the proc root, sorted.
func listPids(proc string) ([]int, error) {
	entries, err := os.ReadDir(proc)
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil && pid > 0 {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}
