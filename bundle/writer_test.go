package bundle

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dashcam-dev/dashcam/internal/testutil"
	"github.com/klauspost/compress/zstd"
)

func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	files := testFiles()
	w, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	var want int64
	for name, data := range files {
		if err := w.Add(name, data); err != nil {
			t.Fatal(err)
		}
		want += int64(len(data))
	}
	if w.Len() != len(files) || w.Bytes() != want || !w.Has("proc/4242/stat") || w.Has("proc/1/stat") {
		t.Errorf("Len, Bytes = %d, %d; want %d, %d", w.Len(), w.Bytes(), len(files), want)
	}
	m := testManifest()
	path, err := w.Commit(m, "dashcam-web-1-payment-20250314T092653Z-manual.tar.zst")
	if err != nil {
		t.Fatal(err)
	}
	if m.FormatVersion != FormatVersion || len(m.Members) != len(files) {
		t.Errorf("Commit set format_version %d and %d members", m.FormatVersion, len(m.Members))
	}

	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode())
	}
	if got := listDir(t, dir); !slices.Equal(got, []string{filepath.Base(path)}) {
		t.Errorf("dir holds %q, want only the bundle (no spool, no temp)", got)
	}

	b, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.CheckValid(); err != nil {
		t.Fatal(err)
	}
	if got, want := mustJSON(t, b.Manifest), mustJSON(t, m); got != want {
		t.Errorf("manifest read back:\n%s\nwant:\n%s", got, want)
	}
	if !slices.Equal(b.Names(), slices.Sorted(maps.Keys(files))) {
		t.Errorf("names %q", b.Names())
	}
	for name, data := range files {
		if got, ok := b.File(name); !ok || !bytes.Equal(got, data) {
			t.Errorf("%s = %q, %v; want %q", name, got, ok, data)
		}
	}
	if _, ok := b.File(ManifestName); ok {
		t.Error("manifest.json is a member")
	}

	// The raw stream: manifest first, then members sorted, every header
	// a plain 0600 file owned by 0:0 stamped with Started in seconds.
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	hdrs := tarHeaders(t, raw)
	var names []string
	for _, h := range hdrs {
		names = append(names, h.Name)
		if h.Typeflag != tar.TypeReg || h.Mode != 0o600 || h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" ||
			!h.ModTime.Equal(time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)) {
			t.Errorf("header %+v", h)
		}
	}
	if want := append([]string{ManifestName}, b.Names()...); !slices.Equal(names, want) {
		t.Errorf("tar order %q, want %q", names, want)
	}
}

// Commit writes the same bytes as Bundle.Write, and Write is deterministic.
func TestDeterministic(t *testing.T) {
	path := commitTest(t, t.TempDir(), "a.tar.zst", testFiles())
	committed, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := encodeTest(t, testFiles()), encodeTest(t, testFiles()); !bytes.Equal(a, b) || !bytes.Equal(a, committed) {
		t.Error("encodings of the same bundle differ")
	}
}

func TestConcurrentAdd(t *testing.T) {
	w, err := Create(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	const goroutines, each = 32, 40
	var wg sync.WaitGroup
	var mu sync.Mutex
	dupWins := 0
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				name := fmt.Sprintf("proc/%d/task/%d/stat", g, i)
				if err := w.Add(name, []byte(name)); err != nil {
					t.Error(err)
				}
				w.Has(name)
				w.Len()
				w.Bytes()
			}
			// Everyone races for the same name: exactly one may win.
			err := w.Add("shared", []byte("x"))
			if err == nil {
				mu.Lock()
				dupWins++
				mu.Unlock()
			} else if !errors.Is(err, ErrDuplicate) {
				t.Errorf("racing Add: %v", err)
			}
		})
	}
	wg.Wait()
	if dupWins != 1 {
		t.Errorf("%d goroutines added \"shared\", want 1", dupWins)
	}
	if w.Len() != goroutines*each+1 {
		t.Errorf("Len %d", w.Len())
	}
	path, err := w.Commit(testManifest(), "c.tar.zst")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range b.Names() {
		if data, _ := b.File(name); name != "shared" && string(data) != name {
			t.Errorf("%s holds %q", name, data)
		}
	}
	if len(b.Names()) != goroutines*each+1 {
		t.Errorf("read back %d members", len(b.Names()))
	}
}

