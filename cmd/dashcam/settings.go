package main

import (
	"errors"
	iofs "io/fs"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/dashcam-dev/dashcam/capture"
)

// settings are the flags capture and arm share: the target, where bundles
// go, which modules run, and their budgets.
type settings struct {
	spec          capture.Spec
	cfg           capture.Config
	outDir        string
	modules       []string
	timeout       time.Duration
	moduleTimeout time.Duration
	environ       bool
	execCmds      []string
	execMatch     string
	execTimeout   time.Duration
	execCap       int64
}

// register adds the shared flags; verb is "capture" or "watch" for help.
func (s *settings) register(fs *pflag.FlagSet, verb string) {
	s.cfg = capture.DefaultConfig()
	p := &s.cfg.Paths
	fs.StringVar(&s.spec.Cgroup, "cgroup", "", verb+" the cgroup at `PATH` (relative to the cgroup root) and its children")
	fs.StringVar(&s.spec.Unit, "unit", "", verb+" the systemd unit `NAME` (e.g. payment.service) and its children")
	fs.IntSliceVar(&s.spec.Pids, "pid", nil, verb+" the processes `PID[,PID…]`")
	fs.StringVarP(&s.outDir, "output", "o", ".", "`DIR`ectory to write bundles into (created if its parent exists)")
	fs.StringSliceVar(&s.modules, "modules", nil, "modules to run: a `LIST` like procs,cgroup; -name/+name edit the defaults; all ("+strings.Join(capture.ModuleNames(), ", ")+")")
	fs.DurationVar(&s.timeout, "timeout", time.Minute, "overall capture deadline; modules still running are stopped and marked partial")
	fs.DurationVar(&s.moduleTimeout, "module-timeout", 0, "deadline of each module (default: --timeout)")
	fs.BoolVar(&s.environ, "environ", false, "also capture process environments (redacted; off by default: they hold secrets)")
	fs.IntVar(&s.cfg.MemoryTop, "memory-top", s.cfg.MemoryTop, "full smaps, maps and numa_maps for the `N` processes with the largest RSS")
	fs.Int64Var(&s.cfg.MemoryBudget, "memory-budget", s.cfg.MemoryBudget, "at most `BYTES` of full smaps/maps/numa_maps")
	fs.IntVar(&s.cfg.ThreadBudget, "thread-budget", s.cfg.ThreadBudget, "kernel stacks of at most `N` threads")
	fs.IntVar(&s.cfg.KmsgRecords, "kmsg-records", s.cfg.KmsgRecords, "copy the newest `N` kernel log records")
	fs.StringArrayVar(&s.execCmds, "exec", nil, "run `CMD` too and keep its output, once or per process matching --exec-match ({pid} is replaced); repeatable")
	fs.StringVar(&s.execMatch, "exec-match", "", "run each --exec once per target process whose comm or cmdline matches `REGEXP`")
	fs.DurationVar(&s.execTimeout, "exec-timeout", 10*time.Second, "deadline of each --exec command")
	fs.Int64Var(&s.execCap, "exec-output-cap", 4<<20, "bytes of output kept per --exec command")
	fs.StringVar(&p.Proc, "path.procfs", p.Proc, "procfs mount point")
	fs.StringVar(&p.Sys, "path.sysfs", p.Sys, "sysfs mount point")
	fs.StringVar(&p.Cgroup, "path.cgroupfs", p.Cgroup, "cgroup filesystem root")
}

// prepare validates the flags, creates the output directory and returns
// the modules to run.
func (s *settings) prepare(args []string) ([]string, error) {
	if len(args) > 0 {
		return nil, usageErrorf("unexpected argument %q", args[0]).hint("targets are flags: --cgroup, --unit or --pid")
	}
	if n := countSet(s.spec.Cgroup != "", s.spec.Unit != "", len(s.spec.Pids) > 0); n > 1 {
		return nil, usageErrorf("--cgroup, --unit and --pid are mutually exclusive")
	}
	s.cfg.Environ = s.environ
	for _, c := range s.execCmds {
		s.cfg.Exec = append(s.cfg.Exec, capture.ExecSpec{Command: c, Match: s.execMatch, Timeout: s.execTimeout, OutputCap: s.execCap})
	}
	modules := s.modules
	if len(s.cfg.Exec) > 0 {
		modules = append(modules, "+exec")
	}
	mods, err := capture.SelectModules(modules)
	if err != nil {
		return nil, usageErrorf("--modules: %v", err)
	}
	if s.timeout <= 0 {
		return nil, usageErrorf("--timeout must be positive, got %v", s.timeout)
	}
	// Create the output directory itself (not its parents: a typo in the
	// parent path should not scatter directories around).
	if err := os.Mkdir(s.outDir, 0o700); err != nil && !errors.Is(err, iofs.ErrExist) {
		return nil, usageErrorf("cannot create output directory %s: %v", s.outDir, errors.Unwrap(err)).hint("pass -o with an existing directory or one whose parent exists")
	}
	if fi, err := os.Stat(s.outDir); err != nil || !fi.IsDir() {
		return nil, usageErrorf("output %s is not a directory", s.outDir)
	}
	return mods, nil
}

// resolve finds the target, turning resolution errors into usage errors.
func (s *settings) resolve() (*capture.Target, error) {
	t, err := capture.Resolve(s.cfg.Paths, s.spec, os.Getpid())
	if err != nil {
		return nil, targetError(err, s.spec)
	}
	return t, nil
}
