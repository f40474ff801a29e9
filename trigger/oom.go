package trigger

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// oomWatcher fires on an OOM kill in the target cgroup. The cgroup files
// say that a kill happened, with no busy polling:
//
//   - v2 (also the unified tree of a hybrid host, when the memory
//     controller is enabled there): memory.events, whose oom and oom_kill
//     counters are hierarchical (they count the target's descendants) and
//     whose changes kernfs reports to inotify as IN_MODIFY (at most one
//     per 10 ms per file: cgroup_file_notify);
//   - v1: an eventfd registered for memory.oom_control through
//     cgroup.event_control, which the kernel signals when the memcg or an
//     ancestor enters OOM (an OOM of a descendant with its own limit is
//     not reported to the target: arm on that cgroup), and once more when
//     the cgroup is removed.
//
// The kernel log names the victim: /dev/kmsg is followed from its end and
// the "oom-kill:" and "Killed process" records whose memcg is in the
// target are kept. The cgroup notification usually comes first (the
// counter is raised before the record is written); the watcher waits up
// to victimWait for the record, then fires anyway.
type oomWatcher struct {
	g          *Group
	log        *slog.Logger
	openKmsg   func() (*os.File, error)
	victimWait time.Duration
	// ready, when set (tests), is called once the cgroup notification is
	// registered.
	ready func()
}

// NewOOM watches the target cgroup for OOM kills.
func NewOOM(g *Group, log *slog.Logger) Watcher {
	return &oomWatcher{g: g, log: orDiscard(log), openKmsg: openKmsg, victimWait: 200 * time.Millisecond}
}

func (o *oomWatcher) Name() string { return "oom" }

func (o *oomWatcher) Watch(ctx context.Context, fire func(Event)) error {
	events, v2 := o.g.file("unified", "memory.events")
	if v2 && !exists(events) {
		v2 = false
	}
	control, v1 := o.g.file("memory", "memory.oom_control")
	if v1 && !exists(control) {
		v1 = false
	}
	if !v2 && !v1 {
		return fmt.Errorf("oom watcher for %s: no memory.events (enable the memory controller in the parent's cgroup.subtree_control) and no v1 memory controller: %w", o.g.Path, ErrUnsupported)
	}
	w, err := newWaker(ctx)
	if err != nil {
		return fmt.Errorf("oom watcher: %w", err)
	}
	defer w.close()
	v := &victims{wait: o.victimWait}
	if f, err := o.openKmsg(); err != nil {
		v.note = fmt.Sprintf("kernel log unreadable (%v): victim not named", err)
		o.log.Warn("oom watcher: cannot follow the kernel log; OOM events will not name the victim", "err", err)
	} else {
		v.k = followKmsg(f, o.inTarget, o.log)
		defer v.k.close()
	}
	if v2 {
		return o.watchEvents(ctx, w, v, events, fire)
	}
	return o.watchControl(ctx, w, v, control, fire)
}

// inTarget keeps the victims whose memcg (the one that hit its limit, or
// the victim's own) is the target or below it, and those whose "oom-kill:"
// summary record was rate-limited away (no memcg to judge by).
func (o *oomWatcher) inTarget(v OOMVictim) bool {
	if v.OOMMemcg == "" && v.TaskMemcg == "" {
		return true
	}
	return under(v.OOMMemcg, o.g.Path) || under(v.TaskMemcg, o.g.Path)
}

func under(p, root string) bool {
	return p != "" && (root == "/" || p == root || strings.HasPrefix(p, root+"/"))
}

