package bundle

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

func TestFS(t *testing.T) {
	files := testFiles()
	fsys := New(testManifest(), files).FS()
	if err := fstest.TestFS(fsys, New(nil, files).Names()...); err != nil {
		t.Fatal(err)
	}
	got, err := fs.ReadFile(fsys, cgroupDir+"/cpu.stat")
	if err != nil || !bytes.Equal(got, files[cgroupDir+"/cpu.stat"]) {
		t.Errorf("ReadFile = %q, %v", got, err)
	}
	got[0] = 'X' // ReadFile returns a copy
	if data, _ := New(nil, files).File(cgroupDir + "/cpu.stat"); data[0] == 'X' {
		t.Error("ReadFile result aliases the bundle")
	}
	stats, err := fs.Glob(fsys, "proc/*/stat")
	if err != nil || strings.Join(stats, " ") != "proc/4242/stat proc/4243/stat" {
		t.Errorf("Glob = %q, %v", stats, err)
	}
	var walked []string
	fs.WalkDir(fsys, "proc", func(p string, d fs.DirEntry, err error) error {
		walked = append(walked, p)
		return err
	})
	if want := "proc proc/4242 proc/4242/cmdline proc/4242/stat proc/4242/status proc/4243 proc/4243/stat proc/pressure proc/pressure/cpu"; strings.Join(walked, " ") != want {
		t.Errorf("WalkDir visits\n%s\nwant\n%s", strings.Join(walked, " "), want)
	}
	for _, name := range []string{ManifestName, "proc/1", "../x", "/proc"} {
		if _, err := fsys.Open(name); err == nil {
			t.Errorf("Open(%q) succeeded", name)
		}
	}
}

func TestExtract(t *testing.T) {
	files := testFiles()
	b := New(testManifest(), files)
	dir := filepath.Join(t.TempDir(), "x")
	if err := b.Extract(dir); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		got, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s = %q, %v", name, got, err)
		}
		if st, err := os.Stat(p); err != nil || st.Mode() != 0o600 {
			t.Errorf("%s mode %v, %v", name, st.Mode(), err)
		}
		if st, err := os.Stat(filepath.Dir(p)); err != nil || st.Mode() != fs.ModeDir|0o700 {
			t.Errorf("%s mode %v, %v", filepath.Dir(p), st.Mode(), err)
		}
	}
	if err := b.Extract(dir); !errors.Is(err, fs.ErrExist) {
		t.Errorf("second Extract = %v, want fs.ErrExist (never overwrite)", err)
	}

	// A symlink planted in the target directory is not followed out of it.
	planted := filepath.Join(t.TempDir(), "planted")
	outside := t.TempDir()
	if err := os.MkdirAll(planted, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(planted, "proc")); err != nil {
		t.Fatal(err)
	}
	if err := b.Extract(planted); err == nil {
		t.Error("Extract followed a symlink out of its directory")
	}
	if names := listDir(t, outside); len(names) != 0 {
		t.Errorf("Extract wrote %q outside its directory", names)
	}

	if err := New(nil, map[string][]byte{"../escape": nil}).Extract(t.TempDir()); !errors.Is(err, ErrUnsafePath) {
		t.Errorf("Extract(../escape) = %v", err)
	}
}

func TestCheckValid(t *testing.T) {
	if err := New(testManifest(), testFiles()).CheckValid(); err != nil {
		t.Fatal(err)
	}
	if err := New(nil, nil).CheckValid(); err != nil {
		t.Errorf("empty bundle: %v", err)
	}
	for _, tc := range []struct {
		name string
		fn   func(b *Bundle)
		want error
	}{
		{"no manifest", func(b *Bundle) { b.Manifest = nil }, ErrManifest},
		{"version", func(b *Bundle) { b.Manifest.FormatVersion = 0 }, ErrVersion},
		{"unsorted", func(b *Bundle) { m := b.Manifest.Members; m[0], m[1] = m[1], m[0] }, ErrManifest},
		{"duplicate", func(b *Bundle) { b.Manifest.Members[1] = b.Manifest.Members[0] }, ErrDuplicate},
		{"unlisted file", func(b *Bundle) { b.files["proc/1/environ"] = nil }, ErrManifest},
		{"missing file", func(b *Bundle) { delete(b.files, "empty") }, ErrManifest},
		{"size", func(b *Bundle) { b.files["empty"] = []byte("x") }, ErrChecksum},
		{"checksum", func(b *Bundle) { b.files["proc/4242/stat"][0] = 'X' }, ErrChecksum},
		{"unsafe", func(b *Bundle) { *b = *New(b.Manifest, map[string][]byte{"a/../b": nil}) }, ErrUnsafePath},
		{"manifest as member", func(b *Bundle) { *b = *New(b.Manifest, map[string][]byte{ManifestName: nil}) }, ErrDuplicate},
		{"file and directory", func(b *Bundle) { *b = *New(b.Manifest, map[string][]byte{"a": nil, "a/b": nil}) }, ErrDuplicate},
	} {
		files := testFiles()
		files["proc/4242/stat"] = bytes.Clone(files["proc/4242/stat"])
		b := New(testManifest(), files)
		tc.fn(b)
		if err := b.CheckValid(); !errors.Is(err, tc.want) {
			t.Errorf("%s: CheckValid = %v, want %v", tc.name, err, tc.want)
		}
		if err := b.Write(new(bytes.Buffer)); err == nil {
			t.Errorf("%s: Write succeeded", tc.name)
		}
	}
}

func TestString(t *testing.T) {
	got := New(testManifest(), testFiles()).String()
	want := `format_version: 1
tool: "dashcam" "0.1.0-test"
host: "web-1" kernel "6.8.0-45-generic" cgroup "v2"
target: unit "payment.service" pids [4242 4243]
trigger: manual "dashcam capture --unit payment.service"
started: 2025-03-14T09:26:53.589793238Z
modules: 2
  proc ok members=6
  psi skipped members=0 reason="PSI disabled: boot with psi=1 (kernel 4.20+)"
members: 9
  empty 0 e3b0c44298fc
  proc/4242/cmdline 54 3b604d3d5c3a
  proc/4242/stat 79 0d54d417921a
  proc/4242/status 74 303a34ca4d85
  proc/4243/stat 78 7cdf80fcd8c2
  proc/pressure/cpu 58 6d0bc77911ef
  sys/fs/cgroup/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0d9a8e4c_2b1f_4e55_9a3c_6f1e2d3c4b5a.slice/cgroup.procs 10 422fdcd3903f
  sys/fs/cgroup/system.slice/payment.service/cpu.stat 78 52a97b2eea91
  sys/fs/cgroup/system.slice/payment.service/memory.events 55 4c9f71acf8e9
`
	if got != want {
		t.Errorf("String:\n%s\nwant:\n%s", got, want)
	}
}
