package capture

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
)

func init() {
	register("kstacks", true, func(c *Config) Module {
		budget := c.ThreadBudget
		if budget <= 0 {
			budget = DefaultConfig().ThreadBudget
		}
		return &kstacks{paths: c.Paths, budget: budget}
	})
}

// kstacks copies where in the kernel each thread of each target process
// is: task/<tid>/stack (the kernel stack; root only), task/<tid>/wchan
// (the function it sleeps in; readable where the stack is not) and
// task/<tid>/syscall (the syscall number and arguments it is in, or
// "running"), all raw. The thread's state is in task/<tid>/stat, which
// the procs module copies.
//
// At most budget threads are visited (Config.ThreadBudget, in pid then
// tid order); the rest are counted and the module ends partial, naming
// --thread-budget.
//
// The procs module copies task/<tid>/wchan too, for the threads it sees
// in state D. Both modules run at once and a thread can change state in
// between, so neither can know whether the other copied it: both try,
// the bundle refuses the second member of a name (bundle.ErrDuplicate,
// ignored here and there), and either copy is the same kernel file read
// microseconds apart.
type kstacks struct {
	paths  Paths
	budget int
}

// kstackFiles are copied from /proc/<pid>/task/<tid>/, stack first.
var kstackFiles = []string{"stack", "wchan", "syscall"}

func (m *kstacks) Run(ctx context.Context, t *Target, s *Sink) error {
	var (
		visited, skipped, skippedProcs int
		stacks, noStack                int
	)
	for _, pid := range t.Pids {
		if err := ctx.Err(); err != nil {
			return err
		}
		dir := filepath.Join(m.paths.Proc, strconv.Itoa(pid))
		tids, err := listTids(dir)
		if err != nil {
			if isGone(err) && !exists(dir) {
				s.Vanished(pid)
			} else {
				s.fileError("proc/"+strconv.Itoa(pid)+"/task", err)
			}
			continue
		}
		if visited+len(tids) > m.budget {
			skipped += visited + len(tids) - max(m.budget, visited)
			skippedProcs++
			tids = tids[:max(0, m.budget-visited)]
		}
		for _, tid := range tids {
			if err := ctx.Err(); err != nil {
				return err
			}
			visited++
			switch m.thread(dir, pid, tid, s) {
			case stackCopied:
				stacks++
			case stackAbsent:
				noStack++
			}
		}
	}
	if skipped > 0 {
		s.Truncated("thread budget of %d reached: kernel stacks of %d more threads in %d processes not copied (raise it with --thread-budget)",
			m.budget, skipped, skippedProcs)
	}
	if stacks == 0 && noStack > 0 {
		// proc_pid_stack exists only with CONFIG_STACKTRACE.
		return fmt.Errorf("%w: /proc/<pid>/task/<tid>/stack absent: the kernel lacks CONFIG_STACKTRACE (wchan and syscall were copied)", ErrNotSupported)
	}
	return nil
}

// Outcomes of one thread's stack.
const (
	stackOther  = iota // copied nothing: thread gone, or denied
	stackCopied        // task/<tid>/stack copied
	stackAbsent        // the thread is there, its stack file is not
)

// thread copies the kstackFiles of one thread.
func (m *kstacks) thread(dir string, pid, tid int, s *Sink) int {
	var (
		tdir   = filepath.Join(dir, "task", strconv.Itoa(tid))
		member = "proc/" + strconv.Itoa(pid) + "/task/" + strconv.Itoa(tid) + "/"
		out    = stackOther
	)
	for _, name := range kstackFiles {
		// Copy records a denied read (stack needs root, and even root is
		// refused for processes an LSM protects). A missing file is a
		// thread that exited, or, while the thread is there, a kernel
		// without the file (syscall needs CONFIG_HAVE_ARCH_TRACEHOOK).
		// An Add refused as a duplicate is wchan already copied by procs.
		_, err := s.Copy(member+name, filepath.Join(tdir, name))
		if name != "stack" {
			continue
		}
		switch {
		case err == nil:
			out = stackCopied
		case isGone(err) && !exists(tdir):
			return stackOther // exited: nothing else to read
		case isGone(err):
			out = stackAbsent
		}
	}
	return out
}

// listTids lists /proc/<pid>/task, sorted.
func listTids(dir string) ([]int, error) {
	f, err := os.Open(filepath.Join(dir, "task"))
	if err != nil {
		return nil, err
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return nil, err
	}
	tids := make([]int, 0, len(names))
	for _, n := range names {
		if tid, err := strconv.Atoi(n); err == nil {
			tids = append(tids, tid)
		}
	}
	slices.Sort(tids)
	return tids, nil
}
