package analyze

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/dashcam-dev/dashcam/bundle"
)

const (
	// fsyncStack is a thread waiting for writeback in fsync; fsyncStack2
	// is the same path seen from another call site (other offsets).
	fsyncStack = `[<0>] folio_wait_bit_common+0x13d/0x350
[<0>] folio_wait_writeback+0x2b/0x80
[<0>] __filemap_fdatawait_range+0x8e/0x110
[<0>] file_write_and_wait_range+0x8f/0xb0
[<0>] ext4_sync_file+0x83/0x360
[<0>] __x64_sys_fsync+0x3b/0x70
[<0>] do_syscall_64+0x82/0x170
[<0>] entry_SYSCALL_64_after_hwframe+0x76/0x7e
`
	fsyncStack2 = `[<0>] folio_wait_bit_common+0x13d/0x350
[<0>] folio_wait_writeback+0x2b/0x80
[<0>] __filemap_fdatawait_range+0x8e/0x110
[<0>] file_write_and_wait_range+0x8f/0xb0
[<0>] ext4_sync_file+0x99/0x360
[<0>] __x64_sys_fsync+0x3b/0x70
[<0>] do_syscall_64+0x7e/0x170
[<0>] entry_SYSCALL_64_after_hwframe+0x76/0x7e
`
	epollStack = `[<0>] ep_poll+0x2f6/0x360
[<0>] do_epoll_wait+0xc8/0xe0
[<0>] __x64_sys_epoll_wait+0x71/0x120
[<0>] do_syscall_64+0x82/0x170
[<0>] entry_SYSCALL_64_after_hwframe+0x76/0x7e
`
)

// kstackBundle adds the kstacks module's files to the synthetic bundle:
//
//	120 db        threads 120, 121, 123 in ep_poll (S); 122 (D) in fsync
//	130 nfs       D, stack denied (no stack member): wchan only
//	150 flusher   a process in D in fsync too, other offsets
//	110 busy      running: an empty stack
func kstackBundle() *bundle.Bundle {
	return bundle.New(fixtureManifest(), kstackTestFiles())
}

func kstackTestFiles() map[string][]byte {
	files := fixtureFiles()
	for tid, stack := range map[string]string{"120": epollStack, "121": epollStack, "122": fsyncStack, "123": epollStack} {
		files["proc/120/task/"+tid+"/stack"] = []byte(stack)
		files["proc/120/task/"+tid+"/syscall"] = []byte("232 0x6 0x7ffd 0x80 0xffffffff 0x0 0x0 0x7ffd 0x7f00\n")
	}
	files["proc/120/task/122/wchan"] = []byte("folio_wait_bit_common")
	files["proc/130/task/130/syscall"] = []byte("0 0x3 0x7f00 0x10000 0x0 0x0 0x0 0x7ffd 0x7f00\n")
	files["proc/150/stat"] = []byte(statLine(150, "flusher", "D", 1, 10, 10, 1, 100))
	files["proc/150/task/150/stat"] = []byte(statLine(150, "flusher", "D", 1, 10, 10, 1, 100))
	files["proc/150/task/150/stack"] = []byte(fsyncStack2)
	files["proc/110/task/110/stack"] = []byte("")
	files["proc/110/task/110/syscall"] = []byte("running\n")
	return files
}

func TestKStacksSection(t *testing.T) {
	r := load(t, kstackBundle())
	s := r.KStacks
	if s == nil {
		t.Fatal("no kstacks section")
	}
	if s.Threads != 7 || s.Stacks != 5 {
		t.Errorf("threads %d stacks %d, want 7 with kernel files, 5 non-empty stacks", s.Threads, s.Stacks)
	}
	if len(s.Blocked) != 2 {
		t.Fatalf("blocked = %+v, want the fsync group and the nfs wchan", s.Blocked)
	}
	fsync, nfs := s.Blocked[0], s.Blocked[1]
	wantFrames := []string{"folio_wait_bit_common", "folio_wait_writeback", "__filemap_fdatawait_range",
		"file_write_and_wait_range", "ext4_sync_file", "__x64_sys_fsync", "do_syscall_64", "entry_SYSCALL_64_after_hwframe"}
	wantTasks := []StackTask{{Pid: 120, Tid: 122, Comm: "db-flush"}, {Pid: 150, Tid: 150, Comm: "flusher"}}
	if fsync.Count != 2 || !slices.Equal(fsync.Frames, wantFrames) || !slices.Equal(fsync.Tasks, wantTasks) || fsync.Wchan != "" {
		t.Errorf("fsync group = %+v", fsync)
	}
	// 130's stack was not captured: grouped by its wchan, from the
	// process's own wchan file since the thread has none.
	if nfs.Frames != nil || nfs.Wchan != "rpc_wait_bit_killable" || nfs.Count != 1 || nfs.Tasks[0].Tid != 130 {
		t.Errorf("nfs group = %+v", nfs)
	}
	if len(s.Common) != 2 || s.Common[0].Count != 3 || s.Common[0].Frames[0] != "ep_poll" || s.Common[1].Count != 2 {
		t.Errorf("common = %+v, want ep_poll ×3 then fsync ×2", s.Common)
	}
}

