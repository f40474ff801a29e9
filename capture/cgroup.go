package capture

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"syscall"
)

func init() {
	register("cgroup", true, func(c *Config) Module { return &cgroupModule{paths: c.Paths} })
}

// cgroupModule copies the target's cgroup directories (and their
// descendants, where services keep their workers) in every hierarchy, and
// the limit files of every ancestor, since the effective limit is the
// lowest along the path. On hybrid hosts the pressure files come from the
// unified tree, which is one of the hierarchies.
type cgroupModule struct{ paths Paths }

// maxCgroupDirs bounds the subtree copied per hierarchy.
const maxCgroupDirs = 256

// ancestorFiles are the files that limit or describe the resources of
// every cgroup below: v2 first, then v1.
var ancestorFiles = []string{
	"cgroup.controllers", "cgroup.subtree_control",
	"cpu.max", "cpu.max.burst", "cpu.weight", "cpu.stat", "cpu.pressure",
	"cpuset.cpus.effective", "cpuset.mems.effective",
	"memory.max", "memory.high", "memory.low", "memory.min", "memory.swap.max",
	"memory.current", "memory.events", "memory.pressure",
	"io.max", "io.pressure", "pids.max", "pids.current",
	"cpu.cfs_quota_us", "cpu.cfs_period_us", "cpu.shares", "cpu.rt_runtime_us",
	"cpuset.cpus", "cpuset.effective_cpus", "cpuset.mems", "cpuset.effective_mems",
	"memory.limit_in_bytes", "memory.soft_limit_in_bytes", "memory.memsw.limit_in_bytes",
	"memory.usage_in_bytes", "memory.use_hierarchy",
}

func (m *cgroupModule) Run(ctx context.Context, t *Target, s *Sink) error {
	if len(t.Cgroups) == 0 {
		if t.Mode == ModeUnavailable {
			return errors.Join(ErrNotSupported, errors.New("no cgroup filesystem mounted under "+m.paths.Cgroup))
		}
		return nil
	}
	for _, cg := range t.Cgroups {
		if err := ctx.Err(); err != nil {
			return err
		}
		// For the whole host, the root's own files are the summary; its
		// subtree is every cgroup on the machine.
		m.copyTree(ctx, cg, !t.Host(), s)
		m.copyAncestors(cg, s)
	}
	return nil
}

// copyTree copies every readable file of cg.Dir and, if recursive, of its
// descendants.
func (m *cgroupModule) copyTree(ctx context.Context, cg Cgroup, recursive bool, s *Sink) {
	dirs := 0
	err := filepath.WalkDir(cg.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if isGone(err) { // a child cgroup removed while walking
				return nil
			}
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		rel, _ := filepath.Rel(cg.Dir, p)
		if d.IsDir() {
			if rel != "." && !recursive {
				return filepath.SkipDir
			}
			if dirs++; dirs > maxCgroupDirs {
				s.Truncated("%s: more than %d cgroups below; the rest were not copied", cg.Member, maxCgroupDirs)
				return fs.SkipAll
			}
			return nil
		}
		m.copyFile(path.Join(cg.Member, filepath.ToSlash(rel)), p, d, s)
		return nil
	})
	if err != nil && ctx.Err() == nil {
		s.Problem("%s: %v", cg.Member, err)
	}
}

// copyAncestors copies the limit files of each ancestor of cg, up to the
// hierarchy root.
func (m *cgroupModule) copyAncestors(cg Cgroup, s *Sink) {
	dir, member := cg.Dir, cg.Member
	for p := cg.Path; p != "/"; {
		p = path.Dir(p)
		dir, member = filepath.Dir(dir), path.Dir(member)
		for _, name := range ancestorFiles {
			full := filepath.Join(dir, name)
			fi, err := os.Lstat(full)
			if err != nil {
				continue // this hierarchy or kernel has no such file
			}
			m.copyFile(member+"/"+name, full, fs.FileInfoToDirEntry(fi), s)
		}
	}
}

// copyFile copies one cgroup file, skipping write-only control files
// (cgroup.event_control, memory.force_empty, cgroup.kill) and files the
// kernel refuses to read for this cgroup (EINVAL/EOPNOTSUPP/ENODEV, e.g.
// deprecated v1 kmem files): they hold no state.
func (m *cgroupModule) copyFile(member, full string, d fs.DirEntry, s *Sink) {
	if !d.Type().IsRegular() {
		return
	}
	if info, err := d.Info(); err != nil || info.Mode().Perm()&0o444 == 0 {
		return
	}
	data, err := readFile(full)
	switch {
	case err == nil:
		_ = s.Add(member, data)
	case errors.Is(err, syscall.EINVAL), errors.Is(err, syscall.EOPNOTSUPP), errors.Is(err, syscall.ENODEV):
	default:
		s.fileError(member, err)
	}
}
