package trigger

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dashcam-dev/dashcam/internal/kmsg"
)

// OOMVictim is a process the kernel's OOM killer killed, as the kernel
// log names it.
type OOMVictim struct {
	Pid         int    `json:"pid"`
	Comm        string `json:"comm"`
	AnonRSSKB   uint64 `json:"anon_rss_kb"`
	FileRSSKB   uint64 `json:"file_rss_kb"`
	ShmemRSSKB  uint64 `json:"shmem_rss_kb"`
	TotalVMKB   uint64 `json:"total_vm_kb"`
	PgTablesKB  uint64 `json:"pgtables_kb,omitempty"`
	UID         int    `json:"uid"`
	OOMScoreAdj int    `json:"oom_score_adj"`
	// Message is the text before ": Killed process": "Memory cgroup out
	// of memory" for a cgroup limit, "Out of memory" for the host.
	Message string `json:"message"`
	// From the "oom-kill:" summary record, which the kernel rate-limits
	// (10 per 5 s); empty when it was dropped.
	Constraint string `json:"constraint,omitempty"`
	OOMMemcg   string `json:"oom_memcg,omitempty"`
	TaskMemcg  string `json:"task_memcg,omitempty"`
	// KmsgSeq and KmsgTimeUS locate the "Killed process" record in the
	// kernel log (timestamp: µs since boot, by local_clock()).
	KmsgSeq    uint64 `json:"kmsg_seq"`
	KmsgTimeUS uint64 `json:"kmsg_time_us"`
}

// kmsgRecord is one /dev/kmsg record (Documentation/ABI/testing/dev-kmsg),
// one per read(2):
//
//	prio,seq,timestamp_usec,flags[,more];message\n
//	 KEY=value\n        (optional continuation lines)
//
// e.g. "3,1650,2821133845,-;Memory cgroup out of memory: Killed process …".
// The kernel escapes control and non-ASCII bytes in the message as \xNN.
type kmsgRecord struct {
	seq, usec uint64
	msg       string
}

// parseKmsg parses the records in b with internal/kmsg (shared with the
// capture's kernel log tail): one read of /dev/kmsg holds exactly one
// record, but a pipe standing in for it in tests may hold several.
// Malformed records are skipped.
func parseKmsg(b []byte) []kmsgRecord {
	var recs []kmsgRecord
	for _, raw := range kmsg.Split(b) {
		r, err := kmsg.Parse(raw)
		if err != nil {
			continue
		}
		recs = append(recs, kmsgRecord{seq: r.Seq, usec: uint64(r.Since / time.Microsecond), msg: r.Message})
	}
	return recs
}

// The two records of an OOM kill (mm/oom_kill.c, Linux 5.0+; memcg paths
// are the memory controller's hierarchy, v1 or v2):
//
//	oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/x,task_memcg=/x/y,task=tail,pid=1234,uid=0
//	Memory cgroup out of memory: Killed process 1234 (tail) total-vm:70000kB, anon-rss:61440kB, file-rss:1024kB, shmem-rss:0kB, UID:0 pgtables:180kB oom_score_adj:0
//
// The first comes from the rate-limited OOM report; the second always.
var (
	killedRE = regexp.MustCompile(`^(.*): Killed process (\d+) \((.*)\) (.*)$`)
	kbRE     = regexp.MustCompile(`([A-Za-z_-]+):(-?\d+)`)
)

// oomParser pairs the two records into victims.
type oomParser struct {
	summary map[string]string // the last "oom-kill:" record's fields
}

// record consumes one record and returns a victim once its "Killed
// process" record is seen.
func (p *oomParser) record(r kmsgRecord) (OOMVictim, bool) {
	if rest, ok := strings.CutPrefix(r.msg, "oom-kill:"); ok {
		p.summary = map[string]string{}
		last := ""
		for _, kv := range strings.Split(rest, ",") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok && last != "" { // a comma inside a value: mems_allowed=0,2
				p.summary[last] += "," + kv
				continue
			}
			p.summary[k], last = v, k
		}
		return OOMVictim{}, false
	}
	m := killedRE.FindStringSubmatch(r.msg)
	if m == nil {
		return OOMVictim{}, false
	}
	v := OOMVictim{Message: m[1], Comm: m[3], KmsgSeq: r.seq, KmsgTimeUS: r.usec}
	v.Pid, _ = strconv.Atoi(m[2])
	for _, kv := range kbRE.FindAllStringSubmatch(m[4], -1) {
		n, _ := strconv.ParseInt(kv[2], 10, 64)
		switch kv[1] {
		case "total-vm":
			v.TotalVMKB = uint64(n)
		case "anon-rss":
			v.AnonRSSKB = uint64(n)
		case "file-rss":
			v.FileRSSKB = uint64(n)
		case "shmem-rss":
			v.ShmemRSSKB = uint64(n)
		case "pgtables":
			v.PgTablesKB = uint64(n)
		case "UID":
			v.UID = int(n)
		case "oom_score_adj":
			v.OOMScoreAdj = int(n)
		}
	}
	if s := p.summary; s != nil && s["pid"] == m[2] {
		v.Constraint, v.OOMMemcg, v.TaskMemcg = s["constraint"], s["oom_memcg"], s["task_memcg"]
	}
	p.summary = nil
	return v, true
}

// kmsgFollower reads the kernel log from its end in a goroutine and
// passes on the OOM victims that keep returns true for. Its reads block in
// the Go runtime's poller (/dev/kmsg supports poll), so close unblocks
// them.
type kmsgFollower struct {
	f       *os.File
	victims chan seenVictim
	wg      sync.WaitGroup
}

// openKmsg opens /dev/kmsg positioned after the last record: only what
// the kernel logs from now on is read.
func openKmsg() (*os.File, error) {
	f, err := os.Open("/dev/kmsg")
	if err != nil {
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func followKmsg(f *os.File, keep func(OOMVictim) bool, log *slog.Logger) *kmsgFollower {
	k := &kmsgFollower{f: f, victims: make(chan seenVictim, 64)}
	k.wg.Add(1)
	go k.run(keep, log)
	return k
}

func (k *kmsgFollower) run(keep func(OOMVictim) bool, log *slog.Logger) {
	defer k.wg.Done()
	var p oomParser
	// A record is at most CONSOLE_EXT_LOG_MAX (8 KiB); a shorter buffer
	// makes read(2) fail with EINVAL.
	buf := make([]byte, 8192)
	for {
		n, err := k.f.Read(buf)
		switch {
		case errors.Is(err, os.ErrClosed):
			return
		case errors.Is(err, unix.EPIPE):
			continue // records were overwritten before we read them
		case err != nil:
			log.Warn("kernel log: stopped following; OOM victims will not be named", "err", err)
			return
		}
		for _, r := range parseKmsg(buf[:n]) {
			if v, ok := p.record(r); ok && keep(v) {
				k.put(seenVictim{v, time.Now()})
			}
		}
	}
}

// seenVictim is a victim and when its record was read.
type seenVictim struct {
	OOMVictim
	at time.Time
}

// put queues v, dropping the oldest queued victim when the queue is full
// (victims nobody collected: kills the cgroup files did not report).
func (k *kmsgFollower) put(v seenVictim) {
	for {
		select {
		case k.victims <- v:
			return
		default:
			select {
			case <-k.victims:
			default:
			}
		}
	}
}

// close stops the follower and waits for its goroutine.
func (k *kmsgFollower) close() {
	k.f.Close()
	k.wg.Wait()
}