// watchEvents follows v2 memory.events:
//
//	low 0
//	high 0
//	max 12
//	oom 1
//	oom_kill 1
//	oom_group_kill 0
//
// oom is raised when the OOM killer is invoked, oom_kill for each process
// it kills (a few ms later, its own notification). An oom without a kill
// within victimWait (the killer found memory freed, or nothing to kill)
// is logged, not fired.
func (o *oomWatcher) watchEvents(ctx context.Context, w *waker, v *victims, file string, fire func(Event)) error {
	ifd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return fmt.Errorf("oom watcher: inotify: %w", err)
	}
	defer unix.Close(ifd)
	if _, err := unix.InotifyAddWatch(ifd, file, unix.IN_MODIFY|unix.IN_DELETE_SELF); err != nil {
		return fmt.Errorf("oom watcher: watch %s: %w", file, err)
	}
	prev, err := readCounters(file)
	if err != nil {
		return err
	}
	local := filepath.Join(filepath.Dir(file), "memory.events.local") // Linux 5.7+
	if o.ready != nil {
		o.ready()
	}
	var (
		start  time.Time         // first notification of the OOM in progress
		before map[string]uint64 // the counters before it
		buf    = make([]byte, 4096)
	)
	for {
		timeout := time.Duration(-1)
		if !start.IsZero() {
			timeout = max(time.Until(start.Add(o.victimWait)), 0)
		}
		re, cancelled, err := w.wait(ifd, unix.POLLIN, timeout)
		switch {
		case cancelled:
			return nil
		case err != nil:
			return fmt.Errorf("oom watcher: poll: %w", err)
		}
		if re&unix.POLLIN != 0 {
			n, _ := unix.Read(ifd, buf)
			if inotifyGone(buf[:max(n, 0)]) {
				return fmt.Errorf("oom watcher: %s: %w", file, ErrGroupGone)
			}
		}
		now := time.Now()
		cur, err := readCounters(file)
		if err != nil {
			return err
		}
		if _, ok := cur["oom_kill"]; !ok {
			continue // not a memory.events reading (oom_kill: Linux 4.13+)
		}
		if start.IsZero() && (cur["oom"] > prev["oom"] || cur["oom_kill"] > prev["oom_kill"]) {
			start, before = now, prev
		}
		switch {
		case start.IsZero():
		case cur["oom_kill"] > before["oom_kill"]:
			vs, note := v.collect(ctx, start, int(cur["oom_kill"]-before["oom_kill"]))
			if ctx.Err() != nil {
				return nil
			}
			if after, err := readCounters(file); err == nil {
				cur = after
			}
			ev := o.event(start, "memory.events", file, before, cur, vs, note)
			if l, err := readKV(local); err == nil {
				ev.Evidence["local"] = l
			}
			fire(ev)
			start = time.Time{}
		case now.Sub(start) >= o.victimWait:
			o.log.Info("oom watcher: OOM without a kill (the cgroup hit its limit; the OOM killer found memory freed or nothing to kill)",
				"cgroup", o.g.Path, "oom", fmt.Sprintf("%d→%d", before["oom"], cur["oom"]), "file", file)
			start = time.Time{}
		}
		prev = cur
	}
}

// inotifyGone reports whether the inotify events in b say the watched
// file is gone (its cgroup removed): IN_DELETE_SELF, IN_IGNORED (the
// watch was dropped) or IN_UNMOUNT. An event is a struct inotify_event:
// wd, mask, cookie, len (4 bytes each), then len bytes of name.
func inotifyGone(b []byte) bool {
	for len(b) >= unix.SizeofInotifyEvent {
		mask := binary.NativeEndian.Uint32(b[4:])
		if mask&(unix.IN_DELETE_SELF|unix.IN_IGNORED|unix.IN_UNMOUNT) != 0 {
			return true
		}
		n := binary.NativeEndian.Uint32(b[12:])
		b = b[min(unix.SizeofInotifyEvent+int(n), len(b)):]
	}
	return false
}

// watchControl follows v1 memory.oom_control through an eventfd:
//
//	oom_kill_disable 0
//	under_oom 0
//	oom_kill 0          (Linux 4.13+)
//
// The eventfd is signalled when the OOM killer is about to run, before the
// kill; oom_kill is read again after the wait for the victim's record.
func (o *oomWatcher) watchControl(ctx context.Context, w *waker, v *victims, file string, fire func(Event)) error {
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return fmt.Errorf("oom watcher: eventfd: %w", err)
	}
	defer unix.Close(efd)
	if err := registerOOMEvent(efd, file); err != nil {
		return err
	}
	prev, err := readCounters(file)
	if err != nil {
		return err
	}
	buf := make([]byte, 8)
	if o.ready != nil {
		o.ready()
	}
	for {
		re, cancelled, err := w.wait(efd, unix.POLLIN, -1)
		switch {
		case cancelled:
			return nil
		case err != nil:
			return fmt.Errorf("oom watcher: poll: %w", err)
		case re&unix.POLLIN == 0:
			continue
		}
		_, _ = unix.Read(efd, buf) // resets the count
		start := time.Now()
		// Removal of the cgroup signals the eventfd too.
		if _, err := readCounters(file); err != nil {
			return err
		}
		vs, note := v.collect(ctx, start, 1)
		if v.k == nil { // no kernel log: give the kill the same time to be counted
			select {
			case <-ctx.Done():
			case <-time.After(o.victimWait):
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		cur, err := readCounters(file)
		if err != nil {
			return err
		}
		switch {
		case cur["oom_kill"] > prev["oom_kill"] || len(vs) > 0:
			fire(o.event(start, "memory.oom_control", file, prev, cur, vs, note))
		case cur["oom_kill_disable"] == 1 && cur["under_oom"] == 1:
			fire(Event{Kind: "oom", Time: start,
				Reason: fmt.Sprintf("OOM in %s without a kill: oom_kill_disable is set, its tasks wait until memory is freed", o.g.Path),
				Evidence: map[string]any{"source": "memory.oom_control", "file": file, "memcg": o.g.Path,
					"counters": map[string]any{"before": prev, "after": cur}}})
		default:
			o.log.Info("oom watcher: OOM notification without a kill in the cgroup (an ancestor's OOM killed elsewhere, or memory was freed)",
				"cgroup", o.g.Path, "file", file)
		}
		prev = cur
	}
}

// registerOOMEvent asks the kernel to signal efd on OOM of the memcg of
// oom_control, by writing "<eventfd> <fd of memory.oom_control>" to the
// cgroup's cgroup.event_control. The kernel takes its own references, so
// the memory.oom_control fd is closed afterwards.
func registerOOMEvent(efd int, oomControl string) error {
	cfd, err := unix.Open(oomControl, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("oom watcher: %w", goneOr(oomControl, err))
	}
	defer unix.Close(cfd)
	ec := filepath.Join(filepath.Dir(oomControl), "cgroup.event_control")
	err = os.WriteFile(ec, fmt.Appendf(nil, "%d %d", efd, cfd), 0)
	if errors.Is(err, os.ErrNotExist) && exists(filepath.Dir(oomControl)) {
		return fmt.Errorf("oom watcher: no %s (kernel without cgroup v1 memory events): %w", ec, ErrUnsupported)
	}
	if err != nil {
		return fmt.Errorf("oom watcher: register OOM eventfd: %w", goneOr(ec, err))
	}
	return nil
}

// readCounters reads a flat keyed counter file; a vanished file means
// the cgroup was removed.
func readCounters(file string) (map[string]uint64, error) {
	kv, err := readKV(file)
	if err != nil {
		return nil, fmt.Errorf("oom watcher: %w", goneOr(file, err))
	}
	return kv, nil
}

// goneOr turns the errors of a removed cgroup's files (ENOENT; ENODEV
// from a kernfs file removed while open) into ErrGroupGone.
func goneOr(file string, err error) error {
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("%s: %w", file, ErrGroupGone)
	}
	return err
}

