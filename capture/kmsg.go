package capture

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dashcam-dev/dashcam/internal/kmsg"
)

// The kernel log: the host module copies the newest records of /dev/kmsg
// raw (KmsgMember, the records as read, one after another) and derives
// KmsgJSONMember, the same records parsed with wall-clock times. It
// holds what no /proc file does: OOM kills ("Out of memory: Killed
// process …", "oom-kill:constraint=…,task_memcg=…"), hung tasks ("INFO:
// task X:PID blocked for more than N seconds"), I/O and driver errors.
const (
	KmsgMember     = "dev/kmsg"
	KmsgJSONMember = "dashcam/kmsg.json"
)

// defaultKmsgRecords is used when Config.KmsgRecords is 0; a negative
// value turns the kernel log off.
const defaultKmsgRecords = 1000

// kmsgReadSize is the read(2) buffer: /dev/kmsg returns one record per
// read and fails with EINVAL when the buffer is smaller than the record;
// the kernel caps a record at CONSOLE_EXT_LOG_MAX (8 KiB) with its
// continuation lines.
const kmsgReadSize = 8192

// KmsgLog is the JSON layout of KmsgJSONMember (version 1).
type KmsgLog struct {
	Version int       `json:"version"`
	Clock   KmsgClock `json:"clock"`
	// BootTime is Clock.Realtime - Clock.MonotonicNS: the estimated
	// wall-clock time of boot that each record's time is based on.
	BootTime time.Time `json:"boot_time"`
	// SuspendedSeconds is how long the machine was suspended since boot;
	// records written before a suspend show times too late by up to this.
	SuspendedSeconds float64 `json:"suspended_seconds"`
	// Read records were in the buffer; Kept are the newest of them, in
	// KmsgMember and Records. Lost counts the records missing between
	// those kept (gaps in seq): overwritten before they could be read.
	Read    int          `json:"records_read"`
	Kept    int          `json:"records_kept"`
	Lost    uint64       `json:"records_lost"`
	Records []KmsgRecord `json:"records"`
}

// KmsgClock is the three clocks read together at capture time.
type KmsgClock struct {
	Realtime    time.Time `json:"realtime"`
	MonotonicNS int64     `json:"monotonic_ns"`
	BoottimeNS  int64     `json:"boottime_ns"`
}

// KmsgRecord is one kernel log record.
type KmsgRecord struct {
	Seq      uint64 `json:"seq"`
	Facility int    `json:"facility"`
	Level    int    `json:"level"`
	// LevelName is emerg, alert, crit, err, warn, notice, info or debug.
	LevelName string `json:"level_name"`
	// SinceBootUS is the record's own timestamp; Time its wall-clock
	// estimate (see KmsgLog.BootTime).
	SinceBootUS int64             `json:"since_boot_us"`
	Time        time.Time         `json:"time"`
	Flags       string            `json:"flags"`
	Extra       []string          `json:"extra,omitempty"`
	Message     string            `json:"message"`
	Fields      map[string]string `json:"fields,omitempty"`
}

// kmsgPath is the kernel log device beside the proc root: /dev/kmsg for
// /proc, /host/dev/kmsg for a host mounted at /host, a plain file of
// records in a test tree.
func kmsgPath(p Paths) string {
	return filepath.Join(filepath.Dir(filepath.Clean(p.Proc)), "dev", "kmsg")
}

// kernelLog copies the newest n records of the kernel log.
func (m *host) kernelLog(ctx context.Context, s *Sink) {
	n := m.kmsgRecords
	switch {
	case n < 0:
		return
	case n == 0:
		n = defaultKmsgRecords
	}
	path := kmsgPath(m.paths)
	clock := readClock()
	recs, read, err := readKmsg(ctx, path, n)
	switch {
	case errors.Is(err, fs.ErrPermission):
		// Reading needs CAP_SYSLOG when kernel.dmesg_restrict=1 (open
		// fails with EPERM); with 0 anyone may read.
		restrict := "unknown"
		if b, err := readFile(filepath.Join(m.paths.Proc, "sys/kernel/dmesg_restrict")); err == nil {
			restrict = strings.TrimSpace(string(b))
		}
		s.Denied(KmsgMember + ": kernel log needs CAP_SYSLOG (dmesg_restrict=" + restrict + ")")
		return
	case errors.Is(err, fs.ErrNotExist):
		s.Problem("%s: no kernel log device at %s (a container without /dev/kmsg, or a kernel without CONFIG_PRINTK)", KmsgMember, path)
		return
	case err != nil && len(recs) == 0:
		s.Problem("%s: %v", KmsgMember, err)
		return
	case err != nil:
		// The deadline: keep what was read.
		s.Problem("%s: stopped after %d records: %v", KmsgMember, read, err)
	}
	if err := s.Add(KmsgMember, bytes.Join(recs, nil)); err != nil {
		return
	}
	data, err := json.MarshalIndent(deriveKmsg(recs, read, clock), "", "  ")
	if err != nil {
		s.Problem("%s: %v", KmsgJSONMember, err)
		return
	}
	_ = s.Add(KmsgJSONMember, data)
}

