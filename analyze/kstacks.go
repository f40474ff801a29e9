package analyze

import (
	"bufio"
	"bytes"
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

func init() {
	registerSection(section{name: "kstacks", order: 10, load: loadKStacks, text: kstacksText, markdown: kstacksMarkdown})
}

// Limits of the kstacks section's lists.
const (
	stackCommonN    = 10 // groups in KStackSection.Common
	stackCommonText = 5  // of which text and Markdown show
	stackGroupTasks = 20 // tasks listed per group (Count has them all)
	stackTextTasks  = 8  // of which text and Markdown name
)

// KStackSection is where in the kernel the captured threads were: the
// kstacks module's proc/<pid>/task/<tid>/{stack,wchan,syscall}, with each
// thread's state from task/<tid>/stat (procs module).
type KStackSection struct {
	// Threads counts the threads with kernel files in the bundle.
	Threads int `json:"threads"`
	// Stacks counts those whose stack was captured and not empty (a
	// running thread, a zombie and a denied read have none).
	Stacks int `json:"stacks"`
	// Blocked groups the threads in state D by identical kernel stack,
	// largest group first; threads without a stack are grouped by wchan
	// instead.
	Blocked []StackGroup `json:"blocked"`
	// Common groups all threads with a stack, in any state, largest
	// group first: at most 10 groups of 2 threads or more (text and
	// Markdown show 5).
	Common []StackGroup `json:"common"`
}

// StackGroup is threads that were at the same place in the kernel.
type StackGroup struct {
	// Frames are the function names, innermost first, without addresses
	// and offsets ("folio_wait_bit_common", …; "nfs_wait [nfs]" for a
	// module); nil for a group by wchan.
	Frames []string `json:"frames"`
	// Wchan is the function the threads wait in, for a group of threads
	// without a stack; "" when grouped by stack, "unknown" when the
	// bundle has neither.
	Wchan string `json:"wchan,omitempty"`
	Count int    `json:"count"`
	// Tasks are the first 20 threads, by pid and tid.
	Tasks []StackTask `json:"tasks"`
}

// StackTask is one thread of a group.
type StackTask struct {
	Pid  int    `json:"pid"`
	Tid  int    `json:"tid"`
	Comm string `json:"comm"`
}

// kthread is one thread's kernel files, as found in the bundle.
type kthread struct {
	pid, tid int
	comm     string
	state    string // "" when the bundle has no stat for it
	frames   []string
	wchan    string
}

// taskMember splits proc/<pid>/task/<tid>/<file>.
func taskMember(name string) (pid, tid int, file string, ok bool) {
	f := strings.Split(name, "/")
	if len(f) != 5 || f[0] != "proc" || f[2] != "task" {
		return 0, 0, "", false
	}
	pid, err1 := strconv.Atoi(f[1])
	tid, err2 := strconv.Atoi(f[3])
	return pid, tid, f[4], err1 == nil && err2 == nil && pid > 0 && tid > 0
}

// parseStack turns /proc/<pid>/task/<tid>/stack into function names,
// innermost first. The kernel writes one frame a line, the address
// hidden as <0> since Linux 4.15 (a real one before, to root):
//
//	[<0>] folio_wait_bit_common+0x13d/0x350
//	[<0>] ext4_sync_file+0x83/0x360
//	[<ffffffffc0a1b2c3>] nfs_wait_bit_killable+0x1e/0x90 [nfs]
//
// Offsets differ between builds and call sites of the same path, so
// only the names are kept (and a module's "[name]").
func parseStack(r io.Reader) ([]string, error) {
	var frames []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "[<") {
			_, rest, ok := strings.Cut(line, ">]")
			if !ok {
				return nil, fmt.Errorf("malformed frame %q", line)
			}
			line = strings.TrimSpace(rest)
		}
		fn, module := line, ""
		if i := strings.Index(line, " ["); i >= 0 {
			fn, module = line[:i], line[i:]
		}
		if i := strings.Index(fn, "+0x"); i >= 0 {
			fn = fn[:i]
		}
		if fn == "" {
			return nil, fmt.Errorf("malformed frame %q", sc.Text())
		}
		frames = append(frames, fn+module)
	}
	return frames, sc.Err()
}

