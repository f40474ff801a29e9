package kfile

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	big := bytes.Repeat([]byte("0123456789abcdef"), 100<<10/16) // past the pool's first buffer
	for name, data := range map[string][]byte{"empty": {}, "small": []byte("42\n"), "big": big} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := Read(p)
		if err != nil || !bytes.Equal(got, data) || got == nil {
			t.Errorf("%s: Read = %d bytes, %v; want %d bytes", name, len(got), err, len(data))
		}
	}
	// A kernel file that reports size 0 and returns a page per read.
	if got, err := Read("/proc/self/status"); err != nil || !bytes.Contains(got, []byte("\nPid:")) {
		t.Errorf("Read(/proc/self/status) = %q, %v", got, err)
	}
	if _, err := Read(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: err = %v, want fs.ErrNotExist", err)
	}
}
