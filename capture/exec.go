package capture

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dashcam-dev/dashcam/capture/redact"
)

func init() {
	register("exec", false, func(c *Config) Module { return &execModule{paths: c.Paths, specs: c.Exec} })
}

// execModule runs the user's --exec commands: the escape hatch for what
// only a process's own runtime can tell (jcmd {pid} Thread.print,
// py-spy dump --pid {pid}, gdb -p {pid} -batch -ex 'thread apply all bt').
//
// Each command runs through /bin/sh -c, once, or once per target process
// whose comm or command line matches ExecSpec.Match, with {pid} replaced
// by the pid. Only the pid, an integer, is ever put into the command:
// never comm or cmdline, which whoever started the process chose. When
// Match is empty but the command holds {pid}, it runs once per target
// process (for a --pid, --unit or --cgroup target; not for the host).
//
// Commands run one after another, each in its own process group, with
// stdin /dev/null, at nice +10 in the idle IO class, with a timeout after
// which the whole group is killed, as is anything the command leaves
// running in its group when it exits. The first OutputCap bytes of
// stdout and stderr (interleaved, as written) are kept.
//
// Members, n being the command's position among the --exec flags from 1:
//
//	exec/<n>/output, exec/<n>/result.json              run once
//	exec/<n>-<pid>/output, exec/<n>-<pid>/result.json  per process
type execModule struct {
	paths Paths
	specs []ExecSpec
}

// ExecResultName is the file name of an exec result in its directory.
const ExecResultName = "result.json"

// Defaults for an ExecSpec without Timeout or OutputCap.
const (
	defaultExecTimeout   = 10 * time.Second
	defaultExecOutputCap = 4 << 20
)

// execShell runs the commands; a variable for tests.
var execShell = "/bin/sh"

// maxExecPerCommand bounds how many processes one command runs for: a
// loose --exec-match on a big target must not run hundreds of debuggers.
const maxExecPerCommand = 20

// execWaitDelay bounds the wait for the output pipe to close once the
// process group is dead: a process that left the group (setsid) may still
// hold it, and is not ours to kill.
const execWaitDelay = 2 * time.Second

// ExecResult is the JSON layout of exec/…/result.json (version 1).
type ExecResult struct {
	Version int `json:"version"`
	// Index is the command's position among the --exec flags, from 1.
	Index int `json:"index"`
	// Command is what ran, {pid} replaced, secrets redacted.
	Command string `json:"command"`
	Match   string `json:"match,omitempty"`
	// Pid and Comm are the process it ran for; Pid is null when it ran once.
	Pid  *int   `json:"pid"`
	Comm string `json:"comm,omitempty"`
	// Started is when it started, in UTC; null when it never did.
	Started         *time.Time `json:"started"`
	DurationSeconds float64    `json:"duration_seconds"`
	TimeoutSeconds  float64    `json:"timeout_seconds"`
	// ExitCode is the shell's exit status; null when it was killed by a
	// signal (Signal, e.g. "SIGKILL") or never started (Error).
	ExitCode *int   `json:"exit_code"`
	Signal   string `json:"signal,omitempty"`
	TimedOut bool   `json:"timed_out"`
	Error    string `json:"error,omitempty"`
	// OutputBytes is how much the command wrote; the first OutputCap of
	// them are in the output member, and Truncated says some were not.
	OutputBytes int64 `json:"output_bytes"`
	OutputCap   int64 `json:"output_cap"`
	Truncated   bool  `json:"truncated"`
	// Nice is the command's nice value as read back after it started;
	// null when it could not be read.
	Nice *int `json:"nice"`
}

func (m *execModule) Run(ctx context.Context, t *Target, s *Sink) error {
	if len(m.specs) == 0 {
		return fmt.Errorf("%w: no command to run (give one with --exec CMD)", ErrNotSupported)
	}
	// A child inherits the nice value and IO priority of the thread that
	// forks it, and os/exec forks from the calling thread: so commands
	// start from a thread of their own, lowered. It is never unlocked, so
	// it exits with this goroutine instead of going back, lowered, to the
	// runtime's pool (and SysProcAttr.Pdeathsig, which fires when the
	// forking thread exits, then cannot fire early).
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := lowerThread(); err != nil {
			s.Problem("exec: lower priority: %v", err)
		}
		done <- m.runAll(ctx, t, s)
	}()
	return <-done
}

