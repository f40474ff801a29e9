// Package kmsg parses kernel log records in the format /dev/kmsg returns
// them, and converts their timestamps to wall-clock time. capture uses it
// to derive dashcam/kmsg.json from the raw records, analyze to read the
// raw dev/kmsg member of a bundle.
//
// The format (Documentation/ABI/testing/dev-kmsg) is one record per
// read(2): a header, ";", the message, "\n", then optional continuation
// lines that start with a space and carry KEY=value pairs:
//
//	prio,seq,timestamp_usec,flags[,more];message\n
//	 KEY=value\n
//
// for example
//
//	6,339,1216112,-;tokio-rt-worker (70): drop_caches: 3
//	3,1650,2821133845,-,caller=T1234;usb 1-1: device descriptor read/64, error -71
//	 SUBSYSTEM=usb
//	 DEVICE=c189:1
//
// prio is the syslog facility<<3 | level, seq a 64-bit sequence number
// (a gap means records were overwritten before they were read),
// timestamp_usec the kernel's local_clock() in microseconds since boot,
// and flags "-" (or "c" for the first fragment of a continued line, "+"
// for a continuation on old kernels). Fields after flags ("caller=T1234"
// with CONFIG_PRINTK_CALLER) are optional and may grow: they are kept,
// not interpreted. In the message and in values the kernel escapes
// control characters, non-ASCII bytes and "\" as \xNN.
package kmsg

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Record is one kernel log record.
type Record struct {
	Seq      uint64
	Facility int // 0 kernel, 1 user (written to /dev/kmsg), …
	Level    int // 0 emerg … 7 debug
	// Since is the timestamp: time since boot, by the kernel's
	// local_clock(), which does not advance during suspend.
	Since time.Duration
	Flags string
	// Extra are the header fields after flags, e.g. "caller=T1234".
	Extra []string
	// Message is unescaped: \xNN became the byte NN.
	Message string
	// Fields are the continuation lines' KEY=value pairs, in order.
	Fields []Field
	// Raw is the record as read, header to last continuation line.
	Raw []byte
}

// Field is one " KEY=value" continuation line.
type Field struct {
	Key, Value string
}

// Level names, as syslog(3) and dmesg --level spell them.
var levelNames = [8]string{"emerg", "alert", "crit", "err", "warn", "notice", "info", "debug"}

// LevelName names r's level.
func (r Record) LevelName() string { return levelNames[r.Level&7] }

// ErrMalformed is wrapped by Parse for a header it cannot read.
var ErrMalformed = errors.New("malformed kmsg record")

// Split cuts data into raw records: a header line and the continuation
// lines (starting with " ") after it. A read(2) of /dev/kmsg returns one
// record; a file of records concatenated (a bundle's dev/kmsg, a test
// fixture) holds many. Bytes after the last newline are a record cut
// short and are dropped.
func Split(data []byte) [][]byte {
	var (
		recs  [][]byte
		start = -1 // of the record being gathered
		i     = 0  // start of the next line
	)
	for i < len(data) {
		nl := bytes.IndexByte(data[i:], '\n')
		if nl < 0 {
			break
		}
		if data[i] != ' ' {
			if start >= 0 {
				recs = append(recs, data[start:i])
			}
			start = i
		}
		i += nl + 1
	}
	if start >= 0 {
		recs = append(recs, data[start:i])
	}
	return recs
}

// Parse parses one raw record as Split returns it.
func Parse(raw []byte) (Record, error) {
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	head, msg, ok := strings.Cut(lines[0], ";")
	if !ok {
		return Record{}, fmt.Errorf("%w: no ';' in %.40q", ErrMalformed, lines[0])
	}
	f := strings.Split(head, ",")
	if len(f) < 4 {
		return Record{}, fmt.Errorf("%w: header %.40q has %d fields, want 4 or more", ErrMalformed, head, len(f))
	}
	prio, err1 := strconv.ParseUint(f[0], 10, 32)
	seq, err2 := strconv.ParseUint(f[1], 10, 64)
	ts, err3 := strconv.ParseUint(f[2], 10, 63)
	if err := errors.Join(err1, err2, err3); err != nil {
		return Record{}, fmt.Errorf("%w: header %.40q: %v", ErrMalformed, head, err)
	}
	r := Record{
		Seq: seq, Facility: int(prio >> 3), Level: int(prio & 7),
		Since: time.Duration(ts) * time.Microsecond, Flags: f[3], Extra: f[4:],
		Message: unescape(msg), Raw: raw,
	}
	for _, l := range lines[1:] {
		k, v, _ := strings.Cut(strings.TrimPrefix(l, " "), "=")
		r.Fields = append(r.Fields, Field{Key: unescape(k), Value: unescape(v)})
	}
	return r, nil
}

// unescape turns the kernel's \xNN escapes back into bytes. Anything
// else, including a malformed escape, is kept as it is.
func unescape(s string) string {
	if !strings.Contains(s, `\x`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) && s[i+1] == 'x' {
			if v, err := strconv.ParseUint(s[i+2:i+4], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Clock holds three clocks read together at capture time; it turns
// record timestamps into wall-clock times.
//
// The record timestamp is local_clock(): time since boot that, like
// CLOCK_MONOTONIC, stops during suspend. So boot time is taken as
// Realtime - Monotonic, and a record's time as that plus its timestamp,
// as dmesg -T does. This is exact for records written since the last
// resume (up to the small drift between local_clock and CLOCK_MONOTONIC:
// about a millisecond on a VM here); records written before a suspend
// come out later than they happened, by up to Suspended(). A wall clock
// stepped since (NTP, settimeofday) shifts every time by the step.
type Clock struct {
	Realtime    time.Time
	MonotonicNS int64
	BoottimeNS  int64
}

// BootTime is the estimated wall-clock time of boot.
func (c Clock) BootTime() time.Time {
	return c.Realtime.Add(-time.Duration(c.MonotonicNS))
}

// Time is the estimated wall-clock time of a record written at since.
func (c Clock) Time(since time.Duration) time.Time {
	return c.BootTime().Add(since)
}

// Suspended is how long the machine has been suspended since boot
// (CLOCK_BOOTTIME counts it, CLOCK_MONOTONIC does not).
func (c Clock) Suspended() time.Duration {
	if d := time.Duration(c.BoottimeNS - c.MonotonicNS); d > 0 {
		return d
	}
	return 0
}