func loadKStacks(a *analyzer) {
	threads := map[[2]int]*kthread{}
	found := false
	for _, name := range a.b.Names() {
		pid, tid, file, ok := taskMember(name)
		if !ok || (file != "stack" && file != "syscall") {
			continue
		}
		found = true
		key := [2]int{pid, tid}
		if threads[key] == nil {
			threads[key] = &kthread{pid: pid, tid: tid}
		}
		if file == "stack" {
			data, _ := a.b.File(name)
			frames, err := parseStack(bytes.NewReader(data))
			if err != nil {
				a.problem(name, err)
				continue
			}
			threads[key].frames = frames
		}
	}
	if !found {
		return
	}
	sec := &KStackSection{Threads: len(threads), Blocked: []StackGroup{}, Common: []StackGroup{}}
	keys := slices.SortedFunc(maps.Keys(threads), func(x, y [2]int) int {
		return cmp.Or(cmp.Compare(x[0], y[0]), cmp.Compare(x[1], y[1]))
	})
	var blocked, all []*kthread
	for _, k := range keys {
		t := threads[k]
		a.threadState(t)
		if len(t.frames) > 0 {
			sec.Stacks++
			all = append(all, t)
		}
		if t.state == "D" {
			blocked = append(blocked, t)
		}
	}
	sec.Blocked = groupStacks(blocked)
	sec.Common = slices.DeleteFunc(groupStacks(all), func(g StackGroup) bool { return g.Count < 2 })
	sec.Common = sec.Common[:min(stackCommonN, len(sec.Common))]
	a.r.KStacks = sec
}

// threadState fills in t's comm, state and wchan from
// proc/<pid>/task/<tid>/{stat,wchan}, falling back to the process's own
// files for its main thread.
func (a *analyzer) threadState(t *kthread) {
	th, err := a.fs.Thread(t.pid, t.tid)
	if err != nil {
		return
	}
	st, err := parse(th.Stat)
	if err != nil && t.tid == t.pid {
		if p, perr := a.fs.Proc(t.pid); perr == nil {
			st, err = parse(p.Stat)
		}
	}
	// A malformed stat is already among the problems (see blocked).
	if err == nil {
		t.comm, t.state = st.Comm, st.State
	}
	w, err := parse(th.Wchan)
	if (err != nil || w == "") && t.tid == t.pid {
		if p, perr := a.fs.Proc(t.pid); perr == nil {
			w, _ = parse(p.Wchan)
		}
	}
	t.wchan = w
}

// groupStacks groups threads by their frames, or by wchan when they have
// none; the largest groups first.
func groupStacks(threads []*kthread) []StackGroup {
	groups := map[string]*StackGroup{}
	var order []string
	for _, t := range threads {
		var key string
		g := StackGroup{}
		if len(t.frames) > 0 {
			key = "s\x00" + strings.Join(t.frames, "\n")
			g.Frames = t.frames
		} else {
			// wchan reads "0" for a running task (and always since 5.16
			// for a task not asleep): no place to name.
			g.Wchan = t.wchan
			if g.Wchan == "" || g.Wchan == "0" {
				g.Wchan = unknown
			}
			key = "w\x00" + g.Wchan
		}
		if groups[key] == nil {
			g.Tasks = []StackTask{}
			groups[key] = &g
			order = append(order, key)
		}
		gr := groups[key]
		gr.Count++
		if len(gr.Tasks) < stackGroupTasks {
			gr.Tasks = append(gr.Tasks, StackTask{Pid: t.pid, Tid: t.tid, Comm: t.comm})
		}
	}
	out := make([]StackGroup, 0, len(order))
	for _, k := range order {
		out = append(out, *groups[k])
	}
	// Stable: equal counts keep the order of their first thread.
	slices.SortStableFunc(out, func(x, y StackGroup) int { return cmp.Compare(y.Count, x.Count) })
	return out
}