// lowerThread sets the calling thread to nice CaptureNice (unless it is
// already lower) and the idle IO class.
func lowerThread() error {
	tid := unix.Gettid()
	var errs []error
	// getpriority(2) returns 20 - nice.
	if cur, err := unix.Getpriority(unix.PRIO_PROCESS, tid); err != nil || 20-cur < CaptureNice {
		errs = append(errs, unix.Setpriority(unix.PRIO_PROCESS, tid, CaptureNice))
	}
	if _, _, e := unix.Syscall(unix.SYS_IOPRIO_SET, ioprioWhoProcess, uintptr(tid), ioprioClassIdle<<ioprioClassShift); e != 0 {
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}

func (m *execModule) runAll(ctx context.Context, t *Target, s *Sink) error {
	for i, spec := range m.specs {
		n := i + 1
		if spec.Timeout <= 0 {
			spec.Timeout = defaultExecTimeout
		}
		if spec.OutputCap <= 0 {
			spec.OutputCap = defaultExecOutputCap
		}
		perPid := spec.Match != "" || strings.Contains(spec.Command, "{pid}")
		if !perPid {
			m.runOne(ctx, s, spec, n, "exec/"+strconv.Itoa(n)+"/", nil, "")
		} else {
			procs, err := m.matches(t, spec)
			if err != nil {
				s.Problem("exec %d: %v", n, err)
				continue
			}
			if len(procs) > maxExecPerCommand {
				s.Problem("exec %d: %d processes match, ran it for the first %d", n, len(procs), maxExecPerCommand)
				procs = procs[:maxExecPerCommand]
			}
			for _, p := range procs {
				if ctx.Err() != nil {
					break
				}
				m.runOne(ctx, s, spec, n, fmt.Sprintf("exec/%d-%d/", n, p.pid), &p.pid, p.comm)
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

type execTarget struct {
	pid  int
	comm string
}

// matches lists the target processes a per-process command runs for:
// those whose comm or command line (arguments joined by spaces) matches
// spec.Match, every target process when Match is empty. Kernel threads
// (PF_KTHREAD) and zombies never match.
func (m *execModule) matches(t *Target, spec ExecSpec) ([]execTarget, error) {
	if spec.Match == "" && t.Host() {
		return nil, errors.New("{pid} without --exec-match on a host target would run for every process; give --exec-match REGEXP")
	}
	re, err := regexp.Compile(spec.Match)
	if err != nil {
		return nil, fmt.Errorf("--exec-match: %w", err)
	}
	var out []execTarget
	for _, pid := range t.Pids {
		dir := filepath.Join(m.paths.Proc, strconv.Itoa(pid))
		raw, err := readFile(filepath.Join(dir, "stat"))
		if err != nil {
			continue // gone, or not ours to see: the procs module says so
		}
		st, err := parseStat(raw)
		if err != nil || st.Flags&pfKthread != 0 || st.State == "Z" || st.State == "X" {
			continue
		}
		// A process in the middle of execve has its new comm before its
		// new command line (empty until the kernel lays out the arguments),
		// so comm alone may match.
		cmdline, _ := readFile(filepath.Join(dir, "cmdline"))
		args := strings.TrimRight(strings.ReplaceAll(string(cmdline), "\x00", " "), " ")
		if re.MatchString(st.Comm) || (args != "" && re.MatchString(args)) {
			out = append(out, execTarget{pid: pid, comm: st.Comm})
		}
	}
	return out, nil
}

// runOne runs one command and stores its output and result under dir.
func (m *execModule) runOne(ctx context.Context, s *Sink, spec ExecSpec, n int, dir string, pid *int, comm string) {
	command := spec.Command
	if pid != nil {
		// An integer: safe to put in a shell command.
		command = strings.ReplaceAll(command, "{pid}", strconv.Itoa(*pid))
	}
	res := ExecResult{
		Version: 1, Index: n, Match: spec.Match, Pid: pid, Comm: comm,
		TimeoutSeconds: spec.Timeout.Seconds(), OutputCap: spec.OutputCap,
	}
	// The command line is stored redacted, as a process's would be.
	args, hits := redact.Args([]string{"/bin/sh", "-c", command})
	res.Command = args[2]
	for _, h := range hits {
		p := 0
		if pid != nil {
			p = *pid
		}
		s.Redacted(p, dir+ExecResultName, h.Rule, h.Count)
	}

	out := &cappedBuffer{limit: spec.OutputCap}
	runCommand(ctx, command, spec.Timeout, out, &res)
	res.OutputBytes, res.Truncated = out.total, out.total > spec.OutputCap

	label := fmt.Sprintf("exec %d (%s)", n, strings.TrimSuffix(dir, "/"))
	switch {
	case res.Error != "":
		s.Problem("%s: %s", label, res.Error)
	case res.TimedOut:
		s.Problem("%s: timed out after %v; its process group was killed", label, spec.Timeout)
	case res.ExitCode != nil && *res.ExitCode == 127:
		s.Problem("%s: command not found (exit 127)", label)
	case res.ExitCode != nil && *res.ExitCode == 126:
		s.Problem("%s: command not executable (exit 126)", label)
	}
	if res.Started != nil {
		if err := s.Add(dir+"output", out.Bytes()); err != nil {
			return
		}
	}
	data, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		s.Problem("%s: %v", label, err)
		return
	}
	_ = s.Add(dir+ExecResultName, data)
}

// runCommand runs command through /bin/sh -c in a new process group and
// fills in res. After the shell exits, or when it runs out of time, or
// when ctx ends, the process group is killed with SIGKILL.
func runCommand(ctx context.Context, command string, timeout time.Duration, out *cappedBuffer, res *ExecResult) {
	cmd := exec.Command(execShell, "-c", command)
	// Stdin nil is /dev/null. Setpgid makes the shell the leader of a new
	// group, so it and everything it starts can be killed at once;
	// Pdeathsig kills the shell should dashcam die first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Stdout, cmd.Stderr = out, out // one pipe: output stays in the order written
	cmd.WaitDelay = execWaitDelay
	start := time.Now()
	if err := cmd.Start(); err != nil {
		res.Error = "start: " + err.Error()
		return
	}
	started := start.UTC()
	res.Started = &started
	pgid := cmd.Process.Pid
	if nice, err := readNice(pgid); err == nil {
		res.Nice = &nice
	}

	// Wait for the shell to exit without reaping it (WNOWAIT): while it is
	// a zombie its pid cannot be reused, so -pgid below still names the
	// command's group and nothing else.
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		var si unix.Siginfo
		for unix.Waitid(unix.P_PID, pgid, &si, unix.WEXITED|unix.WNOWAIT, nil) == unix.EINTR {
		}
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-exited:
	case <-timer.C:
		res.TimedOut = true
	case <-ctx.Done():
		res.Error = "stopped by the capture deadline: " + ctx.Err().Error()
	}
	_ = unix.Kill(-pgid, unix.SIGKILL)
	err := cmd.Wait()
	res.DurationSeconds = time.Since(start).Seconds()
	if errors.Is(err, exec.ErrWaitDelay) && res.Error == "" {
		res.Error = "output still open after the command's process group was killed: a process that left the group (setsid) holds it"
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok {
		switch {
		case ws.Exited():
			code := ws.ExitStatus()
			res.ExitCode = &code
		case ws.Signaled():
			res.Signal = unix.SignalName(ws.Signal())
		}
	}
}

// readNice reads field 19 (nice) of the live /proc/<pid>/stat: commands
// run on this machine, whatever tree the capture reads.
func readNice(pid int) (int, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	f := bytes.Fields(b[bytes.LastIndexByte(b, ')')+1:])
	if len(f) < 17 {
		return 0, fmt.Errorf("stat: %d fields after comm", len(f))
	}
	return strconv.Atoi(string(f[16]))
}

// cappedBuffer keeps the first limit bytes written and counts the rest,
// always accepting the write so the command never blocks on a full pipe.
type cappedBuffer struct {
	mu    sync.Mutex
	limit int64
	buf   bytes.Buffer
	total int64
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.limit - int64(b.buf.Len()); room > 0 {
		b.buf.Write(p[:min(int64(len(p)), room)])
	}
	b.total += int64(len(p))
	return len(p), nil
}

func (b *cappedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}
