package analyze

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dashcam-dev/dashcam/bundle"
)

// The synthetic bundle below is a payment service caught in a bad moment:
//
//	pid  comm        state  notes
//	100  app         S      parent of two zombies; catches SIGINT, USR1,
//	                        USR2, TERM but not SIGCHLD, ignores SIGPIPE
//	101  worker      Z      child of 100
//	102  worker      Z      child of 100
//	110  busy        R      most CPU
//	120  db          S      4 threads, thread 122 (db-flush) in D; most RSS
//	130  nfs-reader  D      wchan rpc_wait_bit_killable
//	140  paused      T
//	160  ghost       S      stat only: status, cmdline and wchan absent
//	170  evil        -      stat ends at ")", which panics procfs
//	171  trunc       -      stat cut short after ppid
//
// The page size is 16 KiB (an arm64 kernel), never the test machine's.

const (
	fixturePageSize = 16384
	fixtureHZ       = 100
)

// procFixture describes one process; ticks are utime, stime.
type procFixture struct {
	pid, ppid      int
	comm, state    string
	utime, stime   uint64
	threads        int
	rss            int64
	sigIgn, sigCgt string
	cmdline        []string // nil: no cmdline file
	wchan          string   // "": no wchan file
	tasks          map[int]string
	noStatus       bool
}

// statLine formats /proc/<pid>/stat as Linux 6.x writes it: 52 fields.
func statLine(pid int, comm, state string, ppid int, utime, stime uint64, threads int, rss int64) string {
	f := []string{
		strconv.Itoa(pid), "(" + comm + ")", state, strconv.Itoa(ppid),
		strconv.Itoa(pid), strconv.Itoa(pid), "0", "-1", "4194560", // pgrp session tty tpgid flags
		"1200", "0", "3", "0", // minflt cminflt majflt cmajflt
		strconv.FormatUint(utime, 10), strconv.FormatUint(stime, 10), "0", "0", // utime stime cutime cstime
		"20", "0", strconv.Itoa(threads), "0", "51234", // priority nice num_threads itrealvalue starttime
		strconv.FormatInt(rss*fixturePageSize*4, 10), strconv.FormatInt(rss, 10), // vsize rss
		"18446744073709551615", "94000000000000", "94000000100000", "140720000000000", // rsslim startcode endcode startstack
		"0", "0", "0", "0", "4096", "16386", "0", "0", "0", "17", // kstkesp kstkeip signal blocked sigignore sigcatch wchan nswap cnswap exit_signal
		"1", "0", "0", "7", "0", "0", // processor rt_priority policy delayacct_blkio_ticks guest_time cguest_time
		"94000000200000", "94000000300000", "94000001000000", // start_data end_data start_brk
		"140720000001000", "140720000001100", "140720000001100", "140720000001200", "0", // arg/env start end, exit_code
	}
	return strings.Join(f, " ") + "\n"
}

// statusFile formats /proc/<pid>/status (abridged, in the kernel's order).
func statusFile(p procFixture) string {
	state := map[string]string{
		"R": "R (running)", "S": "S (sleeping)", "D": "D (disk sleep)",
		"Z": "Z (zombie)", "T": "T (stopped)",
	}[p.state]
	return fmt.Sprintf(`Name:	%[1]s
Umask:	0022
State:	%[2]s
Tgid:	%[3]d
Ngid:	0
Pid:	%[3]d
PPid:	%[4]d
TracerPid:	0
Uid:	1000	1000	1000	1000
Gid:	1000	1000	1000	1000
FDSize:	64
Groups:	1000
NStgid:	%[3]d
NSpid:	%[3]d
VmRSS:	%[5]d kB
Threads:	%[6]d
SigQ:	0/62711
SigPnd:	0000000000000000
ShdPnd:	0000000000000000
SigBlk:	0000000000000000
SigIgn:	%[7]s
SigCgt:	%[8]s
CapInh:	0000000000000000
CapPrm:	0000000000000000
CapEff:	0000000000000000
CapBnd:	000001ffffffffff
CapAmb:	0000000000000000
voluntary_ctxt_switches:	150
nonvoluntary_ctxt_switches:	545
`, p.comm, state, p.pid, p.ppid, p.rss*fixturePageSize/1024, p.threads, p.sigIgn, p.sigCgt)
}

