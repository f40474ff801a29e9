package analyze

import (
	"bytes"
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dashcam-dev/dashcam/bundle"
	"github.com/dashcam-dev/dashcam/capture"
)

func TestExecSection(t *testing.T) {
	files := fixtureFiles()
	files["exec/1-120/result.json"] = []byte(`{"version": 1, "index": 1, "command": "jcmd 120 Thread.print", "match": "db",
 "pid": 120, "comm": "db", "started": "2025-03-01T12:00:00.5Z", "duration_seconds": 0.82, "timeout_seconds": 10,
 "exit_code": 0, "timed_out": false, "output_bytes": 5000000, "output_cap": 4194304, "truncated": true, "nice": 10}`)
	files["exec/1-120/output"] = []byte("120:\n\n2025-03-01 12:00:00\nFull thread dump OpenJDK 64-Bit Server VM (21.0.2+13):\n\"main\" #1 prio=5\n\x1b[31mred\n" +
		strings.Repeat("y", 300) + "\nnot shown\n")
	files["exec/2/result.json"] = []byte(`{"version": 1, "index": 2, "command": "sleep 100", "pid": null,
 "started": "2025-03-01T12:00:01Z", "duration_seconds": 10.01, "timeout_seconds": 10, "exit_code": null,
 "signal": "SIGKILL", "timed_out": true, "output_bytes": 0, "output_cap": 4194304, "truncated": false, "nice": 10}`)
	files["exec/2/output"] = []byte{}
	files["exec/3/result.json"] = []byte(`{"version": 1, "index": 3, "command": "true", "pid": null, "started": null,
 "exit_code": null, "error": "start: fork/exec /bin/sh: no such file or directory", "output_cap": 100}`)
	files["exec/4/result.json"] = []byte(`{"version": 7}`)
	files["exec/5/result.json"] = []byte(`not json`)
	r := load(t, bundle.New(fixtureManifest(), files))
	if r.Exec == nil || len(r.Exec.Runs) != 3 {
		t.Fatalf("exec = %+v, want 3 runs", r.Exec)
	}
	jc := r.Exec.Runs[0]
	if jc.Dir != "exec/1-120" || jc.Pid == nil || *jc.Pid != 120 || jc.ExitCode == nil || *jc.ExitCode != 0 || !jc.Truncated ||
		len(jc.Head) != 5 || jc.Head[0] != "120:" || jc.Head[4] != "\x1b[31mred" {
		t.Errorf("jcmd run = %+v", jc)
	}
	if to := r.Exec.Runs[1]; to.Pid != nil || !to.TimedOut || to.Signal != "SIGKILL" || len(to.Head) != 0 {
		t.Errorf("timed-out run = %+v", to)
	}
	var probs []string
	for _, p := range r.Problems {
		if strings.HasPrefix(p.Path, "exec/") {
			probs = append(probs, p.Path)
		}
	}
	if strings.Join(probs, " ") != "exec/4/result.json exec/5/result.json" {
		t.Errorf("problems = %+v", r.Problems)
	}

	var txt, mdown bytes.Buffer
	r.WriteText(&txt)
	r.WriteMarkdown(&mdown)
	for _, want := range []string{
		"  [1] jcmd 120 Thread.print\n    pid 120 (db), exit 0 in 0.82s, 4.77 MiB of output, truncated to the first 4.00 MiB (exec/1-120)\n    | 120:\n    | 2025-03-01 12:00:00\n",
		`    | \x1b[31mred`,
		"  [2] sleep 100\n    once, killed by SIGKILL (timed out) in 10.01s",
		"did not start: start: fork/exec /bin/sh: no such file or directory",
	} {
		if !strings.Contains(txt.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, txt.String())
		}
	}
	if strings.Contains(txt.String(), "\x1b") || strings.Contains(mdown.String(), "\x1b") {
		t.Error("an escape sequence from the output reached the report")
	}
	if !strings.Contains(mdown.String(), "## Exec\n\n- **[1]** `jcmd 120 Thread.print`: pid 120 (db), exit 0") {
		t.Errorf("markdown:\n%s", mdown.String())
	}
}

func TestExecSectionAbsent(t *testing.T) {
	if r := load(t, fixtureBundle()); r.Exec != nil {
		t.Errorf("exec = %+v", r.Exec)
	}
}

// TestExecLive runs a per-process command through a real capture and
// reads it back.
func TestExecLive(t *testing.T) {
	cmd := exec.Command("sleep", "1003")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	pid := cmd.Process.Pid
	// os/exec returns once the child's execve released the parent's
	// memory (vfork), which is before the kernel renames it: its comm can
	// still be the test binary's for a moment.
	waitComm(t, pid, "sleep")
	tg := &capture.Target{Spec: capture.Spec{Pids: []int{pid}}, Pids: []int{pid}}
	cfg := capture.DefaultConfig()
	cfg.Exec = []capture.ExecSpec{
		{Command: "echo hello {pid}; exit 4", Match: "^sleep$", Timeout: 10 * time.Second, OutputCap: 1 << 20},
		{Command: "echo once", Timeout: 10 * time.Second, OutputCap: 1 << 20},
	}
	res, err := capture.Capture(context.Background(), capture.Options{
		Config: cfg, Target: tg, OutDir: t.TempDir(), Modules: []string{"exec"}, Trigger: bundle.Trigger{Kind: "manual"},
	})
	if err != nil {
		t.Fatal(err)
	}
	r, err := Open(res.Path)
	if err != nil {
		t.Fatal(err)
	}
	if r.Exec == nil || len(r.Exec.Runs) != 2 {
		t.Fatalf("exec = %+v\nmodules: %+v", r.Exec, res.Manifest.Modules)
	}
	first, second := r.Exec.Runs[0], r.Exec.Runs[1]
	if first.Pid == nil || *first.Pid != pid || first.Comm != "sleep" || first.ExitCode == nil || *first.ExitCode != 4 ||
		len(first.Head) != 1 || first.Head[0] != "hello "+strconv.Itoa(pid) || first.Started == nil || first.Started.Sub(time.Now()).Abs() > time.Minute {
		t.Errorf("first run = %+v", first)
	}
	if second.Pid != nil || second.Index != 2 || len(second.Head) != 1 || second.Head[0] != "once" {
		t.Errorf("second run = %+v", second)
	}
}
