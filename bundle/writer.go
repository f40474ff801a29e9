package bundle

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// Writer collects members while a capture runs and writes the bundle
// atomically at Commit. Members go to a spool file as they are added; only
// an index stays in memory. All methods are safe for concurrent use.
type Writer struct {
	dir string

	mu     sync.Mutex
	spool  *os.File // nil after Commit or Abort
	closed bool
	names  *nameSet
	index  map[string]spooled
	bytes  int64 // raw member bytes
	cost   int64 // upper bound of the uncompressed tar stream so far
	mcost  int64 // upper bound of manifest.json so far
}

// spooled locates a member in the spool file.
type spooled struct {
	off, size int64
	sha256    string
}

// baseCost reserves room for what Add cannot know: the manifest's fields
// other than Members, its tar header and padding, and the tar trailer.
const baseCost = 64 << 10

// entryCost bounds a member's entry in manifest.json: 149 bytes of
// indented JSON around a name that escaping at most doubles (checkName
// rules out control characters; '"' and U+2028 are the worst cases).
func entryCost(name string) int64 {
	return 150 + 2*int64(len(name))
}

// memberCost bounds what a member adds to the uncompressed tar stream:
// its data, a 512-byte header, up to 511 bytes of padding, a PAX header
// for a long name (512 bytes, then the name plus 12 padded to 512), and
// its manifest entry.
func memberCost(name string, size int) int64 {
	return int64(size) + 2058 + int64(len(name)) + entryCost(name)
}

// Create starts a bundle that will be committed into dir. The spool file
// is created in dir as ".dashcam-*.spool" (mode 0600) and unlinked at once,
// so a crash or SIGKILL leaves nothing behind and its space is freed.
func Create(dir string) (*Writer, error) {
	f, err := os.CreateTemp(dir, ".dashcam-*.spool")
	if err != nil {
		return nil, fmt.Errorf("bundle: create spool: %w", err)
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, fmt.Errorf("bundle: unlink spool: %w", err)
	}
	return &Writer{
		dir:   dir,
		spool: f,
		names: newNameSet(),
		index: make(map[string]spooled),
		cost:  baseCost,
		mcost: baseCost,
	}, nil
}

// Add appends member name with contents data. The name must be a clean
// relative slash path, not manifest.json, not already added, and not a
// directory of (or inside) another member. Add refuses members that would
// take the bundle past DefaultLimits, so that every committed bundle can be
// read back. data is not retained.
func (w *Writer) Add(name string, data []byte) error {
	if err := checkName(name); err != nil {
		return err
	}
	sha := sum(data) // hash outside the lock: concurrent Adds hash in parallel
	cost := memberCost(name, len(data))

	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return fmt.Errorf("bundle: member %q: %w", name, ErrClosed)
	}
	if err := w.names.check(name); err != nil {
		return err
	}
	lim := DefaultLimits
	switch {
	case int64(len(data)) > lim.MaxMemberBytes:
		return memberErr(name, ErrTooLarge, "%d bytes, limit %d", len(data), lim.MaxMemberBytes)
	case len(w.index) >= lim.MaxMembers:
		return memberErr(name, ErrTooLarge, "bundle already has %d members", len(w.index))
	case w.cost+cost > lim.MaxTotalBytes:
		return memberErr(name, ErrTooLarge, "bundle would exceed %d bytes", lim.MaxTotalBytes)
	case w.mcost+entryCost(name) > lim.MaxMemberBytes:
		return memberErr(name, ErrTooLarge, "%s would exceed %d bytes", ManifestName, lim.MaxMemberBytes)
	}
	// WriteAt at the end of what is recorded: a failed write (disk full)
	// records nothing, and the next Add overwrites its partial data.
	if _, err := w.spool.WriteAt(data, w.bytes); err != nil {
		return fmt.Errorf("bundle: member %q: spool: %w", name, err)
	}
	w.names.add(name) // cannot fail: checked above, under the same lock
	w.index[name] = spooled{off: w.bytes, size: int64(len(data)), sha256: sha}
	w.bytes += int64(len(data))
	w.cost += cost
	w.mcost += entryCost(name)
	return nil
}

