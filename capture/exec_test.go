package capture

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dashcam-dev/dashcam/bundle"
)

// runExec runs the exec module with specs against the live processes pids.
func runExec(t *testing.T, pids []int, specs ...ExecSpec) (*memAdder, bundle.ModuleResult) {
	t.Helper()
	tg := &Target{Spec: Spec{Pids: pids}, Pids: pids}
	out := newMemAdder()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep := Run(ctx, tg, out, RunOptions{Modules: []string{"exec"}, Config: &Config{Paths: DefaultPaths(), Exec: specs}})
	return out, rep.Modules[0]
}

func execResult(t *testing.T, out *memAdder, dir string) ExecResult {
	t.Helper()
	data, ok := out.files[dir+"/"+ExecResultName]
	if !ok {
		t.Fatalf("%s/%s missing; members: %v", dir, ExecResultName, memberNames(out))
	}
	var r ExecResult
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func memberNames(out *memAdder) []string {
	var names []string
	for n := range out.files {
		names = append(names, n)
	}
	return names
}

// startSleep starts "sleep <arg>" and kills it when the test ends.
func startSleep(t *testing.T, arg string) int {
	t.Helper()
	cmd := exec.Command("sleep", arg)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// os/exec returns once the child's execve released the parent's
	// memory (vfork), before the kernel renames it and lays out its
	// arguments: wait for the new command line.
	cmdline := "/proc/" + strconv.Itoa(cmd.Process.Pid) + "/cmdline"
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if b, _ := os.ReadFile(cmdline); strings.HasPrefix(string(b), "sleep\x00") || time.Now().After(deadline) {
			break
		}
	}
	return cmd.Process.Pid
}

