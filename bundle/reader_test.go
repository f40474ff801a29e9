package bundle

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestReadHostile(t *testing.T) {
	files := map[string][]byte{
		"proc/1/stat":   []byte("1 (systemd) S 0 1 1 0 -1 4194560\n"),
		"proc/1/status": []byte("Name:\tsystemd\nPid:\t1\n"),
	}
	man := manifestEntry(t, files, nil)
	reg := func(name string, data string) entry { return entry{name: name, data: []byte(data)} }
	stat, status := reg("proc/1/stat", string(files["proc/1/stat"])), reg("proc/1/status", string(files["proc/1/status"]))
	special := func(typ byte, name, link string) entry {
		return entry{hdr: &tar.Header{Typeflag: typ, Name: name, Linkname: link, Mode: 0o600, Devmajor: 1, Devminor: 3}}
	}
	dir := func(name string) entry {
		return entry{hdr: &tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o700}}
	}
	mutate := func(fn func(m *Manifest)) entry { return manifestEntry(t, files, fn) }
	raw := func(data string) entry { return entry{name: ManifestName, data: []byte(data)} }
	valid := zst(t, rawTar(t, man, stat, status))

	// A header that declares 600 MiB, and then the stream just ends.
	var declared bytes.Buffer
	tw := tar.NewWriter(&declared)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "huge", Mode: 0o600, Size: 600 << 20})

	small := Limits{MaxMemberBytes: 4096, MaxTotalBytes: 1 << 20, MaxMembers: 1}
	big := map[string][]byte{"big": bytes.Repeat([]byte("x"), 5000)}

	for _, tc := range []struct {
		name   string
		in     []byte
		limits Limits // zero means DefaultLimits
		want   error  // nil means the bundle must read fine
		msg    string // if set, the error's exact text
	}{
		{name: "valid", in: valid},
		{name: "plain tar", in: rawTar(t, man, stat, status)},
		{name: "directory entries", in: zst(t, rawTar(t, man, dir("proc/"), dir("proc/1/"), stat, status))},

		{name: "traversal", in: zst(t, rawTar(t, man, reg("proc/1/../x", ""))), want: ErrUnsafePath,
			msg: `bundle: member "proc/1/../x": unsafe path: "." or ".." component`},
		{name: "absolute", in: zst(t, rawTar(t, man, reg("/etc/passwd", ""))), want: ErrUnsafePath,
			msg: `bundle: member "/etc/passwd": unsafe path: absolute`},
		{name: "dot prefix", in: zst(t, rawTar(t, man, reg("./proc/1/stat", ""))), want: ErrUnsafePath},
		{name: "double slash", in: zst(t, rawTar(t, man, reg("proc//1", ""))), want: ErrUnsafePath},
		{name: "traversal in directory entry", in: zst(t, rawTar(t, man, dir("../"))), want: ErrUnsafePath},
		{name: "traversal as first entry", in: zst(t, rawTar(t, reg("../manifest.json", ""))), want: ErrUnsafePath},
		{name: "traversal in manifest", in: zst(t, rawTar(t, mutate(func(m *Manifest) { m.Members[0].Name = "../stat" }))),
			want: ErrUnsafePath},

		{name: "symlink", in: zst(t, rawTar(t, man, special(tar.TypeSymlink, "proc/1/root", "/etc/shadow"))), want: ErrEntryType,
			msg: `bundle: member "proc/1/root": not a regular file: symlink to "/etc/shadow"`},
		{name: "hardlink", in: zst(t, rawTar(t, man, stat, special(tar.TypeLink, "proc/1/status", "proc/1/stat"))), want: ErrEntryType},
		{name: "char device", in: zst(t, rawTar(t, man, special(tar.TypeChar, "dev/null", ""))), want: ErrEntryType},
		{name: "block device", in: zst(t, rawTar(t, man, special(tar.TypeBlock, "dev/sda", ""))), want: ErrEntryType},
		{name: "fifo", in: zst(t, rawTar(t, man, special(tar.TypeFifo, "proc/1/stat", ""))), want: ErrEntryType},
		{name: "symlink as manifest", in: zst(t, rawTar(t, special(tar.TypeSymlink, ManifestName, "/etc/passwd"))), want: ErrEntryType},

		{name: "member over size", in: zst(t, rawTar(t, manifestEntry(t, big, nil), entry{name: "big", data: big["big"]})),
			limits: Limits{MaxMemberBytes: 4096, MaxTotalBytes: 1 << 20, MaxMembers: 10}, want: ErrTooLarge,
			msg: `bundle: member "big": too large: declares 5000 bytes, limit 4096`},
		{name: "declared size checked before reading", in: zst(t, declared.Bytes()), want: ErrTooLarge},
		{name: "too many members", in: valid, limits: small, want: ErrTooLarge},
		{name: "over total", in: valid, limits: Limits{MaxMemberBytes: 4096, MaxTotalBytes: 2048, MaxMembers: 10}, want: ErrTooLarge},

		{name: "duplicate member", in: zst(t, rawTar(t, man, stat, stat, status)), want: ErrDuplicate},
		{name: "second manifest", in: zst(t, rawTar(t, man, stat, status, man)), want: ErrDuplicate},
		{name: "member is also a directory", in: zst(t, rawTar(t, manifestEntry(t, map[string][]byte{"a": nil, "a/b": nil}, nil))),
			want: ErrDuplicate},

		{name: "bad checksum", in: zst(t, rawTar(t, mutate(func(m *Manifest) { m.Members[1].SHA256 = strings.Repeat("0", 64) }), stat, status)),
			want: ErrChecksum},
		{name: "size differs", in: zst(t, rawTar(t, mutate(func(m *Manifest) { m.Members[0].Size++ }), stat, status)),
			want: ErrChecksum},

		{name: "wrong version", in: zst(t, rawTar(t, mutate(func(m *Manifest) { m.FormatVersion = 7 }), stat, status)), want: ErrVersion,
			msg: "bundle: format version 7 not supported (this dashcam reads 1)"},
		{name: "future layout", in: zst(t, rawTar(t, raw(`{"format_version": 2, "members": {"new": "shape"}}`))), want: ErrVersion},
		{name: "no version", in: zst(t, rawTar(t, raw(`{"members": []}`))), want: ErrManifest},
		{name: "manifest not JSON", in: zst(t, rawTar(t, raw("Name:\tsystemd\n"))), want: ErrManifest},
		{name: "manifest wrong types", in: zst(t, rawTar(t, raw(`{"format_version": 1, "members": "all"}`))), want: ErrManifest},
		{name: "manifest not first", in: zst(t, rawTar(t, stat, man, status)), want: ErrManifest,
			msg: `bundle: bad manifest: first member is "proc/1/stat", not manifest.json`},
		{name: "no manifest", in: zst(t, rawTar(t)), want: ErrManifest},
		{name: "unsorted manifest", in: zst(t, rawTar(t, mutate(func(m *Manifest) {
			m.Members[0], m.Members[1] = m.Members[1], m.Members[0]
		}), stat, status)), want: ErrManifest},
		{name: "extra member", in: zst(t, rawTar(t, man, stat, status, reg("proc/1/environ", "SECRET=1"))), want: ErrManifest,
			msg: `bundle: member "proc/1/environ": bad manifest: not listed in manifest.json`},
		{name: "missing member", in: zst(t, rawTar(t, man, stat)), want: ErrManifest,
			msg: `bundle: member "proc/1/status": bad manifest: listed in manifest.json but missing from the archive`},

		{name: "empty", in: nil, want: ErrNotBundle, msg: "bundle: not a dashcam bundle: empty input"},
		{name: "garbage", in: []byte("<html><body>502 Bad Gateway</body></html>"), want: ErrNotBundle,
			msg: "bundle: not a dashcam bundle: neither zstd nor tar (starts with 3c 68 74 6d 6c 3e 3c 62)"},
		{name: "gzip", in: []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0}, want: ErrNotBundle},
		{name: "zstd magic then junk", in: append([]byte{0x28, 0xb5, 0x2f, 0xfd}, bytes.Repeat([]byte{0xff}, 64)...), want: ErrCorrupt},
		{name: "junk after frame", in: append(bytes.Clone(valid), "junk"...), want: ErrCorrupt},
		{name: "frame checksum", in: flipLast(valid), want: ErrCorrupt},
		{name: "zstd window 1 GiB", in: []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 20 << 3, 1, 0, 0, 0}, want: ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := tc.limits
			if l == (Limits{}) {
				l = DefaultLimits
			}
			b, err := ReadLimits(bytes.NewReader(tc.in), l)
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if err := b.CheckValid(); err != nil {
					t.Fatal(err)
				}
				return
			}
			if b != nil || !errors.Is(err, tc.want) {
				t.Fatalf("ReadLimits = %v, %v; want nil, %v", b, err, tc.want)
			}
			t.Log(err)
			if tc.msg != "" && err.Error() != tc.msg {
				t.Errorf("error text\n got %s\nwant %s", err, tc.msg)
			}
		})
	}
}

