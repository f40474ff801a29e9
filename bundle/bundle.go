package bundle

import (
	"archive/tar"
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
)

// Bundle is a bundle held in memory: its manifest and its members.
type Bundle struct {
	Manifest *Manifest
	files    map[string][]byte
}

// New builds an in-memory bundle from files (member name to contents),
// setting m.FormatVersion and m.Members. It does not validate names; call
// CheckValid for that. A nil m is replaced by an empty Manifest.
func New(m *Manifest, files map[string][]byte) *Bundle {
	if m == nil {
		m = &Manifest{}
	}
	b := &Bundle{Manifest: m, files: maps.Clone(files)}
	if b.files == nil {
		b.files = make(map[string][]byte)
	}
	m.Members = make([]Member, 0, len(b.files))
	for name, data := range b.files {
		m.Members = append(m.Members, Member{Name: name, Size: int64(len(data)), SHA256: sum(data)})
	}
	slices.SortFunc(m.Members, func(a, b Member) int { return cmp.Compare(a.Name, b.Name) })
	m.FormatVersion = FormatVersion
	return b
}

// File returns the contents of member name. The caller must not modify them.
func (b *Bundle) File(name string) ([]byte, bool) {
	data, ok := b.files[name]
	return data, ok
}

// Names returns the member names, sorted, without manifest.json.
func (b *Bundle) Names() []string {
	return slices.Sorted(maps.Keys(b.files))
}

// CheckValid reports the first broken invariant of b:
//   - the manifest exists and its format version is FormatVersion;
//   - manifest members are sorted by name, without duplicates, and every
//     name is safe (see checkName), is not manifest.json, and is not also
//     the directory of another member;
//   - manifest members and files are the same set;
//   - every file has the size and SHA-256 its manifest entry states.
func (b *Bundle) CheckValid() error {
	if b == nil || b.Manifest == nil {
		return fmt.Errorf("bundle: %w: missing", ErrManifest)
	}
	if v := b.Manifest.FormatVersion; v != FormatVersion {
		return fmt.Errorf("bundle: %w", &versionError{v})
	}
	names := newNameSet()
	for i, mem := range b.Manifest.Members {
		if err := names.add(mem.Name); err != nil {
			return err
		}
		if i > 0 && mem.Name < b.Manifest.Members[i-1].Name {
			return memberErr(mem.Name, ErrManifest, "members not sorted by name")
		}
		data, ok := b.files[mem.Name]
		if !ok {
			return memberErr(mem.Name, ErrManifest, "listed in manifest.json but missing from the bundle")
		}
		if err := checkSum(mem, int64(len(data)), sum(data)); err != nil {
			return err
		}
	}
	for _, name := range b.Names() {
		if !names.files[name] {
			return memberErr(name, ErrManifest, "not listed in manifest.json")
		}
	}
	return nil
}

// checkSum compares a member's actual size and hex SHA-256 with its entry.
func checkSum(mem Member, size int64, sha string) error {
	if size != mem.Size {
		return memberErr(mem.Name, ErrChecksum, "%d bytes, manifest says %d", size, mem.Size)
	}
	if sha != mem.SHA256 {
		return memberErr(mem.Name, ErrChecksum, "sha256 %s, manifest says %q", sha, mem.SHA256)
	}
	return nil
}

