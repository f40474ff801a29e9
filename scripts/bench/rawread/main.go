// Command rawread is the lower bound of the capture benchmark: a plain Go
// program that reads, once, every /proc file a full dashcam capture needs
// for the processes of a cgroup, and throws the bytes away. No parsing,
// no compression, no bundle. See scripts/bench-capture.sh.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

var (
	cgroup = flag.String("cgroup", "", "cgroup directory whose processes (recursively) to read")
	read   int64
	files  int
)

// procFiles are read for every process.
var procFiles = []string{"stat", "status", "cmdline", "limits", "cgroup", "sched", "wchan",
	"syscall", "io", "oom_score", "oom_score_adj", "smaps_rollup", "statm"}

// taskFiles are read for every thread.
var taskFiles = []string{"stat", "stack", "wchan", "syscall"}

// netFiles are read once per network namespace.
var netFiles = []string{"tcp", "tcp6", "udp", "udp6", "unix", "netstat", "snmp", "sockstat"}

func main() {
	flag.Parse()
	start := time.Now()
	pids := cgroupPids(*cgroup)
	netns := map[uint64]bool{}
	for _, pid := range pids {
		dir := "/proc/" + strconv.Itoa(pid)
		for _, f := range procFiles {
			slurp(filepath.Join(dir, f))
		}
		tasks, _ := os.ReadDir(filepath.Join(dir, "task"))
		for _, t := range tasks {
			for _, f := range taskFiles {
				slurp(filepath.Join(dir, "task", t.Name(), f))
			}
		}
		fds, _ := os.ReadDir(filepath.Join(dir, "fd"))
		for _, fd := range fds {
			_, _ = os.Readlink(filepath.Join(dir, "fd", fd.Name()))
			slurp(filepath.Join(dir, "fdinfo", fd.Name()))
		}
		var st syscall.Stat_t
		if syscall.Stat(filepath.Join(dir, "ns", "net"), &st) == nil && !netns[st.Ino] {
			netns[st.Ino] = true
			for _, f := range netFiles {
				slurp(filepath.Join(dir, "net", f))
			}
		}
	}
	// The cgroup's own files.
	_ = filepath.WalkDir(*cgroup, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			slurp(p)
		}
		return nil
	})
	fmt.Printf("rawread: %d processes, %d netns, %d files, %d bytes in %v\n",
		len(pids), len(netns), files, read, time.Since(start).Round(time.Millisecond))
}

func slurp(path string) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	n, _ := io.Copy(io.Discard, f)
	f.Close()
	read += n
	files++
}

func cgroupPids(dir string) []int {
	var pids []int
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.Name() != "cgroup.procs" {
			return nil
		}
		b, _ := os.ReadFile(p)
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
		return nil
	})
	return pids
}