// event describes an OOM kill.
func (o *oomWatcher) event(t time.Time, source, file string, before, after map[string]uint64, vs []OOMVictim, note string) Event {
	memcg := o.g.Path
	ev := map[string]any{"source": source, "file": file,
		"counters": map[string]any{"before": before, "after": after}}
	var reason string
	if len(vs) > 0 {
		if vs[0].OOMMemcg != "" {
			memcg = vs[0].OOMMemcg
		}
		reason = fmt.Sprintf("OOM kill in %s: pid %d (%s), anon-rss %s", memcg, vs[0].Pid, vs[0].Comm, fmtBytes(vs[0].AnonRSSKB*1024))
		if len(vs) > 1 {
			reason += fmt.Sprintf(" and %d more", len(vs)-1)
			ev["victims"] = vs
		}
		ev["victim"] = vs[0]
	} else {
		reason = fmt.Sprintf("OOM kill in %s (oom_kill %d→%d); %s", memcg, before["oom_kill"], after["oom_kill"], note)
	}
	ev["memcg"] = memcg
	if note != "" {
		ev["victim_note"] = note
	}
	return Event{Kind: "oom", Reason: reason, Time: t, Evidence: ev}
}

// victims hands the kernel log's OOM victims to the watcher.
type victims struct {
	k    *kmsgFollower // nil when the kernel log is unreadable
	note string        // why there is no follower
	wait time.Duration
}

// stale is how old a victim's record may be at a notification and still
// belong to it: records of kills the cgroup files did not report (a
// descendant's OOM under v1) must not be pinned on a later one.
const staleVictim = 2 * time.Second

// collect waits until want victims in the target have been logged, or
// until wait after since. Victims without a memcg (their summary record
// was rate-limited) are used only when no other is found, with a note.
func (v *victims) collect(ctx context.Context, since time.Time, want int) ([]OOMVictim, string) {
	if v.k == nil {
		return nil, v.note
	}
	timer := time.NewTimer(max(time.Until(since.Add(v.wait)), 0))
	defer timer.Stop()
	var known, unknown []OOMVictim
wait:
	for len(known) < want {
		select {
		case s := <-v.k.victims:
			switch {
			case s.at.Before(since.Add(-staleVictim)):
			case s.OOMMemcg == "" && s.TaskMemcg == "":
				unknown = append(unknown, s.OOMVictim)
			default:
				known = append(known, s.OOMVictim)
			}
		case <-timer.C:
			break wait
		case <-ctx.Done():
			break wait
		}
	}
	switch {
	case len(known) > 0:
		return known, ""
	case len(unknown) > 0:
		return unknown, "victim matched by time only: the kernel's oom-kill summary record (rate-limited) was missing"
	}
	return nil, fmt.Sprintf("no kernel log record of the kill within %s", v.wait)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