// flipLast returns b with its last byte changed: in a zstd frame written
// with a checksum, that is the checksum.
func flipLast(b []byte) []byte {
	b = bytes.Clone(b)
	b[len(b)-1] ^= 0xff
	return b
}

// Every proper prefix of a zstd bundle is refused, as truncated once the
// magic is in.
func TestReadTruncated(t *testing.T) {
	data := encodeTest(t, testFiles())
	for cut := range len(data) {
		_, err := Read(bytes.NewReader(data[:cut]))
		want := ErrTruncated
		if cut < len(zstdMagic) {
			want = ErrNotBundle
		}
		if !errors.Is(err, want) {
			t.Errorf("cut at %d of %d: %v, want %v", cut, len(data), err, want)
		}
	}
	_, err := Read(bytes.NewReader(data[:len(data)/2]))
	if !strings.HasPrefix(err.Error(), "bundle: ") || !strings.HasSuffix(err.Error(), ": truncated") {
		t.Errorf("error text %q", err)
	}

	// A plain tar has no frame to tell where it ends: a cut at a member
	// boundary is caught by the manifest. A cut after the last byte of the
	// last member loses nothing: archive/tar accepts it at a block boundary
	// and calls it truncated elsewhere.
	files := testFiles()
	entries := append([]entry{manifestEntry(t, files, nil)}, sortedEntries(files)...)
	plain := rawTar(t, entries...)
	last := len(entries[len(entries)-1].data)
	dataEnd := len(plain) - 1024 - (512-last%512)%512
	for cut := 0; cut < dataEnd; cut += 37 {
		_, err := Read(bytes.NewReader(plain[:cut]))
		if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrManifest) && !errors.Is(err, ErrNotBundle) {
			t.Errorf("plain tar cut at %d of %d: %v", cut, len(plain), err)
		}
	}
	for cut := dataEnd; cut <= len(plain); cut += 37 {
		if _, err := Read(bytes.NewReader(plain[:cut])); err != nil && !errors.Is(err, ErrTruncated) {
			t.Errorf("plain tar cut after its data at %d of %d: %v", cut, len(plain), err)
		}
	}
	for _, cut := range []int{len(plain) - 1024, len(plain) - 512, len(plain)} {
		if _, err := Read(bytes.NewReader(plain[:cut])); err != nil {
			t.Errorf("plain tar cut at block %d of %d: %v", cut, len(plain), err)
		}
	}
}

