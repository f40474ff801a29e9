package analyze

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// sigchldBit is SIGCHLD (17 on every Linux architecture dashcam supports)
// in the signal masks of proc/<pid>/status, where signal n is bit n-1.
const sigchldBit = 1 << (17 - 1)

// sigMasks are the signal dispositions of a process.
type sigMasks struct {
	Ign uint64 // SIG_IGN
	Cgt uint64 // a handler is installed
}

// sigchld names the disposition of SIGCHLD in m.
func (m *sigMasks) sigchld() string {
	switch {
	case m == nil:
		return "unknown"
	case m.Cgt&sigchldBit != 0:
		return "caught"
	case m.Ign&sigchldBit != 0:
		return "ignored"
	default:
		return "default"
	}
}

// parseSigMasks reads the SigIgn and SigCgt lines of /proc/<pid>/status,
// 64-bit hex masks where bit n-1 stands for signal n; procfs's
// ProcStatus does not carry them:
//
//	SigQ:	0/62711
//	SigPnd:	0000000000000000
//	ShdPnd:	0000000000000000
//	SigBlk:	0000000000000000
//	SigIgn:	0000000000001000
//	SigCgt:	0000000180004a02
//
// Both lines must be present: a status without them is not one the
// kernel wrote.
func parseSigMasks(r io.Reader) (*sigMasks, error) {
	var (
		m        sigMasks
		ign, cgt bool
		sc       = bufio.NewScanner(r)
	)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || (key != "SigIgn" && key != "SigCgt") {
			continue
		}
		v, err := strconv.ParseUint(strings.TrimSpace(val), 16, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		if key == "SigIgn" {
			m.Ign, ign = v, true
		} else {
			m.Cgt, cgt = v, true
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if !ign || !cgt {
		return nil, fmt.Errorf("no SigIgn or SigCgt line")
	}
	return &m, nil
}

// parse calls a procfs parser and turns a panic into an error. A bundle
// is hostile input, and procfs v0.23.0 indexes without bounds checks in
// places: Proc.Stat slices past a ")" that ends the file or precedes the
// "(", and Proc.NewStatus writes one array element per Uid field.
func parse[T any](f func() (T, error)) (v T, err error) {
	defer func() {
		if p := recover(); p != nil {
			var zero T
			v, err = zero, fmt.Errorf("malformed: parser panicked: %v", p)
		}
	}()
	return f()
}
