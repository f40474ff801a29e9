package capture

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
)

// fdCache memoizes the fd link targets of each process for one capture, so
// that the modules needing them (fds, sockets) read each link only once.
type fdCache struct {
	mu    sync.Mutex
	procs map[int]*fdEntry
}

type fdEntry struct {
	once  sync.Once
	links map[int]string
	err   error
}

// FDLinks returns the targets of /proc/<pid>/fd/* ("socket:[4242]",
// "pipe:[77]", "/var/log/app.log (deleted)", "anon_inode:[eventpoll]"),
// keyed by fd number, reading them at most once per capture. An fd closed
// between listing and readlink is left out. On error the map is nil: the
// error is that of listing the directory (fs.ErrNotExist when the process
// is gone) or of a readlink refused (fs.ErrPermission: the ptrace access
// check can refuse the links of a directory it lets us list, even to
// root), never an empty map that would read as "no fds".
func (t *Target) FDLinks(p Paths, pid int) (map[int]string, error) {
	t.fds.mu.Lock()
	if t.fds.procs == nil {
		t.fds.procs = map[int]*fdEntry{}
	}
	e, ok := t.fds.procs[pid]
	if !ok {
		e = &fdEntry{}
		t.fds.procs[pid] = e
	}
	t.fds.mu.Unlock()
	e.once.Do(func() { e.links, e.err = readFDLinks(p, pid) })
	return e.links, e.err
}

func readFDLinks(p Paths, pid int) (map[int]string, error) {
	dir := filepath.Join(p.Proc, strconv.Itoa(pid), "fd")
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return nil, err
	}
	links := make(map[int]string, len(names))
	for _, name := range names {
		fd, err := strconv.Atoi(name)
		if err != nil {
			continue
		}
		target, err := os.Readlink(filepath.Join(dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue // closed since the listing
		} else if err != nil {
			return nil, err
		}
		links[fd] = target
	}
	return links, nil
}
