package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/dashcam-dev/dashcam/bundle"
	"github.com/dashcam-dev/dashcam/capture"
	"github.com/dashcam-dev/dashcam/trigger"
)

func init() {
	commands = append(commands, &command{
		name:    "arm",
		summary: "watch a target and capture when a trigger fires",
		usage:   "dashcam arm [--cgroup PATH | --unit NAME | --pid PID] [TRIGGERS…] [LIMITS…] [-o DIR]",
		example: `dashcam arm --unit payment.service --cpu 80% --for 30s --oom -o /var/tmp/dashcam
dashcam arm --cgroup /kubepods/burstable/pod1234 --mem 90% --for 10s --psi memory.full.avg10>10
dashcam arm --unit api.service --psi-trigger cpu:some:150ms/2s --dry-run
dashcam arm --unit workers.service --proc-cpu 80% --match python --for 10s
dashcam fire -o /var/tmp/dashcam                 # force a capture now (or: kill -USR1 PID)`,
		flags: armFlags,
	})
	commands = append(commands, &command{
		name:    "fire",
		summary: "make armed dashcams write a bundle now",
		usage:   "dashcam fire [-o DIR] [--reason TEXT]",
		example: `dashcam fire -o /var/tmp/dashcam --reason "customer reports timeouts"`,
		flags:   fireFlags,
	})
}

