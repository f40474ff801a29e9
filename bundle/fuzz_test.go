package bundle

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/seed-small.tar.zst")

// fuzzLimits keep each fuzz input cheap; DefaultLimits allow 2 GiB.
var fuzzLimits = Limits{MaxMemberBytes: 1 << 20, MaxTotalBytes: 4 << 20, MaxMembers: 1000}

// FuzzRead: every input is either refused with a nil bundle, or gives a
// valid bundle that encodes and reads back equal, and whose encoding is a
// fixed point (encoding it again gives the same bytes).
func FuzzRead(f *testing.F) {
	// Small seeds keep the fuzzer's minimization of what it finds short.
	tiny := map[string][]byte{"a": []byte("a"), "b/c": nil}
	f.Add(encodeTest(f, tiny))
	f.Add(encodeTest(f, nil))
	f.Add(rawTar(f, append([]entry{manifestEntry(f, tiny, nil)}, sortedEntries(tiny)...)...))
	data := encodeTest(f, testFiles())
	f.Add(data)
	f.Add(data[:len(data)/2])
	seeds, err := filepath.Glob("testdata/*.tar.zst")
	if err != nil {
		f.Fatal(err)
	}
	for _, path := range seeds {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ReadLimits(bytes.NewReader(data), fuzzLimits)
		if err != nil {
			if b != nil {
				t.Fatalf("bundle and error %v", err)
			}
			return
		}
		if err := b.CheckValid(); err != nil {
			t.Fatalf("Read gave an invalid bundle: %v", err)
		}
		var enc bytes.Buffer
		if err := b.Write(&enc); err != nil {
			t.Fatalf("Write: %v", err)
		}
		b2, err := ReadLimits(bytes.NewReader(enc.Bytes()), fuzzLimits)
		if err != nil {
			t.Fatalf("reading the re-encoding: %v", err)
		}
		assertEqual(t, b2, b)
		var enc2 bytes.Buffer
		if err := b2.Write(&enc2); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(enc.Bytes(), enc2.Bytes()) {
			t.Fatal("re-encoding is not a fixed point")
		}
	})
}

// assertEqual compares summaries, manifests and contents.
func assertEqual(t testing.TB, got, want *Bundle) {
	t.Helper()
	if got.String() != want.String() {
		t.Fatalf("bundle reads as\n%s\nwant\n%s", got, want)
	}
	if g, w := mustJSON(t, got.Manifest), mustJSON(t, want.Manifest); g != w {
		t.Fatalf("manifest\n%s\nwant\n%s", g, w)
	}
	for _, name := range want.Names() {
		g, _ := got.File(name)
		w, _ := want.File(name)
		if !bytes.Equal(g, w) {
			t.Fatalf("%s differs", name)
		}
	}
}

// seedSmall is testdata/seed-small.tar.zst: a small but realistic capture
// of a unit under CPU pressure, for the fuzzer and for readers' tests.
func seedSmall() (*Manifest, map[string][]byte) {
	m := testManifest()
	m.Trigger = Trigger{Kind: "cpu", Reason: "cpu 83% of limit for 30s (threshold 70%)",
		Evidence: map[string]any{"threshold_pct": 70.0, "window_s": 30.0, "samples_pct": []any{81.5, 84.0, 83.2}}}
	files := testFiles()
	files["events/history.jsonl"] = []byte(strings.Join([]string{
		`{"t":"2025-03-14T09:26:51Z","cpu_pct":81.5,"mem_bytes":831840256}`,
		`{"t":"2025-03-14T09:26:52Z","cpu_pct":84.0,"mem_bytes":831950848}`,
		`{"t":"2025-03-14T09:26:53Z","cpu_pct":83.2,"mem_bytes":832061440}`,
	}, "\n") + "\n")
	files["proc/4242/stack"] = []byte("[<0>] futex_wait_queue+0x60/0x90\n[<0>] futex_wait+0x185/0x270\n[<0>] do_futex+0x106/0x1b0\n")
	files[cgroupDir+"/cpu.max"] = []byte("200000 100000\n")
	files[cgroupDir+"/memory.current"] = []byte("832061440\n")
	files[cgroupDir+"/memory.max"] = []byte("1073741824\n")
	return m, files
}

// TestWriteSeed checks testdata/seed-small.tar.zst against seedSmall, or
// rewrites it with -update:
//
//	go test ./bundle -run TestWriteSeed -update
func TestWriteSeed(t *testing.T) {
	path := filepath.Join("testdata", "seed-small.tar.zst")
	m, files := seedSmall()
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
			t.Fatal(err) // Commit never replaces a file
		}
		w, err := Create("testdata")
		if err != nil {
			t.Fatal(err)
		}
		defer w.Abort()
		for name, data := range files {
			if err := w.Add(name, data); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := w.Commit(m, filepath.Base(path)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	assertEqual(t, got, New(m, files))
}
