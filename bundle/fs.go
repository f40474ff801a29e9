package bundle

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"time"
)

// FS returns a read-only view of the members. Directories are implied by
// member paths; manifest.json is not part of it (see Manifest).
func (b *Bundle) FS() fs.FS {
	f := &memFS{files: b.files, dirs: map[string][]string{".": nil}, mtime: time.Unix(0, 0)}
	if b.Manifest != nil {
		f.mtime = modTime(b.Manifest)
	}
	for name := range b.files {
		// Register name with its parent, then each directory with its
		// parent, stopping at the first directory already known.
		for child := name; ; {
			dir := path.Dir(child)
			_, known := f.dirs[dir]
			f.dirs[dir] = append(f.dirs[dir], path.Base(child))
			if known || dir == "." {
				break
			}
			child = dir
		}
	}
	for _, entries := range f.dirs {
		slices.Sort(entries)
	}
	return f
}

// memFS serves members from memory. Files are 0400, directories 0500.
type memFS struct {
	files map[string][]byte
	dirs  map[string][]string // directory to sorted child base names
	mtime time.Time
}

func (f *memFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	if data, ok := f.files[name]; ok {
		return &memFile{Reader: bytes.NewReader(data), info: f.info(name)}, nil
	}
	if _, ok := f.dirs[name]; ok {
		return &memDir{fsys: f, name: name}, nil
	}
	return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
}

// ReadFile implements fs.ReadFileFS without the copy through Open.
func (f *memFS) ReadFile(name string) ([]byte, error) {
	if data, ok := f.files[name]; ok && fs.ValidPath(name) {
		return bytes.Clone(data), nil // callers may modify the result
	}
	file, err := f.Open(name) // for the right error
	if err == nil {
		file.Close()
		err = &fs.PathError{Op: "read", Path: name, Err: errIsDir}
	}
	return nil, err
}

var errIsDir = errors.New("is a directory")

func (f *memFS) info(name string) fileInfo {
	if data, ok := f.files[name]; ok {
		return fileInfo{name: path.Base(name), size: int64(len(data)), mode: 0o400, mtime: f.mtime}
	}
	return fileInfo{name: path.Base(name), mode: fs.ModeDir | 0o500, mtime: f.mtime}
}

type memFile struct {
	*bytes.Reader
	info fileInfo
}

func (m *memFile) Stat() (fs.FileInfo, error) { return m.info, nil }
func (m *memFile) Close() error               { return nil }

type memDir struct {
	fsys *memFS
	name string
	next int // index of the next entry ReadDir returns
}

func (d *memDir) Stat() (fs.FileInfo, error) { return d.fsys.info(d.name), nil }
func (d *memDir) Close() error               { return nil }
func (d *memDir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.name, Err: errIsDir}
}

func (d *memDir) ReadDir(n int) ([]fs.DirEntry, error) {
	names := d.fsys.dirs[d.name][d.next:]
	if n > 0 && len(names) == 0 {
		return nil, io.EOF
	}
	if n > 0 && len(names) > n {
		names = names[:n]
	}
	d.next += len(names)
	entries := make([]fs.DirEntry, len(names))
	for i, base := range names {
		entries[i] = fs.FileInfoToDirEntry(d.fsys.info(path.Join(d.name, base)))
	}
	return entries, nil
}

type fileInfo struct {
	name  string
	size  int64
	mode  fs.FileMode
	mtime time.Time
}

func (i fileInfo) Name() string       { return i.name }
func (i fileInfo) Size() int64        { return i.size }
func (i fileInfo) Mode() fs.FileMode  { return i.mode }
func (i fileInfo) ModTime() time.Time { return i.mtime }
func (i fileInfo) IsDir() bool        { return i.mode.IsDir() }
func (i fileInfo) Sys() any           { return nil }

// Extract writes the members under dir, creating it if needed: files
// mode 0600, directories 0700, manifest.json not included. It never
// replaces an existing file and, through os.Root, never follows a symlink
// out of dir, even one planted there before.
func (b *Bundle) Extract(dir string) error {
	names := newNameSet()
	for _, name := range b.Names() {
		if err := names.add(name); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("bundle: extract: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("bundle: extract: %w", err)
	}
	defer root.Close()
	for _, name := range b.Names() {
		if d := path.Dir(name); d != "." {
			if err := root.MkdirAll(d, 0o700); err != nil {
				return fmt.Errorf("bundle: extract: %w", err)
			}
		}
		if err := writeNew(root, name, b.files[name]); err != nil {
			return fmt.Errorf("bundle: extract: %w", err)
		}
	}
	return nil
}

func writeNew(root *os.Root, name string, data []byte) error {
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
