package trigger

import (
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"math"
	"time"

	"golang.org/x/sys/unix"
)

// Errors of the event-driven watchers (PSI triggers, OOM). The arm loop
// logs them and goes on with its other triggers.
var (
	// ErrUnsupported means the kernel lacks the interface a watcher
	// needs (no PSI, no memory controller for the cgroup); the wrapping
	// error names what enables it.
	ErrUnsupported = errors.New("not supported by this kernel or cgroup")
	// ErrGroupGone means the watched cgroup was removed while armed.
	ErrGroupGone = errors.New("cgroup removed")
)

// waker is an eventfd that becomes readable once ctx is done. Added to
// every poll(2) set of a watcher, it wakes the blocked poll on cancel, so
// watchers block in the kernel instead of polling on a timer.
type waker struct {
	fd   int
	stop func() bool
	done chan struct{} // closed once the cancel write has happened
}

func newWaker(ctx context.Context) (*waker, error) {
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, err
	}
	w := &waker{fd: fd, done: make(chan struct{})}
	w.stop = context.AfterFunc(ctx, func() {
		defer close(w.done)
		var one [8]byte
		binary.NativeEndian.PutUint64(one[:], 1)
		_, _ = unix.Write(fd, one[:])
	})
	return w, nil
}

// close releases the eventfd, after the cancel write if it has started
// (the fd number must not be reused under it).
func (w *waker) close() {
	if !w.stop() {
		<-w.done
	}
	unix.Close(w.fd)
}

// wait blocks in poll(2) until fd reports one of events (POLLERR, POLLHUP
// and POLLNVAL are always reported), ctx is done, or timeout passes
// (timeout < 0: no timeout). revents is 0 on timeout.
func (w *waker) wait(fd int, events int16, timeout time.Duration) (revents int16, cancelled bool, err error) {
	var deadline time.Time
	if timeout >= 0 {
		deadline = time.Now().Add(timeout)
	}
	for {
		ms := -1
		if !deadline.IsZero() {
			ms = int(math.Ceil(float64(time.Until(deadline)) / float64(time.Millisecond)))
			ms = max(ms, 0)
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: events}, {Fd: int32(w.fd), Events: unix.POLLIN}}
		_, err := unix.Poll(fds, ms)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, false, err
		}
		if fds[1].Revents != 0 {
			return 0, true, nil
		}
		return fds[0].Revents, false, nil
	}
}

func orDiscard(log *slog.Logger) *slog.Logger {
	if log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return log
}