func armFlags(fs *pflag.FlagSet) func(context.Context, []string, io.Writer) error {
	var (
		s          settings
		cpu        = fs.String("cpu", "", "fire when the cgroup uses `PCT` of its CPU limit (not of the host), e.g. 80%")
		throttle   = fs.String("throttle", "", "fire when `PCT` of the cgroup's CFS periods are throttled")
		mem        = fs.String("mem", "", "fire when memory use reaches `PCT` of the effective limit (before an OOM kill)")
		window     = fs.Duration("for", 30*time.Second, "how long --cpu, --throttle and --mem must hold (sustained, not one sample)")
		psi        = fs.StringArray("psi", nil, "fire on a pressure average, `COND` like memory.full.avg10>10 (polled; repeatable)")
		psiTrigger = fs.StringArray("psi-trigger", nil, "kernel PSI trigger `RES:LINE:STALL/WINDOW`, e.g. memory:some:150ms/2s (repeatable)")
		oom        = fs.Bool("oom", false, "fire on an OOM kill in the target (names the victim)")
		procCPU    = fs.String("proc-cpu", "", "fire when any process (see --match) uses `PCT` of one CPU for --for")
		match      = fs.String("match", "", "with --proc-cpu: only processes whose comm or cmdline matches `REGEXP`")
		cooldown   = fs.Duration("cooldown", trigger.DefaultLimits.Cooldown, "least time between two captures")
		maxBundles = fs.Int("max-bundles", trigger.DefaultLimits.MaxBundles, "most bundles this arm writes, across restarts (0: no limit)")
		rate       = fs.String("rate", "", "at most `N/DURATION` captures, e.g. 3/1h")
		maxSize    = fs.String("max-bundle-size", "", "cap one bundle's raw size (`SIZE`, e.g. 200M): later members are dropped and noted")
		maxDisk    = fs.String("max-disk", "", "total `SIZE` of bundles in the output folder (e.g. 2G)")
		diskFull   = fs.String("disk-full", "stop", "at --max-disk: `stop` capturing, or delete-oldest")
		keepFree   = fs.String("keep-free", "10%", "no capture starts when the output filesystem has less than `PCT` free")
		history    = fs.Duration("history", 5*time.Minute, "how much sampled history each bundle keeps")
		after      = fs.Duration("after", 10*time.Second, "keep sampling this long after a trigger before writing the bundle")
		interval   = fs.Duration("interval", 0, "sampling interval (default 1s, or 2s with only --oom/--psi-trigger)")
		dryRun     = fs.Bool("dry-run", false, "evaluate everything and log what would fire, write nothing")
		logFormat  = fs.String("log-format", "text", "log `FORMAT`: text or json")
		verbose    = fs.BoolP("verbose", "v", false, "also log every sample (debug level)")
	)
	s.register(fs, "watch")

	return func(ctx context.Context, args []string, out io.Writer) error {
		mods, err := s.prepare(args)
		if err != nil {
			return err
		}
		log, err := newLogger(*logFormat, *verbose)
		if err != nil {
			return err
		}
		limits := trigger.Limits{Cooldown: *cooldown, MaxBundles: *maxBundles, DeleteOldest: *diskFull == "delete-oldest"}
		if *diskFull != "stop" && *diskFull != "delete-oldest" {
			return usageErrorf("--disk-full must be stop or delete-oldest, got %q", *diskFull)
		}
		if limits.KeepFree, err = parsePercent("--keep-free", *keepFree); err != nil {
			return err
		}
		if limits.MaxDisk, err = parseSize("--max-disk", *maxDisk); err != nil {
			return err
		}
		maxBundleBytes, err := parseSize("--max-bundle-size", *maxSize)
		if err != nil {
			return err
		}
		if *rate != "" {
			n, d, ok := strings.Cut(*rate, "/")
			count, err1 := strconv.Atoi(n)
			dur, err2 := time.ParseDuration(normalizeDuration(d))
			if !ok || err1 != nil || err2 != nil || count <= 0 || dur <= 0 {
				return usageErrorf("--rate %q: want N/DURATION, e.g. 3/1h", *rate)
			}
			limits.RateCount, limits.RateWindow = count, dur
		}
		if *interval < 0 || *window < 0 {
			return usageErrorf("--interval and --for must not be negative")
		}
		pollInterval := *interval // what polled triggers size their windows by
		if pollInterval == 0 {
			pollInterval = time.Second
		}

		prio := capture.LowerPriority()
		target, err := s.resolve()
		if err != nil {
			return err
		}
		group, err := trigger.NewGroup(s.cfg.Paths, target)
		if err != nil {
			return usageErrorf("%v", err).hint("arm takes a --cgroup or --unit (or nothing, for the host)")
		}
		var pollers []trigger.Poller
		var watchers []trigger.Watcher
		for _, t := range []struct {
			flag, val string
			mk        func(float64, time.Duration, time.Duration) trigger.Poller
		}{{"--cpu", *cpu, trigger.NewCPU}, {"--throttle", *throttle, trigger.NewThrottle}, {"--mem", *mem, trigger.NewMemory}} {
			if t.val == "" {
				continue
			}
			p, err := parsePercent(t.flag, t.val)
			if err != nil {
				return err
			}
			pollers = append(pollers, t.mk(p, *window, pollInterval))
		}
		if *procCPU != "" {
			p, err := parsePercent("--proc-cpu", *procCPU)
			if err != nil {
				return err
			}
			var re *regexp.Regexp
			if *match != "" {
				if re, err = regexp.Compile(*match); err != nil {
					return usageErrorf("--match: %v", err)
				}
			}
			pollers = append(pollers, trigger.NewProcCPU(group, p, re, *window, pollInterval, os.Getpid()))
		} else if *match != "" {
			return usageErrorf("--match goes with --proc-cpu")
		}
		for _, c := range *psi {
			spec, err := trigger.ParsePSISpec(c)
			if err != nil {
				return usageErrorf("--psi: %v", err)
			}
			pollers = append(pollers, trigger.NewPSI(spec, 0, pollInterval))
		}
		extra, err := eventWatchers(group, *psiTrigger, *oom, log)
		if err != nil {
			return err
		}
		watchers = append(watchers, extra...)
		if len(pollers)+len(watchers) == 0 {
			log.Info("no trigger given: only manual captures (dashcam fire, SIGUSR1) will fire")
		}

		key := armKey(target)
		env, err := trigger.OpenEnvelope(s.outDir, key, limits)
		if err != nil {
			return failure(err)
		}
		pidFile := filepath.Join(s.outDir, ".dashcam-arm-"+key+".pid")
		if !*dryRun {
			if err := os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
				return failure(fmt.Errorf("write %s: %w", pidFile, err))
			}
			defer os.Remove(pidFile)
		}
		fire := make(chan string, 1)
		usr1 := make(chan os.Signal, 1)
		signal.Notify(usr1, syscall.SIGUSR1)
		defer signal.Stop(usr1)
		go func() {
			for range usr1 {
				reason := "SIGUSR1"
				if b, err := os.ReadFile(pidFile + ".reason"); err == nil {
					reason = strings.TrimSpace(string(b))
					os.Remove(pidFile + ".reason")
				}
				select {
				case fire <- reason:
				default:
				}
			}
		}()
		cpuLimit, memLimit := group.CPULimit(), group.MemoryLimit()
		log.Info("armed", "target", describeTarget(target), "cgroup", group.Path, "processes", len(target.Pids),
			"cpu_limit", cpuLimit.Source, "memory_limit", memLimit.Source, "triggers", triggerNames(pollers, watchers),
			"bundles_so_far", env.Count(), "output", s.outDir, "dry_run", *dryRun)

		return trigger.Arm(ctx, trigger.Config{
			Group: group, Pollers: pollers, Watchers: watchers, Interval: *interval,
			History: *history, After: *after, Envelope: env, DryRun: *dryRun, Fire: fire,
			Self: os.Getpid(), Log: log,
			Capture: func(ctx context.Context, ev trigger.Event, history func() []*trigger.Sample) (string, error) {
				// Re-resolve: the processes have changed since arming.
				t, err := s.resolve()
				if err != nil {
					return "", err
				}
				res, err := capture.Capture(ctx, capture.Options{
					Config: s.cfg, Target: t, OutDir: s.outDir, Modules: mods,
					Timeout: s.timeout, ModuleTimeout: s.moduleTimeout,
					Trigger:     bundle.Trigger{Kind: ev.Kind, Reason: ev.Reason, Time: &ev.Time, Evidence: ev.Evidence},
					ToolVersion: toolVersion(), Priority: prio, MaxBundleBytes: maxBundleBytes, Log: log,
					Finish: func(context.Context) map[string][]byte {
						return map[string][]byte{trigger.HistoryMember: trigger.EncodeHistory(history())}
					},
				})
				if err != nil {
					return "", err
				}
				return res.Path, nil
			},
		})
	}
}