func sortedEntries(files map[string][]byte) []entry {
	var es []entry
	for _, name := range New(nil, files).Names() {
		es = append(es, entry{name: name, data: files[name]})
	}
	return es
}

// A 3 GiB member of zeros compresses to 96 KiB. The reader must stop
// after MaxTotalBytes of output, without reading all of its input or
// allocating more than it was allowed.
func TestReadZstdBomb(t *testing.T) {
	const size = 3 << 30
	m := testManifest()
	m.FormatVersion = FormatVersion
	m.Members = []Member{{Name: "zero", Size: size, SHA256: strings.Repeat("0", 64)}}
	mjson, err := marshalManifest(m)
	if err != nil {
		t.Fatal(err)
	}
	var prefix bytes.Buffer
	tw := tar.NewWriter(&prefix)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: ManifestName, Mode: 0o600, Size: int64(len(mjson))})
	tw.Write(mjson)
	tw.Flush()
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "zero", Mode: 0o600, Size: size})
	bomb := rleFrame(prefix.Bytes(), size+1024) // the member, then the end-of-archive blocks
	t.Logf("bomb: %d bytes compressed, %d bytes of tar", len(bomb), prefix.Len()+size+1024)

	// Past a valid bundle's end-of-archive blocks, zeros only count.
	trailing := rleFrame(rawTar(t, append([]entry{manifestEntry(t, testFiles(), nil)}, sortedEntries(testFiles())...)...), size)

	for _, tc := range []struct {
		name   string
		in     []byte
		limits Limits
		msg    string
	}{
		{"counted while reading", bomb, Limits{MaxMemberBytes: 4 << 30, MaxTotalBytes: 16 << 20, MaxMembers: 10},
			"bundle: too large: more than 16777216 bytes after decompression"},
		{"member header", bomb, DefaultLimits,
			`bundle: member "zero": too large: declares 3221225472 bytes, limit 536870912`},
		{"after the archive", trailing, Limits{MaxMemberBytes: 1 << 20, MaxTotalBytes: 16 << 20, MaxMembers: 100},
			"bundle: too large: more than 16777216 bytes after decompression"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := &countReader{r: bytes.NewReader(tc.in)}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			b, err := ReadLimits(in, tc.limits)
			runtime.ReadMemStats(&after)
			if b != nil || !errors.Is(err, ErrTooLarge) || err.Error() != tc.msg {
				t.Fatalf("ReadLimits = %v, %v; want %s", b, err, tc.msg)
			}
			if in.n >= int64(len(tc.in)) {
				t.Errorf("read all %d bytes of input before refusing", in.n)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 128<<20 {
				t.Errorf("allocated %d MiB", alloc>>20)
			}
		})
	}
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.tar.zst")
	if _, err := Open(missing); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("Open(missing) = %v", err)
	}
	junk := filepath.Join(dir, "junk.tar.zst")
	if err := os.WriteFile(junk, []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(junk)
	if want := junk + ": bundle: not a dashcam bundle: neither zstd nor tar (starts with 6a 75 6e 6b)"; err == nil || err.Error() != want {
		t.Errorf("Open(junk) = %v, want %s", err, want)
	}
	if !errors.Is(err, ErrNotBundle) {
		t.Errorf("Open(junk) error does not match ErrNotBundle")
	}
}
