package capture

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dashcam-dev/dashcam/internal/cpulist"

	"golang.org/x/sys/unix"

	"github.com/dashcam-dev/dashcam/bundle"
)

// Options describe one capture.
type Options struct {
	Config  Config
	Target  *Target
	OutDir  string
	Modules []string
	// Timeout bounds the whole capture; modules still running then are
	// stopped and marked partial, and the bundle is written anyway.
	Timeout time.Duration
	// ModuleTimeout bounds each module (0: Timeout only).
	ModuleTimeout time.Duration
	Trigger       bundle.Trigger
	ToolVersion   string
	// Priority, when set, is recorded as how the capture lowered itself.
	Priority *bundle.Priority
	// MaxBundleBytes caps the raw bytes of the bundle: past it, modules'
	// further members are dropped and those modules marked partial.
	MaxBundleBytes int64
	// Finish, when set, runs after the modules and before the bundle is
	// committed; the members it returns are added (the arm loop's history
	// ring, which keeps filling while the modules run).
	Finish func(ctx context.Context) map[string][]byte
	Log    *slog.Logger
}

// cappedAdder drops members once the raw bytes reach max.
type cappedAdder struct {
	w       *bundle.Writer
	max     int64
	mu      sync.Mutex
	dropped int
}

// ErrBundleFull is returned for members past Options.MaxBundleBytes.
var ErrBundleFull = errors.New("bundle size cap reached")

func (c *cappedAdder) Add(name string, data []byte) error {
	if c.w.Bytes()+int64(len(data)) > c.max {
		c.mu.Lock()
		c.dropped++
		c.mu.Unlock()
		return ErrBundleFull
	}
	return c.w.Add(name, data)
}

// Result is a written bundle.
type Result struct {
	Path     string
	Manifest *bundle.Manifest
}

// ErrInterrupted means the capture was cancelled (a signal) and no bundle
// was written.
var ErrInterrupted = errors.New("capture interrupted; no bundle written")

// Capture runs the modules against the target and writes one bundle into
// OutDir. Cancelling ctx abandons the capture and leaves no bundle; the
// Timeout instead ends modules early and still writes what they found.
func Capture(ctx context.Context, o Options) (*Result, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	started := time.Now().UTC()
	w, err := bundle.Create(o.OutDir)
	if err != nil {
		return nil, fmt.Errorf("create bundle in %s: %w", o.OutDir, err)
	}
	defer w.Abort() // no-op after Commit

	runCtx := ctx
	if o.Timeout > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, o.Timeout)
		defer cancel()
	}
	var out Adder = w
	if o.MaxBundleBytes > 0 {
		out = &cappedAdder{w: w, max: o.MaxBundleBytes}
	}
	rep := Run(runCtx, o.Target, out, RunOptions{
		Modules: o.Modules, ModuleTimeout: o.ModuleTimeout, Config: &o.Config, Log: o.Log,
	})
	if ctx.Err() != nil {
		return nil, ErrInterrupted
	}
	var notes []string
	if o.Finish != nil {
		extra := o.Finish(ctx)
		names := make([]string, 0, len(extra))
		for name := range extra {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			if err := w.Add(name, extra[name]); err != nil {
				notes = append(notes, fmt.Sprintf("could not add %s: %v", name, err))
			}
		}
	}
	if c, ok := out.(*cappedAdder); ok && c.dropped > 0 {
		notes = append(notes, fmt.Sprintf("--max-bundle-size %d reached: %d members dropped", o.MaxBundleBytes, c.dropped))
	}
	m := &bundle.Manifest{
		Tool:       bundle.Tool{Name: "dashcam", Version: o.ToolVersion},
		Host:       HostInfo(o.Config.Paths),
		Target:     manifestTarget(o.Target),
		Trigger:    o.Trigger,
		Started:    started,
		Ended:      time.Now().UTC(),
		Priority:   o.Priority,
		Modules:    rep.Modules,
		Counts:     rep.Counts,
		Redactions: rep.Redactions,
	}
	if m.Redactions == nil {
		m.Redactions = []bundle.Redaction{}
	}
	m.Notes = append(m.Notes, notes...)
	for _, pid := range o.Target.Excluded {
		m.Notes = append(m.Notes, fmt.Sprintf("excluded dashcam's own process (pid %d)", pid))
	}
	if n := len(o.Target.Zombies); n > 0 {
		m.Notes = append(m.Notes, fmt.Sprintf("added %d zombie children of target processes (zombies leave cgroup.procs)", n))
	}
	name := FileName(m.Host.Hostname, o.Target.Spec, started, o.Trigger.Kind)
	if _, err := os.Lstat(filepath.Join(o.OutDir, name)); err == nil {
		name = strings.TrimSuffix(name, ".tar.zst") + "-" + strconv.Itoa(os.Getpid()) + ".tar.zst"
	}
	path, err := w.Commit(m, name)
	if err != nil {
		return nil, fmt.Errorf("write bundle: %w", err)
	}
	return &Result{Path: path, Manifest: m}, nil
}

