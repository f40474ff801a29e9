package bundle

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// Limits bound what a reader accepts, so a hostile bundle cannot exhaust
// memory: the size one member declares (checked before reading it), the
// uncompressed stream as a whole (counted while decompressing, so a zstd
// bomb stops early), and the number of members.
type Limits struct {
	MaxMemberBytes, MaxTotalBytes int64
	MaxMembers                    int
}

// DefaultLimits are the limits of Read and Open. Writer refuses to grow a
// bundle past them, so everything dashcam writes, dashcam can read.
var DefaultLimits = Limits{MaxMemberBytes: 512 << 20, MaxTotalBytes: 2 << 30, MaxMembers: 1 << 20}

// maxWindow bounds the zstd window a stream may declare, and with it the
// decoder's memory. dashcam's encoder uses 8 MiB; zstd -19 also uses 8 MiB,
// and only --ultra or --long levels go beyond 64 MiB.
const maxWindow = 64 << 20

var zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}

// Open reads the bundle at path with DefaultLimits. Errors mention path.
func Open(path string) (*Bundle, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	defer f.Close()
	b, err := Read(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}

// Read reads a bundle with DefaultLimits.
func Read(r io.Reader) (*Bundle, error) {
	return ReadLimits(r, DefaultLimits)
}

// ReadLimits reads a zstd-compressed or plain tar bundle, treating it as
// hostile: see doc.go for what it refuses. It returns a bundle only if all
// of it was read and every checksum matched; the result passes CheckValid.
func ReadLimits(r io.Reader, l Limits) (*Bundle, error) {
	br := bufio.NewReader(r)
	head, err := br.Peek(512)
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	var src io.Reader
	switch {
	case len(head) == 0:
		return nil, fmt.Errorf("bundle: %w: empty input", ErrNotBundle)
	case bytes.HasPrefix(head, zstdMagic):
		dec, err := zstd.NewReader(br,
			zstd.WithDecoderConcurrency(1), // decode in this goroutine
			zstd.WithDecoderMaxMemory(maxWindow),
			zstd.WithDecoderLowmem(true))
		if err != nil {
			return nil, fmt.Errorf("bundle: zstd: %w", err)
		}
		defer dec.Close()
		src = dec
	case len(head) >= 262 && string(head[257:262]) == "ustar": // POSIX "ustar\0" and GNU "ustar "
		src = br
	default:
		return nil, fmt.Errorf("bundle: %w: neither zstd nor tar (starts with % x)", ErrNotBundle, head[:min(len(head), 8)])
	}
	in := &capReader{r: src, limit: l.MaxTotalBytes}
	b, err := readTar(in, l)
	if err != nil {
		return nil, err
	}
	// Read to the end of the stream: a zstd frame is only known to be
	// whole, with its checksum right, after its last byte.
	if _, err := io.Copy(io.Discard, in); err != nil {
		return nil, streamErr("", err)
	}
	return b, nil
}

func readTar(in io.Reader, l Limits) (*Bundle, error) {
	tr := tar.NewReader(in)
	b := &Bundle{files: make(map[string][]byte)}
	var want map[string]Member // manifest entries by name
	h := sha256.New()
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if errors.Is(err, tar.ErrInsecurePath) { // only under GODEBUG=tarinsecurepath=0
			if err := checkName(hdr.Name); err != nil {
				return nil, err
			}
			return nil, memberErr(hdr.Name, ErrUnsafePath, "")
		}
		if err != nil {
			return nil, streamErr("", err)
		}
		name := hdr.Name
		if hdr.Typeflag == tar.TypeDir {
			// Directories are implied by member paths; GNU tar adds them
			// when a user repacks an extracted bundle.
			if err := checkName(strings.TrimSuffix(name, "/")); err != nil {
				return nil, err
			}
			continue
		}
		if err := checkName(name); err != nil {
			return nil, err
		}
		if err := checkType(hdr); err != nil {
			return nil, err
		}
		if hdr.Size > l.MaxMemberBytes {
			return nil, memberErr(name, ErrTooLarge, "declares %d bytes, limit %d", hdr.Size, l.MaxMemberBytes)
		}
		if b.Manifest == nil {
			if name != ManifestName {
				return nil, fmt.Errorf("bundle: %w: first member is %q, not %s", ErrManifest, name, ManifestName)
			}
			data, err := readData(tr, name, hdr.Size)
			if err != nil {
				return nil, err
			}
			if b.Manifest, want, err = parseManifest(data, l); err != nil {
				return nil, err
			}
			continue
		}
		mem, ok := want[name]
		switch {
		case name == ManifestName:
			return nil, memberErr(name, ErrDuplicate, "")
		case b.files[name] != nil:
			return nil, memberErr(name, ErrDuplicate, "")
		case !ok:
			return nil, memberErr(name, ErrManifest, "not listed in %s", ManifestName)
		case hdr.Size != mem.Size: // known before reading the data
			return nil, memberErr(name, ErrChecksum, "%d bytes, manifest says %d", hdr.Size, mem.Size)
		}
		data, err := readData(tr, name, hdr.Size)
		if err != nil {
			return nil, err
		}
		h.Reset()
		h.Write(data)
		if err := checkSum(mem, int64(len(data)), hex.EncodeToString(h.Sum(nil))); err != nil {
			return nil, err
		}
		b.files[name] = data
	}
	if b.Manifest == nil {
		return nil, fmt.Errorf("bundle: %w: no %s (empty archive)", ErrManifest, ManifestName)
	}
	for _, mem := range b.Manifest.Members {
		if b.files[mem.Name] == nil {
			return nil, memberErr(mem.Name, ErrManifest, "listed in %s but missing from the archive", ManifestName)
		}
	}
	return b, nil
}

