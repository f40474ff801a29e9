package bundle

import (
	"bytes"
	"fmt"
	"os"
	"testing"
)

// benchFiles are 3000 members of 1 KiB of procfs-like text, roughly the
// proc/<pid>/* files of a few hundred processes.
func benchFiles() map[string][]byte {
	files := make(map[string][]byte, 3000)
	for i := range 3000 {
		var b bytes.Buffer
		for b.Len() < 1024 {
			fmt.Fprintf(&b, "VmRSS:\t%8d kB\nvoluntary_ctxt_switches:\t%d\n", i*7919%100000, i*31)
		}
		files[fmt.Sprintf("proc/%d/status", 1000+i)] = b.Bytes()[:1024]
	}
	return files
}

func BenchmarkWriteCommit(b *testing.B) {
	files := benchFiles()
	b.SetBytes(3000 * 1024)
	b.ReportAllocs()
	var size int64
	for b.Loop() {
		dir := b.TempDir()
		w, err := Create(dir)
		if err != nil {
			b.Fatal(err)
		}
		for name, data := range files {
			if err := w.Add(name, data); err != nil {
				b.Fatal(err)
			}
		}
		path, err := w.Commit(testManifest(), "bench.tar.zst")
		if err != nil {
			b.Fatal(err)
		}
		st, err := os.Stat(path)
		if err != nil {
			b.Fatal(err)
		}
		size = st.Size()
	}
	b.ReportMetric(float64(size), "bundle-bytes")
}

func BenchmarkRead(b *testing.B) {
	data := encodeTest(b, benchFiles())
	b.SetBytes(3000 * 1024)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Read(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}