var fixtureProcs = []procFixture{
	{pid: 100, ppid: 1, comm: "app", state: "S", utime: 500, stime: 100, threads: 1, rss: 2000,
		sigIgn: "0000000000001000", sigCgt: "0000000000004a02",
		cmdline: []string{"/usr/bin/app", "--config", "/etc/app.yaml"}, wchan: "do_wait"},
	{pid: 101, ppid: 100, comm: "worker", state: "Z", utime: 40, stime: 2, threads: 1,
		sigIgn: "0000000000000000", sigCgt: "0000000000000000", cmdline: []string{}, wchan: "0"},
	{pid: 102, ppid: 100, comm: "worker", state: "Z", utime: 35, stime: 1, threads: 1,
		sigIgn: "0000000000000000", sigCgt: "0000000000000000", cmdline: []string{}, wchan: "0"},
	{pid: 110, ppid: 1, comm: "busy", state: "R", utime: 90000, stime: 3000, threads: 1, rss: 50000,
		sigIgn: "0000000000000000", sigCgt: "0000000000000000",
		cmdline: []string{"/usr/bin/busy", "--spin"}, wchan: "0"},
	{pid: 120, ppid: 1, comm: "db", state: "S", utime: 20000, stime: 8000, threads: 4, rss: 300000,
		sigIgn: "0000000000001000", sigCgt: "0000000180014a03",
		cmdline: []string{"postgres", "-D", "/var/lib/pg", "--password=REDACTED"}, wchan: "do_epoll_wait",
		tasks: map[int]string{120: "S db", 121: "S db-wal", 122: "D db-flush", 123: "S db-ckpt"}},
	{pid: 130, ppid: 1, comm: "nfs-reader", state: "D", utime: 10, stime: 250, threads: 1, rss: 1000,
		sigIgn: "0000000000000000", sigCgt: "0000000000000000",
		cmdline: []string{"/usr/bin/nfs-reader", "/mnt/nfs/data"}, wchan: "rpc_wait_bit_killable"},
	{pid: 140, ppid: 1, comm: "paused", state: "T", utime: 5, stime: 5, threads: 1, rss: 500,
		sigIgn: "0000000000000000", sigCgt: "0000000000000000",
		cmdline: []string{"/usr/bin/paused"}, wchan: "do_signal_stop"},
	{pid: 160, ppid: 1, comm: "ghost", state: "S", utime: 7, stime: 3, threads: 1, rss: 100, noStatus: true},
}