// gone waits until pid no longer exists (or is a zombie nobody of ours
// must reap), up to two seconds.
func gone(pid int) bool {
	for range 200 {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil || strings.Contains(string(b), ") Z ") {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

func TestExecNoCommand(t *testing.T) {
	_, m := runExec(t, nil)
	if m.Status != bundle.StatusSkipped || !strings.Contains(m.Reason, "--exec") {
		t.Errorf("module = %+v, want skipped naming --exec", m)
	}
}

func TestExecOnce(t *testing.T) {
	out, m := runExec(t, nil, ExecSpec{Command: "echo out; echo err >&2; echo {nothing}", Timeout: 10 * time.Second, OutputCap: 1 << 20})
	if m.Status != bundle.StatusOK {
		t.Fatalf("module %s: %s %v", m.Status, m.Reason, m.Errors)
	}
	if got := string(out.files["exec/1/output"]); got != "out\nerr\n{nothing}\n" {
		t.Errorf("output = %q: stdout and stderr in order, as written", got)
	}
	r := execResult(t, out, "exec/1")
	if r.Version != 1 || r.Index != 1 || r.Pid != nil || r.ExitCode == nil || *r.ExitCode != 0 || r.Signal != "" ||
		r.TimedOut || r.Truncated || r.OutputBytes != 18 || r.Started == nil || r.DurationSeconds <= 0 || r.DurationSeconds > 5 ||
		r.Command != "echo out; echo err >&2; echo {nothing}" {
		t.Errorf("result = %+v", r)
	}
	// The command runs lowered whatever the test's own priority.
	if r.Nice == nil || *r.Nice < CaptureNice {
		t.Errorf("nice = %s, want at least %d", fmtPtr(r.Nice), CaptureNice)
	}
}

// TestExecPerPid runs a command for each target process that matches,
// with {pid} replaced, and only for those.
func TestExecPerPid(t *testing.T) {
	a, b := startSleep(t, "1001"), startSleep(t, "1001")
	other := startSleep(t, "1002")
	out, m := runExec(t, []int{a, b, other}, ExecSpec{
		Command: "echo pid={pid}; tr '\\0' ' ' < /proc/{pid}/cmdline", Match: `^sleep 1001$`, Timeout: 10 * time.Second, OutputCap: 1 << 20,
	})
	if m.Status != bundle.StatusOK {
		t.Fatalf("module %s: %s %v", m.Status, m.Reason, m.Errors)
	}
	for _, pid := range []int{a, b} {
		dir := fmt.Sprintf("exec/1-%d", pid)
		if got, want := string(out.files[dir+"/output"]), fmt.Sprintf("pid=%d\nsleep 1001 ", pid); got != want {
			t.Errorf("%s/output = %q, want %q", dir, got, want)
		}
		r := execResult(t, out, dir)
		if r.Pid == nil || *r.Pid != pid || r.Comm != "sleep" || r.Match != `^sleep 1001$` || r.Command != fmt.Sprintf("echo pid=%d; tr '\\0' ' ' < /proc/%d/cmdline", pid, pid) {
			t.Errorf("%s: result = %+v", dir, r)
		}
	}
	for name := range out.files {
		if strings.Contains(name, strconv.Itoa(other)) {
			t.Errorf("ran for the process that does not match: %s", name)
		}
	}
	if len(out.files) != 4 {
		t.Errorf("members %v, want output and result for 2 processes", memberNames(out))
	}
}

// TestExecTimeoutKillsGroup: a command that outlives its timeout is
// killed with everything it started, and so is whatever a command that
// exits in time leaves running in its group.
func TestExecTimeoutKillsGroup(t *testing.T) {
	start := time.Now()
	out, m := runExec(t, nil,
		ExecSpec{Command: "sleep 300 & echo $!; sleep 300", Timeout: 300 * time.Millisecond, OutputCap: 1 << 20},
		ExecSpec{Command: "sleep 301 & echo $!", Timeout: 10 * time.Second, OutputCap: 1 << 20},
	)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("capture took %v; the timeout is 300ms", took)
	}
	if m.Status != bundle.StatusPartial || !strings.Contains(m.Reason, "timed out") {
		t.Errorf("module = %+v, want partial for the timeout", m)
	}
	r := execResult(t, out, "exec/1")
	if !r.TimedOut || r.Signal != "SIGKILL" || r.ExitCode != nil || r.DurationSeconds < 0.3 || r.DurationSeconds > 3 {
		t.Errorf("timed-out result = %+v", r)
	}
	for _, dir := range []string{"exec/1", "exec/2"} {
		child, err := strconv.Atoi(strings.TrimSpace(string(out.files[dir+"/output"])))
		if err != nil {
			t.Fatalf("%s/output = %q", dir, out.files[dir+"/output"])
		}
		if !gone(child) {
			syscall.Kill(child, syscall.SIGKILL)
			t.Errorf("%s: background child %d still runs after the capture", dir, child)
		}
	}
	if r := execResult(t, out, "exec/2"); r.TimedOut || r.ExitCode == nil || *r.ExitCode != 0 {
		t.Errorf("exec/2 result = %+v, want exit 0", r)
	}
}

func TestExecOutputCap(t *testing.T) {
	out, m := runExec(t, nil, ExecSpec{Command: "head -c 100000 /dev/zero | tr '\\0' x", Timeout: 10 * time.Second, OutputCap: 1000})
	if m.Status != bundle.StatusOK {
		t.Fatalf("module %s: %s", m.Status, m.Reason)
	}
	if got := out.files["exec/1/output"]; len(got) != 1000 || strings.Trim(string(got), "x") != "" {
		t.Errorf("output: %d bytes, want the first 1000", len(got))
	}
	if r := execResult(t, out, "exec/1"); !r.Truncated || r.OutputBytes != 100000 || r.OutputCap != 1000 || r.ExitCode == nil || *r.ExitCode != 0 {
		t.Errorf("result = %+v, want truncated 100000 bytes to 1000", r)
	}
}

func TestExecExitStatus(t *testing.T) {
	out, m := runExec(t, nil,
		ExecSpec{Command: "echo failing; exit 3", Timeout: 10 * time.Second, OutputCap: 1 << 20},
		ExecSpec{Command: "dashcam-no-such-command-xyz", Timeout: 10 * time.Second, OutputCap: 1 << 20},
		ExecSpec{Command: "kill -TERM $$", Timeout: 10 * time.Second, OutputCap: 1 << 20},
	)
	if r := execResult(t, out, "exec/1"); r.ExitCode == nil || *r.ExitCode != 3 || r.Error != "" {
		t.Errorf("exec/1 = %+v, want exit 3", r)
	}
	if r := execResult(t, out, "exec/2"); r.ExitCode == nil || *r.ExitCode != 127 {
		t.Errorf("exec/2 = %+v, want exit 127", r)
	}
	if r := execResult(t, out, "exec/3"); r.ExitCode != nil || r.Signal != "SIGTERM" {
		t.Errorf("exec/3 = %+v, want killed by SIGTERM", r)
	}
	// A failing command is a result; one that cannot be found is a problem.
	if m.Status != bundle.StatusPartial || !strings.Contains(m.Reason, "command not found") || strings.Contains(m.Reason, "exec 1 ") {
		t.Errorf("module = %+v", m)
	}
}

func TestExecStartFailure(t *testing.T) {
	saved := execShell
	execShell = "/nonexistent/sh"
	t.Cleanup(func() { execShell = saved })
	out, m := runExec(t, nil, ExecSpec{Command: "true", Timeout: time.Second, OutputCap: 100})
	r := execResult(t, out, "exec/1")
	if r.Started != nil || r.ExitCode != nil || !strings.Contains(r.Error, "start") {
		t.Errorf("result = %+v, want a start error", r)
	}
	if _, ok := out.files["exec/1/output"]; ok {
		t.Error("output stored for a command that never started")
	}
	if m.Status != bundle.StatusPartial || !strings.Contains(m.Reason, "start") {
		t.Errorf("module = %+v, want partial", m)
	}
}

func TestExecBadMatch(t *testing.T) {
	_, m := runExec(t, []int{os.Getpid()}, ExecSpec{Command: "true", Match: "(", Timeout: time.Second, OutputCap: 100})
	if m.Status != bundle.StatusPartial || !strings.Contains(m.Reason, "--exec-match") {
		t.Errorf("module = %+v, want partial naming --exec-match", m)
	}
}

// TestExecRedactsCommand: a secret typed into --exec does not reach the
// bundle's result, and the redaction is listed.
func TestExecRedactsCommand(t *testing.T) {
	tg := &Target{}
	out := newMemAdder()
	rep := Run(context.Background(), tg, out, RunOptions{Modules: []string{"exec"}, Config: &Config{
		Paths: DefaultPaths(), Exec: []ExecSpec{{Command: "true --password=hunter2", Timeout: time.Second, OutputCap: 100}},
	}})
	if r := execResult(t, out, "exec/1"); strings.Contains(r.Command, "hunter2") {
		t.Errorf("command stored with its secret: %q", r.Command)
	}
	if len(rep.Redactions) != 1 || rep.Redactions[0].Member != "exec/1/result.json" {
		t.Errorf("redactions = %+v", rep.Redactions)
	}
}

func fmtPtr[T any](p *T) string {
	if p == nil {
		return "nil"
	}
	return fmt.Sprint(*p)
}
