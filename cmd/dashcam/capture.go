package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

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
	var s settings
	s.register(fs, "capture")
	quiet := fs.BoolP("quiet", "q", false, "print only the bundle path")
	verbose := fs.BoolP("verbose", "v", false, "log each module as it finishes")
	cpuProfile := fs.String("debug.cpuprofile", "", "write a CPU profile of dashcam itself to `FILE`")
	memProfile := fs.String("debug.memprofile", "", "write a heap profile of dashcam itself to `FILE` after the capture")
	_ = fs.MarkHidden("debug.cpuprofile")
	_ = fs.MarkHidden("debug.memprofile")

	return func(ctx context.Context, args []string, out io.Writer) error {
		mods, err := s.prepare(args)
		if err != nil {
			return err
		}
		stop, err := profile(*cpuProfile, *memProfile)
		if err != nil {
			return failure(err)
		}
		defer stop()
		level := slog.LevelWarn
		if *verbose {
			level = slog.LevelDebug
		}
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

		// Lower priority before doing any work, so that resolving a big
		// cgroup tree is already cheap for the host.
		prio := capture.LowerPriority()
		target, err := s.resolve()
		if err != nil {
			return err
		}
		if !*quiet {
			fmt.Fprintf(os.Stderr, "dashcam: capturing %s (%d processes) with modules %s\n",
				describeTarget(target), len(target.Pids), strings.Join(mods, ","))
			if os.Geteuid() != 0 {
				fmt.Fprintln(os.Stderr, "dashcam: hint: not running as root: other users' files are unreadable and those modules will be partial")
			}
		}
		res, err := capture.Capture(ctx, capture.Options{
			Config:        s.cfg,
			Target:        target,
			OutDir:        s.outDir,
			Modules:       mods,
			Timeout:       s.timeout,
			ModuleTimeout: s.moduleTimeout,
			Trigger:       bundle.Trigger{Kind: "manual", Reason: "dashcam capture"},
			ToolVersion:   toolVersion(),
			Priority:      prio,
			Log:           log,
		})
		if errors.Is(err, capture.ErrInterrupted) {
			return &cliError{err: err, code: exitInterrupted}
		}
		if err != nil {
			return failure(err).hint("check that %s is writable and has free space", s.outDir)
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
