package trigger

import (
	"errors"
	"os"
	"syscall"
)

// readFile reads a small kernel file with plain open/read/close. The
// armed process reads a few such files every second, for hours: through
// os.ReadFile, every pollable kernfs file (cgroup files are) is also
// registered with and removed from Go's netpoller (epoll_ctl twice, fcntl,
// fstat), which doubles the cost of the sampling.
func readFile(path string) ([]byte, error) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer syscall.Close(fd)
	buf := make([]byte, 0, 512)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := syscall.Read(fd, buf[len(buf):cap(buf)])
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			return buf, nil // EOF: files such as cgroup.procs need several reads
		}
		buf = buf[:len(buf)+n]
	}
}
