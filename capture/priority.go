package capture

import (
	"errors"
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/dashcam-dev/dashcam/bundle"
)

// CaptureNice is the nice value a capture runs at.
const CaptureNice = 10

// ioprio_set(2) constants (linux/ioprio.h); x/sys/unix has the syscall
// number but not these.
const (
	ioprioWhoProcess = 1
	ioprioClassIdle  = 3
	ioprioClassShift = 13
)

// LowerPriority makes this process nice +10 with the idle IO class, so a
// capture does not deepen the incident it records. Linux applies both per
// thread, so it sets every thread of the process; threads created later
// inherit from their creator.
func LowerPriority() *bundle.Priority {
	p := &bundle.Priority{Nice: CaptureNice, IOClass: "idle"}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		p.Error = err.Error()
		return p
	}
	var errs []error
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		// Only ever lower: never raise a priority someone already lowered.
		if cur, err := unix.Getpriority(unix.PRIO_PROCESS, tid); err == nil && 20-cur < CaptureNice {
			errs = append(errs, unix.Setpriority(unix.PRIO_PROCESS, tid, CaptureNice))
		}
		_, _, e := unix.Syscall(unix.SYS_IOPRIO_SET, ioprioWhoProcess, uintptr(tid), ioprioClassIdle<<ioprioClassShift)
		if e != 0 {
			errs = append(errs, e)
		}
	}
	if err := errors.Join(errs...); err != nil {
		p.Error = err.Error()
	}
	return p
}