// checkType refuses everything but regular files.
func checkType(hdr *tar.Header) error {
	var what string
	switch hdr.Typeflag {
	case tar.TypeReg: // archive/tar reports the old TypeRegA as TypeReg
		for k := range hdr.PAXRecords {
			// archive/tar expands PAX sparse files itself: the holes would
			// bypass the count of decompressed bytes.
			if strings.HasPrefix(k, "GNU.sparse.") {
				return memberErr(hdr.Name, ErrEntryType, "sparse file")
			}
		}
		return nil
	case tar.TypeSymlink:
		what = fmt.Sprintf("symlink to %q", hdr.Linkname)
	case tar.TypeLink:
		what = fmt.Sprintf("hard link to %q", hdr.Linkname)
	case tar.TypeChar:
		what = "character device"
	case tar.TypeBlock:
		what = "block device"
	case tar.TypeFifo:
		what = "fifo"
	default:
		what = fmt.Sprintf("tar entry type %q", hdr.Typeflag)
	}
	return memberErr(hdr.Name, ErrEntryType, "%s", what)
}

// parseManifest decodes manifest.json and checks its member list: within
// limits, names safe, sorted, no duplicates. It returns the entries by name.
func parseManifest(data []byte, l Limits) (*Manifest, map[string]Member, error) {
	// Look at the version alone first: a future layout may not decode
	// into this Manifest, and "version 7 not supported" is the useful error.
	var v struct {
		FormatVersion *int `json:"format_version"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, nil, fmt.Errorf("bundle: %w: %s: %w", ErrManifest, ManifestName, err)
	}
	if v.FormatVersion == nil {
		return nil, nil, fmt.Errorf("bundle: %w: %s has no format_version", ErrManifest, ManifestName)
	}
	if *v.FormatVersion != FormatVersion {
		return nil, nil, fmt.Errorf("bundle: %w", &versionError{*v.FormatVersion})
	}
	m := new(Manifest)
	if err := json.Unmarshal(data, m); err != nil {
		return nil, nil, fmt.Errorf("bundle: %w: %s: %w", ErrManifest, ManifestName, err)
	}
	if len(m.Members) > l.MaxMembers {
		return nil, nil, fmt.Errorf("bundle: %w: %d members, limit %d", ErrTooLarge, len(m.Members), l.MaxMembers)
	}
	names := newNameSet()
	want := make(map[string]Member, len(m.Members))
	for i, mem := range m.Members {
		if err := names.add(mem.Name); err != nil {
			return nil, nil, err
		}
		if i > 0 && mem.Name < m.Members[i-1].Name {
			return nil, nil, memberErr(mem.Name, ErrManifest, "members not sorted by name")
		}
		want[mem.Name] = mem
	}
	return m, want, nil
}

// readData reads a member of the declared size. The buffer grows with the
// data that actually arrives, so a header that lies about its size cannot
// make the reader allocate memory up front.
func readData(tr *tar.Reader, name string, size int64) ([]byte, error) {
	buf := make([]byte, 0, min(size, 1<<20))
	for int64(len(buf)) < size {
		if len(buf) == cap(buf) {
			grown := make([]byte, len(buf), min(size, 2*int64(cap(buf))))
			copy(grown, buf)
			buf = grown
		}
		n, err := tr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break // tar reports a short entry as io.ErrUnexpectedEOF, never io.EOF
		}
		if err != nil {
			return nil, streamErr(name, err)
		}
	}
	return buf, nil
}

// streamErr turns an error from the tar or zstd layer into one of ours.
func streamErr(name string, err error) error {
	where := "bundle"
	if name != "" {
		where = fmt.Sprintf("bundle: member %q", name)
	}
	switch {
	case errors.Is(err, ErrTooLarge): // from capReader, already worded
		return err
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%s: %w", where, ErrTruncated)
	case errors.Is(err, zstd.ErrWindowSizeExceeded), errors.Is(err, zstd.ErrDecoderSizeExceeded):
		return fmt.Errorf("%s: %w: zstd window over %d bytes: %w", where, ErrTooLarge, maxWindow, err)
	}
	return fmt.Errorf("%s: %w: %w", where, ErrCorrupt, err)
}

// capReader fails with ErrTooLarge once its source yields more than limit
// bytes; exactly limit bytes followed by EOF is fine.
type capReader struct {
	r        io.Reader
	n, limit int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.n >= c.limit {
		// At the cap only EOF is acceptable: probe for one more byte.
		var one [1]byte
		n, err := c.r.Read(one[:])
		if n > 0 {
			return 0, fmt.Errorf("bundle: %w: more than %d bytes after decompression", ErrTooLarge, c.limit)
		}
		return 0, err
	}
	if int64(len(p)) > c.limit-c.n {
		p = p[:c.limit-c.n]
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