// String summarizes b deterministically, one fact per line, for tests and
// debugging. Durations are left out so that captures can be compared.
func (b *Bundle) String() string {
	var s strings.Builder
	m := b.Manifest
	if m == nil {
		m = &Manifest{}
	}
	fmt.Fprintf(&s, "format_version: %d\n", m.FormatVersion)
	fmt.Fprintf(&s, "tool: %q %q\n", m.Tool.Name, m.Tool.Version)
	fmt.Fprintf(&s, "host: %q kernel %q cgroup %q\n", m.Host.Hostname, m.Host.KernelRelease, m.Host.CgroupMode)
	fmt.Fprintf(&s, "target: %s %q", m.Target.Kind, m.Target.Spec)
	if r := m.Target.Resolved; r != nil {
		fmt.Fprintf(&s, " pids %v", r.Pids)
	}
	fmt.Fprintf(&s, "\ntrigger: %s %q\n", m.Trigger.Kind, m.Trigger.Reason)
	fmt.Fprintf(&s, "started: %s\n", m.Started.UTC().Format(time.RFC3339Nano))
	fmt.Fprintf(&s, "modules: %d\n", len(m.Modules))
	for _, mod := range m.Modules {
		fmt.Fprintf(&s, "  %s %s members=%d", mod.Name, mod.Status, mod.Members)
		if mod.Reason != "" {
			fmt.Fprintf(&s, " reason=%q", mod.Reason)
		}
		s.WriteString("\n")
	}
	fmt.Fprintf(&s, "members: %d\n", len(m.Members))
	for _, mem := range m.Members {
		fmt.Fprintf(&s, "  %s %d %.12s\n", mem.Name, mem.Size, mem.SHA256)
	}
	return s.String()
}

// Write encodes b exactly as Writer.Commit does. It refuses a bundle that
// fails CheckValid or exceeds DefaultLimits.
func (b *Bundle) Write(w io.Writer) error {
	if err := b.CheckValid(); err != nil {
		return err
	}
	return encode(w, b.Manifest, func(mem Member) io.Reader {
		return bytes.NewReader(b.files[mem.Name])
	})
}

// encode writes the bundle stream: a zstd-compressed tar whose first member
// is manifest.json, followed by m.Members in order, each read from open.
// m.Members must already be final. encode re-hashes every member as it
// copies it, so a bundle never carries a checksum that does not match.
func encode(w io.Writer, m *Manifest, open func(Member) io.Reader) error {
	mjson, err := marshalManifest(m)
	if err != nil {
		return err
	}
	lim := DefaultLimits
	switch {
	case int64(len(mjson)) > lim.MaxMemberBytes:
		return memberErr(ManifestName, ErrTooLarge, "%d bytes, limit %d", len(mjson), lim.MaxMemberBytes)
	case len(m.Members) > lim.MaxMembers:
		return fmt.Errorf("bundle: %w: %d members, limit %d", ErrTooLarge, len(m.Members), lim.MaxMembers)
	}
	zw, err := getEncoder(w)
	if err != nil {
		return err
	}
	cw := &capWriter{w: zw, left: lim.MaxTotalBytes}
	tw := tar.NewWriter(cw)
	mtime := modTime(m)
	if err := writeMember(tw, ManifestName, mjson, mtime); err != nil {
		return err
	}
	h := sha256.New()
	buf := make([]byte, 32<<10)
	for _, mem := range m.Members {
		h.Reset()
		if err := copyMember(tw, mem, open(mem), mtime, h, buf); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	zw.Reset(nil)
	encoders.Put(zw) // only a cleanly closed encoder goes back
	return nil
}

// encoders holds idle zstd encoders. Each owns some MiB of tables and
// history; reusing them spares that allocation when bundles are encoded
// one after another (tests, fuzzing, re-encoding), and sync.Pool drops
// them at the next GCs otherwise.
var encoders sync.Pool

func getEncoder(w io.Writer) (*zstd.Encoder, error) {
	if zw, ok := encoders.Get().(*zstd.Encoder); ok {
		zw.Reset(w)
		return zw, nil
	}
	// Concurrency 1 encodes in the calling goroutine, so an encoder
	// abandoned on an error path holds no goroutine and needs no Close.
	zw, err := zstd.NewWriter(w, zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, fmt.Errorf("bundle: zstd: %w", err)
	}
	return zw, nil
}

func writeMember(tw *tar.Writer, name string, data []byte, mtime time.Time) error {
	if err := tw.WriteHeader(header(name, int64(len(data)), mtime)); err != nil {
		return fmt.Errorf("bundle: member %q: %w", name, err)
	}
	if _, err := tw.Write(data); err != nil {
		return fmt.Errorf("bundle: member %q: %w", name, err)
	}
	return nil
}

// copyMember copies mem from r into tw, checking its size and SHA-256.
func copyMember(tw *tar.Writer, mem Member, r io.Reader, mtime time.Time, h hash.Hash, buf []byte) error {
	if err := tw.WriteHeader(header(mem.Name, mem.Size, mtime)); err != nil {
		return fmt.Errorf("bundle: member %q: %w", mem.Name, err)
	}
	// Read one byte past the size so that a source longer than its entry
	// shows up as a size mismatch rather than as tar.ErrWriteTooLong.
	n, err := io.CopyBuffer(io.MultiWriter(tw, h), io.LimitReader(r, mem.Size+1), buf)
	if err != nil && n <= mem.Size {
		return fmt.Errorf("bundle: member %q: %w", mem.Name, err)
	}
	return checkSum(mem, n, hex.EncodeToString(h.Sum(nil)))
}

func header(name string, size int64, mtime time.Time) *tar.Header {
	// Uid, Gid, Uname, Gname stay zero/empty; archive/tar picks USTAR and
	// switches to PAX only when a name does not fit.
	return &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o600, ModTime: mtime}
}

