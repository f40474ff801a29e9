package bundle

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// testManifest is a manifest as a unit capture would fill it.
func testManifest() *Manifest {
	mem := uint64(8 << 30)
	started := time.Date(2025, 3, 14, 9, 26, 53, 589793238, time.UTC)
	return &Manifest{
		Tool: Tool{Name: "dashcam", Version: "0.1.0-test"},
		Host: Host{
			Hostname: "web-1", KernelRelease: "6.8.0-45-generic", Arch: "amd64",
			BootID: "0d9a8e4c-2b1f-4e55-9a3c-6f1e2d3c4b5a", CPUs: 4, MemTotalBytes: &mem,
			PageSize: 4096, ClockTicks: 100, CgroupMode: "v2",
		},
		Target: Target{Kind: "unit", Spec: "payment.service", Resolved: &ResolvedTarget{
			CgroupMode: "v2",
			Pids:       []int{4242, 4243},
		}},
		Trigger: Trigger{Kind: "manual", Reason: "dashcam capture --unit payment.service"},
		Started: started,
		Ended:   started.Add(2*time.Second + 250*time.Millisecond),
		Modules: []ModuleResult{
			{Name: "proc", Status: StatusOK, DurationMS: 12.5, Members: 6},
			{Name: "psi", Status: StatusSkipped, Reason: "PSI disabled: boot with psi=1 (kernel 4.20+)"},
		},
		Counts:     Counts{ProcessesSeen: 2, ThreadsSeen: 9},
		Redactions: []Redaction{{Pid: 4242, Member: "proc/4242/cmdline", Rule: "flag-password", Count: 1}},
		Notes:      []string{"excluded dashcam's own pid 77"},
	}
}

const cgroupDir = "sys/fs/cgroup/system.slice/payment.service"

// testFiles are members shaped like a small real capture, including a name
// longer than tar's 100-byte name field.
func testFiles() map[string][]byte {
	return map[string][]byte{
		"proc/4242/status":           []byte("Name:\tpayment\nState:\tS (sleeping)\nPid:\t4242\nVmRSS:\t  812344 kB\nThreads:\t9\n"),
		"proc/4242/cmdline":          []byte("/usr/bin/payment\x00--listen=:8080\x00--password=[REDACTED]\x00"),
		"proc/4242/stat":             []byte("4242 (payment) S 1 4242 4242 0 -1 4194560 190331 0 12 0 8812 1290 0 0 20 0 9 0\n"),
		"proc/4243/stat":             []byte("4243 (payment-worker) R 4242 4242 4242 0 -1 4194560 0 0 0 0 42 1 0 0 20 0 1 0\n"),
		"proc/pressure/cpu":          []byte("some avg10=71.32 avg60=64.10 avg300=40.02 total=912834712\n"),
		cgroupDir + "/memory.events": []byte("low 0\nhigh 0\nmax 118\noom 0\noom_kill 0\noom_group_kill 0\n"),
		cgroupDir + "/cpu.stat":      []byte("usage_usec 912834712\nnr_periods 1200\nnr_throttled 950\nthrottled_usec 81234567\n"),
		"sys/fs/cgroup/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0d9a8e4c_2b1f_4e55_9a3c_6f1e2d3c4b5a.slice/cgroup.procs": []byte("4242\n4243\n"),
		"empty": {},
	}
}

// commitTest writes files with testManifest into dir as name via Writer.
func commitTest(t testing.TB, dir, name string, files map[string][]byte) string {
	t.Helper()
	w, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	for n, data := range files {
		if err := w.Add(n, data); err != nil {
			t.Fatal(err)
		}
	}
	path, err := w.Commit(testManifest(), name)
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// encodeTest returns testFiles encoded as a bundle.
func encodeTest(t testing.TB, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := New(testManifest(), files).Write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// entry is one hand-made tar entry; a nil hdr means a regular file.
type entry struct {
	name string
	data []byte
	hdr  *tar.Header
}

// manifestEntry is manifest.json listing files, after mutating it with fn.
func manifestEntry(t testing.TB, files map[string][]byte, fn func(m *Manifest)) entry {
	t.Helper()
	b := New(testManifest(), files)
	if fn != nil {
		fn(b.Manifest)
	}
	data, err := marshalManifest(b.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	return entry{name: ManifestName, data: data}
}

// rawTar encodes entries as a plain tar, without any checks of ours.
func rawTar(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := e.hdr
		if hdr == nil {
			hdr = &tar.Header{Typeflag: tar.TypeReg, Name: e.name, Mode: 0o600, Size: int64(len(e.data))}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// zst compresses b as one zstd frame.
func zst(t testing.TB, b []byte) []byte {
	t.Helper()
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	return enc.EncodeAll(b, nil)
}

// rleFrame hand-encodes a zstd frame (8 MiB window, no checksum): prefix as
// raw blocks, then zeros (> 0) zero bytes as RLE blocks of 128 KiB, 4 bytes each.
// 3 GiB of zeros come out as 96 KiB: a decompression bomb.
func rleFrame(prefix []byte, zeros int64) []byte {
	const maxBlock = 128 << 10
	out := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 13 << 3} // magic, descriptor, window 2^(10+13)
	block := func(typ byte, size int, last bool) {
		h := uint32(size)<<3 | uint32(typ)<<1
		if last {
			h |= 1
		}
		n := len(out)
		out = binary.LittleEndian.AppendUint32(out, h)[:n+3] // 3-byte header
	}
	for len(prefix) > 0 {
		n := min(len(prefix), maxBlock)
		block(0, n, false) // raw
		out = append(out, prefix[:n]...)
		prefix = prefix[n:]
	}
	for zeros > 0 {
		n := min(zeros, maxBlock)
		zeros -= n
		block(1, int(n), zeros == 0) // RLE
		out = append(out, 0)
	}
	return out
}

// listDir returns the names in dir.
func listDir(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// assertNoBundle fails if dir holds anything that looks like a bundle, or
// (when strict) anything at all.
func assertNoBundle(t testing.TB, dir string, strict bool) {
	t.Helper()
	for _, name := range listDir(t, dir) {
		if strings.HasSuffix(name, ".tar.zst") || strict || !strings.HasPrefix(name, ".") {
			t.Errorf("%s left behind", filepath.Join(dir, name))
		}
	}
}
