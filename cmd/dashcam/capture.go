package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/dashcam-dev/dashcam/analyze"
	"github.com/dashcam-dev/dashcam/bundle"
	"github.com/dashcam-dev/dashcam/capture"
)

func init() {
	commands = append(commands, &command{
		name:    "capture",
		summary: "capture a target's state into a bundle now",
		usage:   "dashcam capture [--cgroup PATH | --unit NAME | --pid PID[,PID…]] [-o DIR] [--modules LIST] [--timeout D]",
		example: `dashcam capture                                  # whole host
dashcam capture --unit payment.service           # a systemd unit, with its sub-cgroups
dashcam capture --cgroup /kubepods/burstable/pod1234 -o /var/tmp
dashcam capture --pid 4242,4243 --modules procs,host
dashcam capture --modules=-host --timeout 30s    # defaults without host`,
		flags: captureFlags,
	})
}

func captureFlags(fs *pflag.FlagSet) func(context.Context, []string, io.Writer) error {
	var (
		spec          capture.Spec
		outDir        = fs.StringP("output", "o", ".", "`DIR`ectory to write the bundle into")
		modules       = fs.StringSlice("modules", nil, "modules to run: a `LIST` like procs,cgroup; -name/+name edit the defaults; all ("+strings.Join(capture.ModuleNames(), ", ")+")")
		timeout       = fs.Duration("timeout", time.Minute, "overall capture deadline; modules still running are stopped and marked partial")
		moduleTimeout = fs.Duration("module-timeout", 0, "deadline of each module (default: --timeout)")
		environ       = fs.Bool("environ", false, "also capture process environments (redacted; off by default: they hold secrets)")
		quiet         = fs.BoolP("quiet", "q", false, "print only the bundle path")
		verbose       = fs.BoolP("verbose", "v", false, "log each module as it finishes")
		cfg           = capture.DefaultConfig()
		paths         = &cfg.Paths
		execCmds      = fs.StringArray("exec", nil, "run `CMD` too and keep its output, once or per process matching --exec-match ({pid} is replaced); repeatable")
		execMatch     = fs.String("exec-match", "", "run each --exec once per target process whose comm or cmdline matches `REGEXP`")
		execTimeout   = fs.Duration("exec-timeout", 10*time.Second, "deadline of each --exec command")
		execCap       = fs.Int64("exec-output-cap", 4<<20, "bytes of output kept per --exec command")
	)
	fs.IntVar(&cfg.MemoryTop, "memory-top", cfg.MemoryTop, "full smaps, maps and numa_maps for the `N` processes with the largest RSS")
	fs.Int64Var(&cfg.MemoryBudget, "memory-budget", cfg.MemoryBudget, "at most `BYTES` of full smaps/maps/numa_maps")
	fs.IntVar(&cfg.ThreadBudget, "thread-budget", cfg.ThreadBudget, "kernel stacks of at most `N` threads")
	fs.IntVar(&cfg.KmsgRecords, "kmsg-records", cfg.KmsgRecords, "copy the newest `N` kernel log records")
	fs.StringVar(&spec.Cgroup, "cgroup", "", "capture the cgroup at `PATH` (relative to the cgroup root) and its children")
	fs.StringVar(&spec.Unit, "unit", "", "capture the systemd unit `NAME` (e.g. payment.service) and its children")
	fs.IntSliceVar(&spec.Pids, "pid", nil, "capture the processes `PID[,PID…]`")
	fs.StringVar(&paths.Proc, "path.procfs", paths.Proc, "procfs mount point")
	fs.StringVar(&paths.Sys, "path.sysfs", paths.Sys, "sysfs mount point")
	fs.StringVar(&paths.Cgroup, "path.cgroupfs", paths.Cgroup, "cgroup filesystem root")

	return func(ctx context.Context, args []string, out io.Writer) error {
		if len(args) > 0 {
			return usageErrorf("unexpected argument %q", args[0]).hint("targets are flags: --cgroup, --unit or --pid")
		}
		if n := countSet(spec.Cgroup != "", spec.Unit != "", len(spec.Pids) > 0); n > 1 {
			return usageErrorf("--cgroup, --unit and --pid are mutually exclusive")
		}
		cfg.Environ = *environ
		for _, c := range *execCmds {
			cfg.Exec = append(cfg.Exec, capture.ExecSpec{Command: c, Match: *execMatch, Timeout: *execTimeout, OutputCap: *execCap})
		}
		if len(cfg.Exec) > 0 {
			*modules = append(*modules, "+exec")
		}
		mods, err := capture.SelectModules(*modules)
		if err != nil {
			return usageErrorf("--modules: %v", err)
		}
		if *timeout <= 0 {
			return usageErrorf("--timeout must be positive, got %v", *timeout)
		}
		// Create the output directory itself (not its parents: a typo in
		// the parent path should not scatter directories around).
		if err := os.Mkdir(*outDir, 0o700); err != nil && !errors.Is(err, iofs.ErrExist) {
			return usageErrorf("cannot create output directory %s: %v", *outDir, errors.Unwrap(err)).hint("pass -o with an existing directory or one whose parent exists")
		}
		if fi, err := os.Stat(*outDir); err != nil || !fi.IsDir() {
			return usageErrorf("output %s is not a directory", *outDir)
		}
		level := slog.LevelWarn
		if *verbose {
			level = slog.LevelDebug
		}
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

		// Lower priority before doing any work, so that resolving a big
		// cgroup tree is already cheap for the host.
		prio := capture.LowerPriority()
		target, err := capture.Resolve(*paths, spec, os.Getpid())
		if err != nil {
			return targetError(err, spec)
		}
		if !*quiet {
			fmt.Fprintf(os.Stderr, "dashcam: capturing %s (%d processes) with modules %s\n",
				describeTarget(target), len(target.Pids), strings.Join(mods, ","))
			if os.Geteuid() != 0 {
				fmt.Fprintln(os.Stderr, "dashcam: hint: not running as root: other users' files are unreadable and those modules will be partial")
			}
		}
		res, err := capture.Capture(ctx, capture.Options{
			Config:        cfg,
			Target:        target,
			OutDir:        *outDir,
			Modules:       mods,
			Timeout:       *timeout,
			ModuleTimeout: *moduleTimeout,
			Trigger:       bundle.Trigger{Kind: "manual", Reason: "dashcam capture"},
			ToolVersion:   toolVersion(),
			Priority:      prio,
			Log:           log,
		})
		if errors.Is(err, capture.ErrInterrupted) {
			return &cliError{err: err, code: exitInterrupted}
		}
		if err != nil {
			return failure(err).hint("check that %s is writable and has free space", *outDir)
		}
		if *quiet {
			fmt.Fprintln(out, res.Path)
			return nil
		}
		fmt.Fprintf(os.Stderr, "dashcam: wrote %s\n", res.Path)
		// Read the bundle back: this proves it is complete and prints the
		// same summary an engineer gets from dashcam analyze later.
		rep, err := analyze.Open(res.Path)
		if err != nil {
			return failure(fmt.Errorf("read back %s: %w", res.Path, err))
		}
		if err := rep.WriteText(out); err != nil {
			return failure(err)
		}
		fmt.Fprintf(out, "\nBundle: %s\n", res.Path)
		return nil
	}
}

func countSet(bs ...bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

func describeTarget(t *capture.Target) string {
	if t.Host() {
		return "the whole host"
	}
	return t.Spec.Kind() + " " + t.Spec.String()
}

// targetError turns a resolution error into a usage error with a hint.
func targetError(err error, spec capture.Spec) error {
	switch {
	case errors.Is(err, capture.ErrTargetNotFound):
		e := usageErrorf("%v", err)
		switch spec.Kind() {
		case "unit":
			return e.hint("list units with 'systemctl list-units --type=service', or pass the cgroup path with --cgroup")
		case "cgroup":
			return e.hint("paths are relative to the cgroup root, e.g. --cgroup /system.slice/foo.service (see /proc/PID/cgroup)")
		}
		return e.hint("check the pid with 'ps -p PID'")
	case errors.Is(err, capture.ErrAmbiguousUnit):
		return usageErrorf("%v", err).hint("pass the cgroup path you mean with --cgroup")
	case errors.Is(err, capture.ErrSelfTarget), errors.Is(err, capture.ErrBadSpec):
		return usageErrorf("%v", err)
	}
	return failure(fmt.Errorf("resolve target: %w", err))
}