// taskList is "100/101 (payment-db), 104 (payment-io), … and 3 more",
// naming at most stackTextTasks threads.
func taskList(g StackGroup) string {
	var s []string
	for _, t := range g.Tasks[:min(stackTextTasks, len(g.Tasks))] {
		id := strconv.Itoa(t.Pid)
		if t.Tid != t.Pid {
			id += "/" + strconv.Itoa(t.Tid)
		}
		if t.Comm != "" {
			id += " (" + t.Comm + ")"
		}
		s = append(s, id)
	}
	if more := g.Count - min(stackTextTasks, len(g.Tasks)); more > 0 {
		s = append(s, fmt.Sprintf("… and %d more", more))
	}
	return clean(strings.Join(s, ", "))
}

func threadsWord(n int) string {
	if n == 1 {
		return "1 thread"
	}
	return strconv.Itoa(n) + " threads"
}

func groupTitle(g StackGroup) string {
	if g.Frames == nil {
		return threadsWord(g.Count) + " waiting in " + clean(g.Wchan) + " (no stack)"
	}
	return threadsWord(g.Count)
}

func kstacksText(tw *tabwriter.Writer, r *Report) {
	s := r.KStacks
	if s == nil {
		return
	}
	fmt.Fprintf(tw, "\nKernel stacks: %d threads, %d stacks captured\n", s.Threads, s.Stacks)
	blocked := 0
	for _, g := range s.Blocked {
		blocked += g.Count
	}
	printGroups := func(title string, groups []StackGroup) {
		fmt.Fprintf(tw, "  %s:\n", title)
		for _, g := range groups {
			fmt.Fprintf(tw, "    %s: %s\n", groupTitle(g), taskList(g))
			for _, f := range g.Frames {
				fmt.Fprintf(tw, "      %s\n", clean(f))
			}
		}
	}
	if len(s.Blocked) == 0 {
		fmt.Fprintf(tw, "  in state D: none\n")
	} else {
		groups := "1 group"
		if len(s.Blocked) > 1 {
			groups = strconv.Itoa(len(s.Blocked)) + " groups"
		}
		printGroups(fmt.Sprintf("in state D, by stack (%s, %s)", threadsWord(blocked), groups), s.Blocked)
	}
	if len(s.Common) > 0 {
		printGroups("most common stacks, any state", s.Common[:min(stackCommonText, len(s.Common))])
	}
}

func kstacksMarkdown(w io.Writer, r *Report) {
	s := r.KStacks
	if s == nil {
		return
	}
	fmt.Fprintf(w, "\n## Kernel stacks\n\n%d threads, %d stacks captured.\n", s.Threads, s.Stacks)
	groups := func(title string, gs []StackGroup) {
		fmt.Fprintf(w, "\n### %s\n\n", title)
		if len(gs) == 0 {
			fmt.Fprintf(w, "None.\n")
			return
		}
		for _, g := range gs {
			fmt.Fprintf(w, "- **%s**: %s\n", md(groupTitle(g)), md(taskList(g)))
			if len(g.Frames) > 0 {
				fmt.Fprintf(w, "\n  ```\n")
				for _, f := range g.Frames {
					fmt.Fprintf(w, "  %s\n", strings.ReplaceAll(clean(f), "`", "'"))
				}
				fmt.Fprintf(w, "  ```\n\n")
			}
		}
	}
	groups("In state D, by stack", s.Blocked)
	if len(s.Common) > 0 {
		groups("Most common stacks, any state", s.Common[:min(stackCommonText, len(s.Common))])
	}
}
