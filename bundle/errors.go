package bundle

import (
	"errors"
	"fmt"
)

// Errors returned by this package wrap one of these, so callers can test
// them with errors.Is. doc.go says what each means for a reader.
var (
	ErrNotBundle  = errors.New("not a dashcam bundle")
	ErrUnsafePath = errors.New("unsafe path")
	ErrEntryType  = errors.New("not a regular file")
	ErrDuplicate  = errors.New("duplicate member")
	ErrTooLarge   = errors.New("too large")
	ErrTruncated  = errors.New("truncated")
	ErrCorrupt    = errors.New("corrupt archive")
	ErrChecksum   = errors.New("checksum mismatch")
	ErrManifest   = errors.New("bad manifest")
	ErrVersion    = errors.New("unsupported format version")
	ErrClosed     = errors.New("writer already committed or aborted")
)

// versionError records the format version a bundle declared; it matches
// ErrVersion under errors.Is.
type versionError struct{ version int }

func (e *versionError) Error() string {
	return fmt.Sprintf("format version %d not supported (this dashcam reads %d)", e.version, FormatVersion)
}

func (e *versionError) Is(target error) bool { return target == ErrVersion }

// memberErr formats the common `bundle: member "x": <sentinel>[: detail]`.
func memberErr(name string, kind error, detail string, args ...any) error {
	if detail == "" {
		return fmt.Errorf("bundle: member %q: %w", name, kind)
	}
	return fmt.Errorf("bundle: member %q: %w: %s", name, kind, fmt.Sprintf(detail, args...))
}