func TestKStacksRender(t *testing.T) {
	r := load(t, kstackBundle())
	var text, mdown, js bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteMarkdown(&mdown); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Kernel stacks: 7 threads, 5 stacks captured",
		"in state D, by stack (3 threads, 2 groups):",
		"2 threads: 120/122 (db-flush), 150 (flusher)",
		"      folio_wait_bit_common\n      folio_wait_writeback\n",
		"1 thread waiting in rpc_wait_bit_killable (no stack): 130 (nfs-reader)",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, &text)
		}
	}
	for _, want := range []string{"## Kernel stacks", "### In state D, by stack", "  folio_wait_bit_common\n", "**1 thread waiting in rpc\\_wait\\_bit\\_killable (no stack)**"} {
		if !strings.Contains(mdown.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, &mdown)
		}
	}
	var back struct {
		KStacks *KStackSection `json:"kstacks"`
	}
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || back.KStacks == nil || len(back.KStacks.Blocked) != 2 {
		t.Errorf("JSON kstacks = %+v, %v", back.KStacks, err)
	}
}

// A bundle without the kstacks module's files has no section, even with
// task wchan files (procs copies those for D threads).
func TestKStacksAbsent(t *testing.T) {
	files := fixtureFiles()
	files["proc/120/task/122/wchan"] = []byte("folio_wait_bit_common")
	r := load(t, bundle.New(fixtureManifest(), files))
	if r.KStacks != nil {
		t.Errorf("kstacks section %+v without stack or syscall files", r.KStacks)
	}
}

func TestParseStack(t *testing.T) {
	got, err := parseStack(strings.NewReader(
		"[<0>] folio_wait_bit_common+0x13d/0x350\n" +
			"[<ffffffffc0a1b2c3>] nfs_wait_bit_killable+0x1e/0x90 [nfs]\n" +
			"[<0>] 0xffffffffc0a1b2c3\n\n"))
	want := []string{"folio_wait_bit_common", "nfs_wait_bit_killable [nfs]", "0xffffffffc0a1b2c3"}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("parseStack = %q, %v; want %q", got, err, want)
	}
	if got, err := parseStack(strings.NewReader("")); err != nil || got != nil {
		t.Errorf("empty stack = %q, %v; want none", got, err)
	}
	for _, bad := range []string{"[<0> x+0x1/0x2\n", "[<0>] +0x1/0x2\n"} {
		if _, err := parseStack(strings.NewReader(bad)); err == nil {
			t.Errorf("parseStack(%q) accepted a malformed frame", bad)
		}
	}
}

func TestKStacksMalformed(t *testing.T) {
	files := fixtureFiles()
	files["proc/120/task/122/stack"] = []byte("[<0> broken\n")
	r := load(t, bundle.New(fixtureManifest(), files))
	if r.KStacks == nil || r.KStacks.Stacks != 0 {
		t.Fatalf("kstacks = %+v, want the section with no stack", r.KStacks)
	}
	if i := slices.IndexFunc(r.Problems, func(p Problem) bool { return p.Path == "proc/120/task/122/stack" }); i < 0 {
		t.Errorf("problems = %+v, want the malformed stack", r.Problems)
	}
	// Still blocked, grouped by what is known: nothing.
	if len(r.KStacks.Blocked) != 1 || r.KStacks.Blocked[0].Wchan != "unknown" {
		t.Errorf("blocked = %+v, want one group with wchan unknown", r.KStacks.Blocked)
	}
}

func TestTaskListCapped(t *testing.T) {
	g := StackGroup{Count: 30}
	for tid := 1; tid <= stackGroupTasks; tid++ {
		g.Tasks = append(g.Tasks, StackTask{Pid: 1, Tid: tid, Comm: "w"})
	}
	got := taskList(g)
	if n := strings.Count(got, "(w)"); n != stackTextTasks || !strings.HasSuffix(got, ", … and 22 more") {
		t.Errorf("taskList = %q: want %d threads named and the other 22 counted", got, stackTextTasks)
	}
}

// FuzzFDsKStacks feeds arbitrary bytes to the files the fds and kstacks
// sections parse: loading and rendering must not fail or panic.
func FuzzFDsKStacks(f *testing.F) {
	names := []string{"proc/100/fd.json", "proc/100/fdinfo/4", "proc/100/limits", "proc/120/task/122/stack", "proc/150/task/150/stat"}
	f.Add(uint8(0), []byte(`{"version":1,"fds":{"4":"/x (deleted)"},"deleted_sizes":{"4":-1}}`))
	f.Add(uint8(1), []byte("pos:\t99999999999999999999\n"))
	f.Add(uint8(2), []byte("Limit\nMax open files            unlimited            unlimited            files\n"))
	f.Add(uint8(3), []byte("[<0>] a+0x1/0x2 [m]\n[<0>]\n"))
	f.Fuzz(func(t *testing.T, i uint8, data []byte) {
		files := kstackTestFiles()
		for name, d := range fdTestFiles(t) {
			files[name] = d
		}
		files[names[int(i)%len(names)]] = data
		r, err := Load(bundle.New(fixtureManifest(), files))
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := r.WriteText(&out); err != nil {
			t.Fatal(err)
		}
		if err := r.WriteMarkdown(&out); err != nil {
			t.Fatal(err)
		}
		if err := r.WriteJSON(&out); err != nil {
			t.Fatal(err)
		}
	})
}
