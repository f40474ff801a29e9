package testutil

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// CgroupRoot is the live cgroup mount root.
const CgroupRoot = "/sys/fs/cgroup"

// Cgroup is a throwaway cgroup created by a test in every relevant
// hierarchy of the live system: the unified tree (v2, or hybrid's
// /sys/fs/cgroup/unified) and the v1 memory and pids controllers where
// mounted. It is removed with its processes when the test ends, pass or fail.
type Cgroup struct {
	// Path is relative to each hierarchy root, e.g. /dashcam-test-123.
	Path string
	// Dirs are the absolute directories, one per hierarchy.
	Dirs []string
}

// cgroupSeq makes cgroup names unique within a test binary (benchmarks
// create one per iteration).
var cgroupSeq atomic.Int64

// NewCgroup creates a cgroup named after the test. It needs root.
func NewCgroup(t testing.TB) *Cgroup {
	t.Helper()
	RequireRoot(t)
	name := fmt.Sprintf("/dashcam-test-%d-%d-%s", os.Getpid(), cgroupSeq.Add(1), sanitize(t.Name()))
	return newCgroupAt(t, name, hierarchyRoots(t))
}

// Sub creates a child cgroup, removed before its parent.
func (c *Cgroup) Sub(t testing.TB, name string) *Cgroup {
	t.Helper()
	var roots []string
	for _, d := range c.Dirs {
		roots = append(roots, strings.TrimSuffix(d, c.Path))
	}
	return newCgroupAt(t, c.Path+"/"+name, roots)
}

func newCgroupAt(t testing.TB, path string, roots []string) *Cgroup {
	t.Helper()
	c := &Cgroup{Path: path}
	for _, root := range roots {
		dir := filepath.Join(root, path)
		if err := os.Mkdir(dir, 0o755); err != nil {
			c.remove(t)
			t.Fatalf("create cgroup: %v", err)
		}
		c.Dirs = append(c.Dirs, dir)
	}
	t.Cleanup(func() { c.remove(t) })
	return c
}

// hierarchyRoots lists where test cgroups go on this host.
func hierarchyRoots(t testing.TB) []string {
	var roots []string
	for _, r := range []string{CgroupRoot, filepath.Join(CgroupRoot, "unified")} {
		if _, err := os.Stat(filepath.Join(r, "cgroup.controllers")); err == nil {
			roots = append(roots, r)
			break
		}
	}
	// v1 controllers the tests set limits in; a co-mounted "cpu,cpuacct"
	// comes with "cpu" and "cpuacct" symlinks, which are skipped.
	for _, ctl := range []string{"memory", "pids", "cpu", "cpuacct", "cpu,cpuacct"} {
		dir := filepath.Join(CgroupRoot, ctl)
		if fi, err := os.Lstat(dir); err != nil || !fi.IsDir() {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, "cgroup.procs")); err == nil {
			roots = append(roots, dir)
		}
	}
	if len(roots) == 0 {
		SkipOrFail(t, "no writable cgroup hierarchy under "+CgroupRoot)
	}
	return roots
}

// Dir returns the cgroup's directory in the hierarchy of controller ctl
// ("unified" for cgroup v2, or a v1 controller such as "memory", "cpu"),
// or "" when the host has no such hierarchy.
func (c *Cgroup) Dir(ctl string) string {
	for _, d := range c.Dirs {
		root := strings.TrimSuffix(d, c.Path)
		switch {
		case ctl == "unified" && (root == CgroupRoot || root == filepath.Join(CgroupRoot, "unified")):
			if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); err == nil {
				return d
			}
		case ctl != "unified" && slices.Contains(strings.Split(filepath.Base(root), ","), ctl):
			return d
		}
	}
	return ""
}

// Set writes value to file in the cgroup's directory of controller ctl.
func (c *Cgroup) Set(t testing.TB, ctl, file, value string) {
	t.Helper()
	d := c.Dir(ctl)
	if d == "" {
		SkipOrFail(t, "no "+ctl+" cgroup hierarchy on this host")
	}
	if err := os.WriteFile(filepath.Join(d, file), []byte(value), 0); err != nil {
		t.Fatalf("set %s/%s = %s: %v", d, file, value, err)
	}
}

// Add moves pid into the cgroup in every hierarchy.
func (c *Cgroup) Add(t testing.TB, pid int) {
	t.Helper()
	for _, d := range c.Dirs {
		if err := os.WriteFile(filepath.Join(d, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
			t.Fatalf("add pid %d to %s: %v", pid, d, err)
		}
	}
}

// Procs reads cgroup.procs of the first hierarchy, to EOF.
func (c *Cgroup) Procs() ([]int, error) {
	return readPids(filepath.Join(c.Dirs[0], "cgroup.procs"))
}

// remove kills what is left in the cgroup and removes its directories.
func (c *Cgroup) remove(t testing.TB) {
	for _, d := range slices.Backward(c.Dirs) {
		deadline := time.Now().Add(5 * time.Second)
		for {
			pids, _ := readPids(filepath.Join(d, "cgroup.procs"))
			for _, pid := range pids {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				_ = syscall.Kill(pid, syscall.SIGCONT)
			}
			err := os.Remove(d)
			if err == nil || errors.Is(err, os.ErrNotExist) {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("remove cgroup %s: %v (pids %v)", d, err, pids)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	c.Dirs = nil
}

func readPids(path string) ([]int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var pids []int
	s := bufio.NewScanner(f) // reads to EOF: one read() returns about a page
	for s.Scan() {
		if pid, err := strconv.Atoi(strings.TrimSpace(s.Text())); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, s.Err()
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, s)
}

// StartIn starts cmd suspended on its stdin, moves it into c, then lets
// it go, so that everything it runs is inside c from the start. cmd must
// read one line from stdin before doing anything. The process is killed
// and reaped when the test ends. It returns cmd's stdin, for more lines.
func StartIn(t testing.TB, c *Cgroup, cmd *exec.Cmd) io.Writer {
	t.Helper()
	w, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", cmd.Args, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = syscall.Kill(cmd.Process.Pid, syscall.SIGCONT)
		_ = cmd.Wait()
	})
	c.Add(t, cmd.Process.Pid)
	if _, err := w.Write([]byte("go\n")); err != nil {
		t.Fatalf("release %v: %v", cmd.Args, err)
	}
	return w
}

// WaitState waits until /proc/<pid>/stat shows one of states.
func WaitState(t testing.TB, pid int, states string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err == nil {
			if i := strings.LastIndexByte(string(b), ')'); i > 0 && i+2 < len(b) && strings.IndexByte(states, b[i+2]) >= 0 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d did not reach state %s: %s %v", pid, states, b, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