// Has reports whether member name was added.
func (w *Writer) Has(name string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.index[name]
	return ok
}

// Len returns the number of members added.
func (w *Writer) Len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.index)
}

// Bytes returns the total size of the members added, before compression.
func (w *Writer) Bytes() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.bytes
}

// Commit sets m.FormatVersion and m.Members (sorted by name, with sizes and
// checksums) and writes the bundle to dir/filename, which must be a plain
// base name ending in ".tar.zst". It writes a hidden temp file
// dir/.filename.tmp-* (mode 0600), fsyncs it, links it to its final name
// (refusing to replace an existing file), and fsyncs dir. On any error
// nothing named *.tar.zst is left behind. Either way the writer is done:
// later calls to Add and Commit return ErrClosed.
func (w *Writer) Commit(m *Manifest, filename string) (path string, err error) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return "", fmt.Errorf("bundle: commit %s: %w", filename, ErrClosed)
	}
	w.closed = true
	spool := w.spool
	w.spool = nil
	w.mu.Unlock()
	defer spool.Close() // unlinked already: closing frees the space

	if filename != filepath.Base(filename) || strings.HasPrefix(filename, ".") ||
		!strings.HasSuffix(filename, ".tar.zst") || filename == ".tar.zst" {
		return "", fmt.Errorf("bundle: bad file name %q: want a base name ending in .tar.zst", filename)
	}
	if m == nil {
		return "", fmt.Errorf("bundle: commit %s: %w: nil", filename, ErrManifest)
	}
	// No lock needed from here: closed is set, so the index no longer changes.
	m.FormatVersion = FormatVersion
	m.Members = make([]Member, 0, len(w.index))
	for name, s := range w.index {
		m.Members = append(m.Members, Member{Name: name, Size: s.size, SHA256: s.sha256})
	}
	slices.SortFunc(m.Members, func(a, b Member) int { return cmp.Compare(a.Name, b.Name) })

	tmp, err := os.CreateTemp(w.dir, "."+filename+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("bundle: %w", err)
	}
	defer func() {
		tmp.Close()           // a second Close is harmless
		os.Remove(tmp.Name()) // on success, already gone
	}()
	err = encode(tmp, m, func(mem Member) io.Reader {
		s := w.index[mem.Name]
		return io.NewSectionReader(spool, s.off, s.size)
	})
	if err != nil {
		return "", err
	}
	if err := tmp.Sync(); err != nil {
		return "", fmt.Errorf("bundle: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("bundle: %w", err)
	}
	path = filepath.Join(w.dir, filename)
	if err := publish(tmp.Name(), path); err != nil {
		return "", err
	}
	os.Remove(tmp.Name()) // before syncDir, so that one fsync covers both names
	if err := syncDir(w.dir); err != nil {
		os.Remove(path)
		return "", err
	}
	return path, nil
}

// publish gives the finished temp file its final name without replacing
// an existing file: link then unlink, since rename(2) would overwrite and
// RENAME_NOREPLACE needs x/sys. Filesystems without hard links (vfat, some
// FUSE) fall back to a rename after checking that path is free.
func publish(tmp, path string) error {
	err := os.Link(tmp, path)
	switch {
	case err == nil:
		return nil // Commit removes the temp name
	case errors.Is(err, fs.ErrExist):
		return fmt.Errorf("bundle: %s: %w", path, fs.ErrExist)
	}
	if _, serr := os.Lstat(path); serr == nil {
		return fmt.Errorf("bundle: %s: %w", path, fs.ErrExist)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("bundle: sync dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("bundle: sync dir: %w", err)
	}
	return nil
}

// Abort discards the members added so far. It is idempotent and does
// nothing after Commit, so `defer w.Abort()` is a safe cleanup.
func (w *Writer) Abort() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	if w.spool == nil {
		return nil
	}
	err := w.spool.Close()
	w.spool = nil
	if err != nil {
		return fmt.Errorf("bundle: abort: %w", err)
	}
	return nil
}