// fixtureFiles returns the members of the synthetic bundle.
func fixtureFiles() map[string][]byte {
	files := map[string][]byte{
		"proc/loadavg": []byte("2.15 1.80 1.20 3/245 4242\n"),
		"proc/meminfo": []byte("MemTotal:       16303428 kB\nMemFree:          712000 kB\nMemAvailable:    9524000 kB\nBuffers:          120000 kB\nCached:          6400000 kB\n"),
		"proc/uptime":  []byte("86400.12 300000.50\n"),
		"proc/version": []byte("Linux version 6.8.0-45-generic (buildd@lcy02-amd64-075) #45-Ubuntu SMP\n"),
		"proc/pressure/cpu": []byte("some avg10=12.50 avg60=8.00 avg300=3.10 total=123456789\n" +
			"full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"),
		"proc/pressure/memory": []byte("some avg10=0.00 avg60=0.10 avg300=0.05 total=4567\n" +
			"full avg10=0.00 avg60=0.00 avg300=0.00 total=1234\n"),
		"proc/pressure/io": []byte("some avg10=30.20 avg60=25.00 avg300=10.00 total=98765432\n" +
			"full avg10=28.00 avg60=20.00 avg300=8.00 total=87654321\n"),
		// comm ends the file: procfs slices past the end.
		"proc/170/stat": []byte("170 (evil)"),
		"proc/171/stat": []byte("171 (trunc) S 1\n"),
	}
	for _, p := range fixtureProcs {
		dir := "proc/" + strconv.Itoa(p.pid) + "/"
		files[dir+"stat"] = []byte(statLine(p.pid, p.comm, p.state, p.ppid, p.utime, p.stime, p.threads, p.rss))
		if !p.noStatus {
			files[dir+"status"] = []byte(statusFile(p))
		}
		if p.cmdline != nil {
			var s string
			for _, a := range p.cmdline {
				s += a + "\x00"
			}
			files[dir+"cmdline"] = []byte(s)
		}
		if p.wchan != "" {
			files[dir+"wchan"] = []byte(p.wchan)
		}
		tasks := p.tasks
		if tasks == nil && !p.noStatus {
			tasks = map[int]string{p.pid: p.state + " " + p.comm}
		}
		for tid, sc := range tasks {
			state, comm, _ := strings.Cut(sc, " ")
			files[dir+"task/"+strconv.Itoa(tid)+"/stat"] = []byte(
				statLine(tid, comm, state, p.ppid, p.utime/uint64(len(tasks)), p.stime/uint64(len(tasks)), p.threads, p.rss))
		}
	}
	return files
}

// fixtureManifest returns the manifest of the synthetic bundle.
func fixtureManifest() *bundle.Manifest {
	mem := uint64(16303428 * 1024)
	started := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	return &bundle.Manifest{
		Tool: bundle.Tool{Name: "dashcam", Version: "0.1.0"},
		Host: bundle.Host{
			Hostname: "web-1", KernelRelease: "6.8.0-45-generic", Arch: "arm64",
			BootID: "0f3c2b8e-6d1a-4c5e-9b7a-2e4f6a8c0d12", CPUs: 4, MemTotalBytes: &mem,
			PageSize: fixturePageSize, ClockTicks: fixtureHZ, CgroupMode: "v2",
		},
		Target: bundle.Target{Kind: "unit", Spec: "payment.service", Resolved: &bundle.ResolvedTarget{
			CgroupMode: "v2",
			Cgroups: []bundle.CgroupPath{{Hierarchy: "unified", Path: "/system.slice/payment.service",
				Member: "sys/fs/cgroup/system.slice/payment.service", Pids: 8}},
			Pids: []int{100, 101, 102, 110, 120, 130, 140, 160, 170, 171},
		}},
		Trigger: bundle.Trigger{Kind: "manual"},
		Started: started,
		Ended:   started.Add(1250 * time.Millisecond),
		Modules: []bundle.ModuleResult{
			{Name: "host", Status: bundle.StatusOK, DurationMS: 3.2, Members: 7},
			{Name: "procs", Status: bundle.StatusPartial, Reason: "permission denied: 1 file", DurationMS: 12.5,
				Members: 40, Errors: []string{"proc/160/status: permission denied"}},
			{Name: "cgroup", Status: bundle.StatusSkipped, Reason: "cgroup files not captured in this test", DurationMS: 0.1},
		},
		Counts: bundle.Counts{ProcessesSeen: 11, ProcessesVanished: 1, ThreadsSeen: 13},
		Redactions: []bundle.Redaction{
			{Pid: 120, Member: "proc/120/cmdline", Rule: "password-flag", Count: 1},
		},
		Notes: []string{"excluded dashcam's own process (pid 4242)",
			"added 2 zombie children of target processes (zombies leave cgroup.procs)"},
	}
}

func fixtureBundle() *bundle.Bundle {
	return bundle.New(fixtureManifest(), fixtureFiles())
}
