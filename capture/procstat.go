package capture

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"syscall"
)

// pfKthread is PF_KTHREAD in the flags of /proc/<pid>/stat: a kernel thread.
const pfKthread = 0x00200000

// errESRCH is what reading some /proc/<pid> files returns when the
// process exits between open and read.
var errESRCH = syscall.ESRCH

// stat is the handful of /proc/<pid>/stat fields the capture itself needs
// (zombie discovery, the derived process table). The analyzer parses the
// raw file with procfs instead.
type stat struct {
	Comm       string
	State      string
	PPid       int
	Flags      uint64 // PF_* (include/linux/sched.h)
	UTime      uint64 // clock ticks
	STime      uint64
	NumThreads int
	RSSPages   int64
}

// parseStat parses /proc/<pid>/stat, e.g.
//
//	1234 (my (odd) comm) S 1 1234 1234 0 -1 4194560 101 0 0 0 7 3 0 0 20 0 2 0 …
//
// comm may hold spaces and parentheses, so it runs to the LAST ')'. After
// it, field 3 (state) is rest[0]; field N is rest[N-3].
func parseStat(b []byte) (stat, error) {
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return stat{}, errors.New("stat: no (comm)")
	}
	rest := bytes.Fields(b[end+1:])
	if len(rest) < 22 {
		return stat{}, fmt.Errorf("stat: %d fields after comm, want at least 22", len(rest))
	}
	var (
		s   = stat{Comm: string(b[open+1 : end]), State: string(rest[0])}
		err error
	)
	num := func(i int) int64 {
		v, e := strconv.ParseInt(string(rest[i]), 10, 64)
		if e != nil && err == nil {
			err = fmt.Errorf("stat: field %d: %w", i+3, e)
		}
		return v
	}
	s.PPid = int(num(1))
	s.Flags = uint64(num(6))
	s.UTime = uint64(num(11))
	s.STime = uint64(num(12))
	s.NumThreads = int(num(17))
	s.RSSPages = num(21)
	return s, err
}