// modTime is the time stamped on every tar entry: m.Started in whole UTC
// seconds, so that equal bundles encode equally. Times before the epoch
// (e.g. a zero Started) become the epoch, which every tar can represent.
func modTime(m *Manifest) time.Time {
	t := m.Started.Truncate(time.Second).UTC()
	if t.Before(time.Unix(0, 0)) {
		return time.Unix(0, 0).UTC()
	}
	return t
}

func marshalManifest(m *Manifest) ([]byte, error) {
	// The manifest is indented for people, except its member list: one
	// compact line per member. A capture of 1000 processes has ~65k
	// members, and indenting each of their objects tripled the size and
	// the cost of encoding the manifest.
	head := *m
	head.Members = nil
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(&head); err != nil {
		return nil, fmt.Errorf("bundle: encode %s: %w", ManifestName, err)
	}
	// Members is the manifest's last field, so the encoding ends with it.
	const tail = "\n  \"members\": null\n}\n"
	out := buf.Bytes()
	if !bytes.HasSuffix(out, []byte(tail)) {
		return nil, fmt.Errorf("bundle: encode %s: members is not the last field", ManifestName)
	}
	// One allocation: each member line is its name plus ~110 bytes.
	size := len(out) + 16
	for _, mem := range m.Members {
		size += len(mem.Name) + len(mem.SHA256) + 64
	}
	out = append(make([]byte, 0, size), out[:len(out)-len(tail)]...)
	out = append(out, "\n  \"members\": ["...)
	for i, mem := range m.Members {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, "\n    {\"name\": "...)
		out = appendJSONString(out, mem.Name)
		out = append(out, ", \"size\": "...)
		out = strconv.AppendInt(out, mem.Size, 10)
		out = append(out, ", \"sha256\": "...)
		out = appendJSONString(out, mem.SHA256)
		out = append(out, '}')
	}
	if len(m.Members) > 0 {
		out = append(out, "\n  "...)
	}
	return append(out, "]\n}\n"...), nil
}

// appendJSONString appends s as a JSON string, as encoding/json would with
// HTML escaping off; plain printable ASCII (every name dashcam writes)
// takes the fast path.
func appendJSONString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			var b bytes.Buffer
			enc := json.NewEncoder(&b)
			enc.SetEscapeHTML(false)
			_ = enc.Encode(s) // a string always encodes
			return append(dst, bytes.TrimSuffix(b.Bytes(), []byte("\n"))...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

func sum(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

// capWriter fails once more than left bytes were written through it, so
// the writer never produces a stream the default reader would refuse.
type capWriter struct {
	w    io.Writer
	left int64
}

func (c *capWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > c.left {
		// Unprefixed: the tar writer passes this up to a caller that says
		// which member it was writing.
		return 0, fmt.Errorf("%w: stream over %d bytes uncompressed", ErrTooLarge, DefaultLimits.MaxTotalBytes)
	}
	c.left -= int64(len(p))
	return c.w.Write(p)
}