func TestAddRefuses(t *testing.T) {
	w, err := Create(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	for _, name := range []string{"proc/1/stat", "a/b"} {
		if err := w.Add(name, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		want error
	}{
		{"", ErrUnsafePath},
		{"/proc/1/stat", ErrUnsafePath},
		{"proc/1/../x", ErrUnsafePath},
		{"./proc", ErrUnsafePath},
		{"proc//1", ErrUnsafePath},
		{"proc/", ErrUnsafePath},
		{".", ErrUnsafePath},
		{`proc\1`, ErrUnsafePath},
		{"proc/1/\nstat", ErrUnsafePath},
		{"bad\xffutf8", ErrUnsafePath},
		{strings.Repeat("a", 4097), ErrUnsafePath},
		{ManifestName, ErrDuplicate},
		{"manifest.json/x", ErrDuplicate},
		{"proc/1/stat", ErrDuplicate},
		{"proc/1/stat/x", ErrDuplicate}, // a member cannot be a directory
		{"a", ErrDuplicate},             // nor a directory a member
	} {
		if err := w.Add(tc.name, []byte("x")); !errors.Is(err, tc.want) {
			t.Errorf("Add(%q) = %v, want %v", tc.name, err, tc.want)
		}
	}
	if w.Len() != 2 || w.Bytes() != 0 {
		t.Errorf("refused Adds counted: Len %d, Bytes %d", w.Len(), w.Bytes())
	}
	err = w.Add("proc/1/../x", nil)
	if want := `bundle: member "proc/1/../x": unsafe path: "." or ".." component`; err == nil || err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}

func TestCommitRefuses(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"", "x.tar", "x.tar.gz", ".x.tar.zst", ".tar.zst", "sub/x.tar.zst", "../x.tar.zst", "/tmp/x.tar.zst"} {
		w, err := Create(dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Add("a", []byte("a")); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Commit(testManifest(), name); err == nil {
			t.Errorf("Commit(%q) succeeded", name)
		}
		if err := w.Add("b", nil); !errors.Is(err, ErrClosed) {
			t.Errorf("Add after failed Commit: %v", err)
		}
	}
	assertNoBundle(t, dir, true)

	w, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Commit(nil, "x.tar.zst"); !errors.Is(err, ErrManifest) {
		t.Errorf("Commit(nil) = %v", err)
	}
	assertNoBundle(t, dir, true)

	// An existing bundle is never replaced.
	path := commitTest(t, dir, "x.tar.zst", map[string][]byte{"old": []byte("old")})
	w, err = Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Commit(testManifest(), "x.tar.zst"); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Commit over an existing bundle = %v, want fs.ErrExist", err)
	}
	if b, err := Open(path); err != nil || !slices.Equal(b.Names(), []string{"old"}) {
		t.Errorf("existing bundle changed: %v", err)
	}
	if got := listDir(t, dir); !slices.Equal(got, []string{"x.tar.zst"}) {
		t.Errorf("dir holds %q", got)
	}
}

func TestAbort(t *testing.T) {
	dir := t.TempDir()
	w, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Add("a", []byte("a")); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := w.Abort(); err != nil {
			t.Fatalf("Abort: %v", err)
		}
	}
	if _, err := w.Commit(testManifest(), "a.tar.zst"); !errors.Is(err, ErrClosed) {
		t.Errorf("Commit after Abort = %v, want ErrClosed", err)
	}
	if err := w.Add("b", nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Add after Abort = %v, want ErrClosed", err)
	}
	assertNoBundle(t, dir, true)

	// Abort after Commit does nothing, so it can be deferred.
	path := commitTest(t, dir, "b.tar.zst", map[string][]byte{"a": nil})
	if _, err := Open(path); err != nil {
		t.Fatal(err)
	}
}

func TestCreateRefuses(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{filepath.Join(dir, "missing"), file} {
		if _, err := Create(d); err == nil || !strings.Contains(err.Error(), d) {
			t.Errorf("Create(%q) = %v, want an error naming it", d, err)
		}
	}
	if os.Geteuid() != 0 { // root writes anywhere
		ro := filepath.Join(dir, "ro")
		if err := os.Mkdir(ro, 0o500); err != nil {
			t.Fatal(err)
		}
		if _, err := Create(ro); !errors.Is(err, fs.ErrPermission) {
			t.Errorf("Create(read-only dir) = %v", err)
		}
	}
}