// readClock reads the wall clock between two readings of the boot
// clocks, so that the three belong to the same instant within
// microseconds.
func readClock() kmsg.Clock {
	var mono, boot unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &mono)
	now := time.Now()
	_ = unix.ClockGettime(unix.CLOCK_BOOTTIME, &boot)
	return kmsg.Clock{Realtime: now, MonotonicNS: mono.Nano(), BoottimeNS: boot.Nano()}
}

// readKmsg returns the newest keep records of the kernel log at path, raw,
// oldest first, and how many it read in all. It never blocks: the device
// is opened O_NONBLOCK and read(2) then returns one record per call,
// EAGAIN after the newest one, and EPIPE when the record it was about to
// return was overwritten (the next read returns the oldest one left).
// A record (Documentation/ABI/testing/dev-kmsg; parsed by internal/kmsg):
//
//	prio,seq,timestamp_usec,flags[,...];message\n
//	 KEY=value\n
//
//	3,420,2969017034,-;Memory cgroup out of memory: Killed process 12117 (python3) total-vm:221368kB, …
//
// A fresh open starts at the oldest record in the buffer. It does not
// lseek(SEEK_DATA), which would skip the records someone cleared with
// dmesg -c: those are still evidence.
//
// A regular file (a test tree, a saved log) is read whole and split.
func readKmsg(ctx context.Context, path string, keep int) ([][]byte, int, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, 0, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, 0, &fs.PathError{Op: "fstat", Path: path, Err: err}
	}
	ring := &recordRing{keep: keep}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR {
		data, err := readFile(path)
		if err != nil {
			return nil, 0, err
		}
		for _, r := range kmsg.Split(data) {
			ring.push(r)
		}
		return ring.records(), ring.total, nil
	}
	buf := make([]byte, kmsgReadSize)
	for i := 0; ; i++ {
		if i%256 == 0 && ctx.Err() != nil {
			return ring.records(), ring.total, ctx.Err()
		}
		n, err := unix.Read(fd, buf)
		switch {
		case err == unix.EAGAIN:
			return ring.records(), ring.total, nil
		case err == unix.EINTR, err == unix.EPIPE:
			continue
		case err != nil:
			return ring.records(), ring.total, &fs.PathError{Op: "read", Path: path, Err: err}
		case n == 0:
			return ring.records(), ring.total, nil
		}
		ring.push(bytes.Clone(buf[:n]))
	}
}

// recordRing keeps the newest keep records pushed.
type recordRing struct {
	keep  int
	recs  [][]byte
	next  int // where the next record goes once full
	total int
}

func (r *recordRing) push(rec []byte) {
	r.total++
	if len(r.recs) < r.keep {
		r.recs = append(r.recs, rec)
		return
	}
	r.recs[r.next] = rec
	r.next = (r.next + 1) % r.keep
}

// records returns the records kept, oldest first.
func (r *recordRing) records() [][]byte {
	return append(r.recs[r.next:len(r.recs):len(r.recs)], r.recs[:r.next]...)
}

// deriveKmsg parses the raw records into KmsgLog. A record that does not
// parse stays in the raw member and is left out here.
func deriveKmsg(raw [][]byte, read int, c kmsg.Clock) KmsgLog {
	l := KmsgLog{
		Version:          1,
		Clock:            KmsgClock{Realtime: c.Realtime.UTC(), MonotonicNS: c.MonotonicNS, BoottimeNS: c.BoottimeNS},
		BootTime:         c.BootTime().UTC(),
		SuspendedSeconds: c.Suspended().Seconds(),
		Read:             read,
		Kept:             len(raw),
		Records:          make([]KmsgRecord, 0, len(raw)),
	}
	var prev uint64
	for i, b := range raw {
		r, err := kmsg.Parse(b)
		if err != nil {
			continue
		}
		if i > 0 && r.Seq > prev+1 {
			l.Lost += r.Seq - prev - 1
		}
		prev = r.Seq
		kr := KmsgRecord{
			Seq: r.Seq, Facility: r.Facility, Level: r.Level, LevelName: r.LevelName(),
			SinceBootUS: r.Since.Microseconds(), Time: c.Time(r.Since).UTC(),
			Flags: r.Flags, Extra: r.Extra, Message: r.Message,
		}
		for _, f := range r.Fields {
			if kr.Fields == nil {
				kr.Fields = map[string]string{}
			}
			kr.Fields[f.Key] = f.Value
		}
		l.Records = append(l.Records, kr)
	}
	return l
}
