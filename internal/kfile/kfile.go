// Package kfile reads small kernel files (procfs, cgroupfs, sysfs) the way
// dashcam needs them read: whole, cheaply, with errors that still tell
// "gone" from "denied". capture and the arm loop share it.
package kfile

import (
	"bytes"
	"fmt"
	"os"
	"sync"
	"syscall"
)

// MaxBytes bounds one file. Kernel files are small; this only stops a
// pathological one from eating memory.
const MaxBytes = 64 << 20

// Read reads a kernel file to EOF. Many proc and cgroup files return at
// most a page per read() (cgroup.procs, smaps), so a single read is not
// enough; files report size 0, so the buffer grows as it goes.
//
// It uses plain open/read/close rather than os.Open: os.Open offers every
// file to Go's netpoller (an epoll_ctl that procfs refuses, or, for
// pollable cgroup files, a registration and removal, plus fcntl). A
// capture of 1000 processes opens ~100k files, and an armed dashcam reads
// a few every second for hours. Reads go through a pooled buffer, so each
// file costs one allocation of its exact size. Errors are *os.PathError
// wrapping the errno, so errors.Is(err, fs.ErrNotExist), fs.ErrPermission
// and syscall.ESRCH work as with os.
func Read(path string) ([]byte, error) {
	fd, err := ignoringEINTR(func() (int, error) { return syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0) })
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer syscall.Close(fd)
	bp := bufs.Get().(*[]byte)
	defer bufs.Put(bp)
	buf := (*bp)[:0]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := ignoringEINTR(func() (int, error) { return syscall.Read(fd, buf[len(buf):cap(buf)]) })
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			break
		}
		if buf = buf[:len(buf)+n]; len(buf) > MaxBytes {
			return nil, fmt.Errorf("%s: larger than %d bytes", path, MaxBytes)
		}
	}
	if cap(buf) <= 1<<20 {
		*bp = buf // keep the grown buffer for the next file, unless huge
	}
	return bytes.Clone(buf), nil
}

// bufs are Read's buffers.
var bufs = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

func ignoringEINTR(f func() (int, error)) (int, error) {
	for {
		n, err := f()
		if err != syscall.EINTR {
			return n, err
		}
	}
}