func manifestTarget(t *Target) bundle.Target {
	mt := bundle.Target{Kind: t.Spec.Kind(), Spec: t.Spec.String(), Resolved: &bundle.ResolvedTarget{
		CgroupMode: t.Mode, Pids: append([]int{}, t.Pids...), ExcludedPids: t.Excluded,
	}}
	for _, c := range t.Cgroups {
		mt.Resolved.Cgroups = append(mt.Resolved.Cgroups, bundle.CgroupPath{
			Hierarchy: c.Hierarchy, Path: c.Path, Member: c.Member, Pids: c.Pids,
		})
	}
	return mt
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// FileName is the bundle's name:
// dashcam-<host>-<target>-<UTC time>-<trigger>.tar.zst, with each part
// reduced to characters that are safe in file names and URLs.
func FileName(host string, s Spec, when time.Time, trigger string) string {
	target := "host"
	switch s.Kind() {
	case "cgroup", "unit":
		target = strings.Trim(strings.ReplaceAll(s.String(), "/", "-"), "-")
		if target == "" {
			target = "root"
		}
	case "pid":
		target = "pid-" + strings.ReplaceAll(s.String(), ",", "-")
	}
	clean := func(s string, max int) string {
		s = strings.Trim(unsafeName.ReplaceAllString(s, "_"), "_")
		if len(s) > max {
			s = s[:max]
		}
		if s == "" {
			s = "unknown"
		}
		return s
	}
	return fmt.Sprintf("dashcam-%s-%s-%s-%s.tar.zst", clean(host, 48), clean(target, 64),
		when.UTC().Format("20060102T150405Z"), clean(trigger, 32))
}

// HostInfo describes this machine for the manifest. Kernel identity comes
// from uname(2); the rest from the proc and sys roots in p.
func HostInfo(p Paths) bundle.Host {
	h := bundle.Host{
		Arch:       runtime.GOARCH,
		PageSize:   os.Getpagesize(),
		ClockTicks: 100, // USER_HZ is 100 on every Linux architecture Go supports
		CgroupMode: p.CgroupMode(),
	}
	h.Hostname, _ = os.Hostname()
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		h.KernelRelease = unix.ByteSliceToString(u.Release[:])
		h.KernelVersion = unix.ByteSliceToString(u.Version[:])
	}
	if b, err := os.ReadFile(filepath.Join(p.Proc, "sys/kernel/random/boot_id")); err == nil {
		h.BootID = strings.TrimSpace(string(b))
	}
	h.CPUs = runtime.NumCPU()
	if b, err := os.ReadFile(filepath.Join(p.Sys, "devices/system/cpu/online")); err == nil {
		if n := cpulist.Count(string(b)); n > 0 {
			h.CPUs = n
		}
	}
	if b, err := os.ReadFile(filepath.Join(p.Proc, "meminfo")); err == nil {
		h.MemTotalBytes = memTotal(b)
	}
	return h
}

// memTotal reads "MemTotal:       24558736 kB" from /proc/meminfo.
func memTotal(meminfo []byte) *uint64 {
	for _, line := range bytes.Split(meminfo, []byte("\n")) {
		if rest, ok := bytes.CutPrefix(line, []byte("MemTotal:")); ok {
			f := bytes.Fields(rest)
			if len(f) == 0 {
				return nil
			}
			if v, err := strconv.ParseUint(string(f[0]), 10, 64); err == nil {
				v *= 1024
				return &v
			}
		}
	}
	return nil
}
