package capture

import (
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/containerd/cgroups/v3"
)

// Cgroup modes, as recorded in the manifest.
const (
	ModeV1          = "v1"
	ModeV2          = "v2"
	ModeHybrid      = "hybrid"
	ModeUnavailable = "unavailable"
)

// Paths are the filesystem roots capture reads from. Tests point them at
// testdata/fixtures; the defaults are the live system's mount points.
type Paths struct {
	Proc   string // usually /proc
	Sys    string // usually /sys
	Cgroup string // usually /sys/fs/cgroup
	// Mode is the cgroup layout; empty means detect it.
	Mode string
}

// DefaultPaths returns the live system's roots.
func DefaultPaths() Paths {
	return Paths{Proc: "/proc", Sys: "/sys", Cgroup: "/sys/fs/cgroup"}
}

// CgroupMode returns p.Mode, detecting it when empty. On the live mount
// point it asks containerd/cgroups (statfs magic numbers); elsewhere (a
// fixture tree) it looks for cgroup.controllers, which only v2 has.
func (p Paths) CgroupMode() string {
	if p.Mode != "" {
		return p.Mode
	}
	if filepath.Clean(p.Cgroup) == "/sys/fs/cgroup" {
		switch cgroups.Mode() {
		case cgroups.Unified:
			return ModeV2
		case cgroups.Hybrid:
			return ModeHybrid
		case cgroups.Legacy:
			return ModeV1
		default:
			return ModeUnavailable
		}
	}
	switch {
	case exists(filepath.Join(p.Cgroup, "cgroup.controllers")):
		return ModeV2
	case exists(filepath.Join(p.Cgroup, "unified", "cgroup.controllers")):
		return ModeHybrid
	case exists(p.Cgroup):
		return ModeV1
	}
	return ModeUnavailable
}

// hierarchy is one mounted cgroup tree.
type hierarchy struct {
	// name is "unified" for v2, else the v1 mount's directory name.
	name string
	// dir is the mount point.
	dir string
}

// hierarchies lists the cgroup trees under p.Cgroup, unified first, then
// v1 mounts sorted by name. Co-mounted v1 controllers ("cpu,cpuacct") come
// with per-controller symlinks ("cpu" -> "cpu,cpuacct"); only the real
// directory is listed.
func (p Paths) hierarchies() []hierarchy {
	mode := p.CgroupMode()
	var hs []hierarchy
	switch mode {
	case ModeV2:
		return []hierarchy{{name: "unified", dir: p.Cgroup}}
	case ModeHybrid:
		hs = append(hs, hierarchy{name: "unified", dir: filepath.Join(p.Cgroup, "unified")})
	case ModeUnavailable:
		return nil
	}
	entries, err := os.ReadDir(p.Cgroup)
	if err != nil {
		return hs
	}
	var v1 []hierarchy
	for _, e := range entries {
		if !e.IsDir() || e.Name() == "unified" { // symlinks report !IsDir
			continue
		}
		v1 = append(v1, hierarchy{name: e.Name(), dir: filepath.Join(p.Cgroup, e.Name())})
	}
	sort.Slice(v1, func(i, j int) bool { return v1[i].name < v1[j].name })
	return append(hs, v1...)
}

// hierarchyFor maps the controller list of a /proc/<pid>/cgroup line to a
// hierarchy name: "" (v2) -> "unified", "name=systemd" -> "systemd",
// "cpu,cpuacct" -> "cpu,cpuacct".
func hierarchyFor(controllers string) string {
	switch {
	case controllers == "":
		return "unified"
	case strings.HasPrefix(controllers, "name="):
		return strings.TrimPrefix(controllers, "name=")
	}
	return controllers
}

// bundleDir is where a cgroup directory lands in the bundle: the machine's
// own path, e.g. sys/fs/cgroup/unified/system.slice/foo.service on a hybrid
// host, so the bundle's tree looks like the machine's.
func (p Paths) bundleDir(h hierarchy, rel string) string {
	sub, err := filepath.Rel(p.Cgroup, h.dir)
	if err != nil {
		sub = h.name
	}
	return filepath.ToSlash(filepath.Join("sys/fs/cgroup", sub, rel))
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
