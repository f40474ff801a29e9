package capture

import (
	"context"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

func init() {
	register("fds", true, func(c *Config) Module { return &fds{paths: c.Paths} })
}

// fds copies the open files of every target process: the targets of the
// /proc/<pid>/fd links as data (proc/<pid>/fd.json: a bundle holds no
// symlinks) and, for the fds where it says more than the link, the raw
// /proc/<pid>/fdinfo/<n>.
//
// # Which fds get fdinfo
//
// fdinfo is the dearest file of a capture (~11 µs a read, and a server
// may hold tens of thousands of fds), so it is read only where it adds
// to the link target:
//
//   - files, /dev nodes, memfds: pos (how far a reader got), flags
//     (O_APPEND, O_DIRECT, O_NONBLOCK…), mnt_id and ino (which file a
//     deleted path was); some drivers add lines (tun's iff, DRM's
//     drm-memory-*).
//   - anon_inode:*: the state behind the fd: eventfd-count, the epoll
//     interest list (tfd: lines), inotify watches, timerfd it_value,
//     signalfd sigmask, the pid of a pidfd.
//   - socket:[…] and pipe:[…]: skipped. Their fdinfo is pos 0, flags,
//     the sockfs/pipefs mnt_id and the ino already in the link; only
//     unix sockets add one line (scm_fds, fds in flight). The sockets
//     module reads the socket tables per netns instead.
//
// fd.json says which rule was applied ("fdinfo"), so an absent fdinfo
// reads as "not copied", not as "vanished". allInfo (benchmarks, tests)
// reads every fdinfo.
type fds struct {
	paths   Paths
	allInfo bool
}

// FDTable is the JSON layout of proc/<pid>/fd.json, version 1.
type FDTable struct {
	Version int `json:"version"`
	// FDs maps each open fd to its link target as readlink returns it:
	// "/var/log/app.log", "/tmp/x (deleted)", "socket:[4242]",
	// "pipe:[77]", "anon_inode:[eventfd]", "anon_inode:inotify".
	FDs map[int]string `json:"fds"`
	// FDInfo names the fds whose proc/<pid>/fdinfo/<n> was copied:
	// "selective" (all but sockets and pipes) or "all".
	FDInfo string `json:"fdinfo"`
	// DeletedSizes is st_size of each regular file open under a deleted
	// name (the target ends in " (deleted)"), by fd: the disk space that
	// du cannot see. Absent for an fd whose stat failed.
	DeletedSizes map[int]int64 `json:"deleted_sizes,omitempty"`
}

// FDTableVersion is the version of FDTable written.
const FDTableVersion = 1

// FDTableMember is the bundle member holding pid's FDTable.
func FDTableMember(pid int) string { return "proc/" + strconv.Itoa(pid) + "/fd.json" }

// deletedSuffix is what d_path appends to the name of an unlinked file.
const deletedSuffix = " (deleted)"

func (m *fds) Run(ctx context.Context, t *Target, s *Sink) error {
	for _, pid := range t.Pids {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := m.process(ctx, t, pid, s); err != nil {
			return err
		}
	}
	return nil
}

// process copies the fd table of one process; it returns only ctx's error.
func (m *fds) process(ctx context.Context, t *Target, pid int, s *Sink) error {
	var (
		dir    = filepath.Join(m.paths.Proc, strconv.Itoa(pid))
		member = "proc/" + strconv.Itoa(pid) + "/"
	)
	links, err := t.FDLinks(m.paths, pid)
	switch {
	case err == nil:
	case isGone(err) && !exists(dir):
		s.Vanished(pid)
		return nil
	case isGone(err):
		// Every live process, zombies and kernel threads included, has
		// an fd directory (empty for them); this is a broken tree.
		s.Problem("%sfd: %v", member, err)
		return nil
	default:
		s.fileError(member+"fd", err)
		return nil
	}

	table := FDTable{Version: FDTableVersion, FDs: links, FDInfo: "selective"}
	if m.allInfo {
		table.FDInfo = "all"
	}
	for _, fd := range slices.Sorted(maps.Keys(links)) {
		if err := ctx.Err(); err != nil {
			return err
		}
		target, n := links[fd], strconv.Itoa(fd)
		if strings.HasSuffix(target, deletedSuffix) {
			// stat follows the magic link to the open file itself.
			if fi, err := os.Stat(filepath.Join(dir, "fd", n)); err == nil && fi.Mode().IsRegular() {
				if table.DeletedSizes == nil {
					table.DeletedSizes = map[int]int64{}
				}
				table.DeletedSizes[fd] = fi.Size()
			}
		}
		if m.allInfo || fdInfoAdds(target) {
			// ENOENT: closed since the listing, ordinary. (An fd closed and
			// reopened in between shows the new file's fdinfo; its ino
			// tells.)
			_, _ = s.Copy(member+"fdinfo/"+n, filepath.Join(dir, "fdinfo", n))
		}
	}
	data, err := json.MarshalIndent(table, "", "  ")
	if err != nil {
		return err
	}
	_ = s.Add(FDTableMember(pid), data)
	return nil
}

// fdInfoAdds reports whether /proc/<pid>/fdinfo/<n> says more than the
// link target: for everything but sockets and pipes (see fds).
func fdInfoAdds(target string) bool {
	return !strings.HasPrefix(target, "socket:[") && !strings.HasPrefix(target, "pipe:[")
}