// eventWatchers builds the event-driven watchers.
func eventWatchers(g *trigger.Group, psiTriggers []string, oom bool, log *slog.Logger) ([]trigger.Watcher, error) {
	var ws []trigger.Watcher
	for _, s := range psiTriggers {
		spec, err := trigger.ParsePSITrigger(s)
		if err != nil {
			return nil, usageErrorf("--psi-trigger: %v", err)
		}
		ws = append(ws, trigger.NewPSITrigger(g, spec, log))
	}
	if oom {
		ws = append(ws, trigger.NewOOM(g, log))
	}
	return ws, nil
}

func triggerNames(ps []trigger.Poller, ws []trigger.Watcher) string {
	var names []string
	for _, p := range ps {
		names = append(names, p.Name())
	}
	for _, w := range ws {
		names = append(names, w.Name())
	}
	if len(names) == 0 {
		return "manual"
	}
	return strings.Join(names, ",")
}

// armKey names an arm's state and pid files after its target.
func armKey(t *capture.Target) string {
	return strings.TrimSuffix(strings.TrimPrefix(capture.FileName("h", t.Spec, time.Time{}, "x"), "dashcam-h-"), "-00010101T000000Z-x.tar.zst")
}

// newLogger logs text for people (on a terminal or not) or JSON for
// journald and log collectors.
func newLogger(format string, verbose bool) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: slog.LevelInfo}
	if verbose {
		opts.Level = slog.LevelDebug
	}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, usageErrorf("--log-format must be text or json, got %q", format)
}

// parsePercent parses "80%" or "80" into 80.
func parsePercent(flag, s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(s), "%"), 64)
	if err != nil || v < 0 || v > 1000 {
		return 0, usageErrorf("%s %q: want a percentage like 80%%", flag, s)
	}
	return v, nil
}

// parseSize parses "500M", "2G", "1048576" (bytes); "" is 0.
func parseSize(flag, s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	mult := int64(1)
	num := strings.TrimSuffix(strings.ToUpper(strings.TrimSpace(s)), "B")
	num = strings.TrimSuffix(num, "I")
	for suffix, m := range map[string]int64{"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40} {
		if strings.HasSuffix(num, suffix) {
			num, mult = strings.TrimSuffix(num, suffix), m
		}
	}
	v, err := strconv.ParseInt(num, 10, 64)
	if err != nil || v < 0 {
		return 0, usageErrorf("%s %q: want a size like 500M or 2G", flag, s)
	}
	return v * mult, nil
}

// normalizeDuration lets "1h" and "h" both mean an hour in --rate.
func normalizeDuration(s string) string {
	if s != "" && (s[0] < '0' || s[0] > '9') {
		return "1" + s
	}
	return s
}

func fireFlags(fs *pflag.FlagSet) func(context.Context, []string, io.Writer) error {
	dir := fs.StringP("output", "o", ".", "the armed dashcam's output `DIR`ectory")
	reason := fs.String("reason", "dashcam fire", "why, recorded as the trigger reason")
	return func(_ context.Context, args []string, out io.Writer) error {
		if len(args) > 0 {
			return usageErrorf("unexpected argument %q", args[0])
		}
		pids, _ := filepath.Glob(filepath.Join(*dir, ".dashcam-arm-*.pid"))
		if len(pids) == 0 {
			return usageErrorf("no armed dashcam writes to %s", *dir).hint("pass the arm's -o DIR, or send SIGUSR1 to its pid")
		}
		fired := 0
		for _, f := range pids {
			b, err := os.ReadFile(f)
			pid, err2 := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil || err2 != nil || !isArmed(pid) {
				fmt.Fprintf(os.Stderr, "dashcam: stale %s (no armed dashcam with that pid)\n", f)
				continue
			}
			_ = os.WriteFile(f+".reason", []byte(*reason), 0o600)
			if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
				return failure(fmt.Errorf("signal pid %d: %w", pid, err))
			}
			fmt.Fprintf(out, "fired dashcam arm pid %d\n", pid)
			fired++
		}
		if fired == 0 {
			return failure(errors.New("no live armed dashcam found"))
		}
		return nil
	}
}

// isArmed reports whether pid is a running "dashcam arm".
func isArmed(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	args := strings.Split(string(b), "\x00")
	for _, a := range args {
		if a == "arm" {
			return true
		}
	}
	return false
}