// GNU tar lists a bundle with manifest.json first and extracts it; a
// bundle repacked by GNU tar (directory entries, GNU long names, readdir
// order) reads back.
func TestGNUTar(t *testing.T) {
	tarPath, err := exec.LookPath("tar")
	if err != nil {
		testutil.SkipOrFail(t, "no tar in PATH")
	}
	if out, err := exec.Command(tarPath, "--version").Output(); err != nil || !bytes.Contains(out, []byte("GNU tar")) {
		testutil.SkipOrFail(t, "tar is not GNU tar")
	}
	if _, err := exec.LookPath("zstd"); err != nil {
		testutil.SkipOrFail(t, "no zstd in PATH (tar --zstd runs it)")
	}
	dir := t.TempDir()
	files := testFiles()
	path := commitTest(t, dir, "g.tar.zst", files)

	out, err := exec.Command(tarPath, "--zstd", "-tf", path).Output()
	if err != nil {
		t.Fatalf("tar -t: %v", err)
	}
	listed := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if want := append([]string{ManifestName}, slices.Sorted(maps.Keys(files))...); !slices.Equal(listed, want) {
		t.Errorf("tar -t lists %q, want %q", listed, want)
	}

	x := filepath.Join(dir, "x")
	if err := os.Mkdir(x, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(tarPath, "--zstd", "-xf", path, "-C", x).CombinedOutput(); err != nil {
		t.Fatalf("tar -x: %v\n%s", err, out)
	}
	for name, data := range files {
		got, err := os.ReadFile(filepath.Join(x, name))
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("extracted %s = %q, %v; want %q", name, got, err, data)
		}
	}

	repacked := filepath.Join(dir, "repacked.tar.zst")
	if out, err := exec.Command(tarPath, "--zstd", "-cf", repacked, "-C", x, ManifestName, "proc", "sys", "empty").CombinedOutput(); err != nil {
		t.Fatalf("tar -c: %v\n%s", err, out)
	}
	b, err := Open(repacked)
	if err != nil {
		t.Fatalf("reading a GNU tar repack: %v", err)
	}
	if want := New(testManifest(), files).String(); b.String() != want {
		t.Errorf("repack reads as\n%s\nwant\n%s", b, want)
	}
}

func tarHeaders(t testing.TB, raw []byte) []*tar.Header {
	t.Helper()
	dec, err := zstd.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	tr := tar.NewReader(dec)
	var hdrs []*tar.Header
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return hdrs
		}
		if err != nil {
			t.Fatal(err)
		}
		hdrs = append(hdrs, h)
	}
}

func mustJSON(t testing.TB, m *Manifest) string {
	t.Helper()
	data, err := marshalManifest(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// Writer stops at DefaultLimits, and whatever it accepted reads back under
// the same limits: memberCost really bounds what a member adds, even with
// PAX headers for long names and JSON escapes in the manifest.
func TestWriterLimits(t *testing.T) {
	saved := DefaultLimits
	defer func() { DefaultLimits = saved }()
	DefaultLimits = Limits{MaxMemberBytes: 128 << 10, MaxTotalBytes: 256 << 10, MaxMembers: 1000}

	w, err := Create(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	if err := w.Add("big", make([]byte, 128<<10+1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Add(128 KiB + 1) = %v, want ErrTooLarge", err)
	}
	long := strings.Repeat(`"quoted"/`, 40) // 360 bytes, each " escaped in JSON
	data := bytes.Repeat([]byte{0xa5}, 4096)
	for i := 0; ; i++ {
		err := w.Add(fmt.Sprintf("%s%d", long, i), data)
		if errors.Is(err, ErrTooLarge) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("stopped at %d members, %d bytes", w.Len(), w.Bytes())
	if w.Len() < 20 {
		t.Errorf("only %d members fit: memberCost is far too pessimistic", w.Len())
	}
	path, err := w.Commit(testManifest(), "full.tar.zst")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path); err != nil {
		t.Fatalf("a bundle at the limits does not read back: %v", err)
	}

	// Long names fill manifest.json before the stream: it is a member too.
	DefaultLimits = Limits{MaxMemberBytes: 96 << 10, MaxTotalBytes: 1 << 30, MaxMembers: 1000}
	w, err = Create(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		err := w.Add(fmt.Sprintf("%s%d", strings.Repeat("\u2028/", 100), i), nil)
		if errors.Is(err, ErrTooLarge) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if w.Len() < 20 {
		t.Errorf("only %d members with long names fit", w.Len())
	}
	if path, err = w.Commit(testManifest(), "names.tar.zst"); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path); err != nil {
		t.Fatalf("a manifest at the limits does not read back: %v", err)
	}

	// The manifest's own fields count too: Commit refuses, exactly.
	DefaultLimits = Limits{MaxMemberBytes: 512 << 10, MaxTotalBytes: 256 << 10, MaxMembers: 2}
	w, err = Create(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "b"} {
		if err := w.Add(name, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Add("c", nil); !errors.Is(err, ErrTooLarge) {
		t.Errorf("third member of 2 = %v, want ErrTooLarge", err)
	}
	m := testManifest()
	m.Notes = []string{strings.Repeat("n", 300<<10)}
	if _, err := w.Commit(m, "notes.tar.zst"); !errors.Is(err, ErrTooLarge) || !strings.HasPrefix(err.Error(), `bundle: member "manifest.json": too large: `) {
		t.Errorf("Commit with a 300 KiB note = %v, want ErrTooLarge", err)
	}
}
