package bundle

import (
	"strings"
	"unicode/utf8"
)

// maxNameLen bounds member names; it is Linux's PATH_MAX.
const maxNameLen = 4096

// checkName reports whether name is a clean relative slash path that is safe
// to extract anywhere: no leading slash, no empty, "." or ".." components,
// and nothing that would confuse a terminal or another OS (control
// characters, backslashes, invalid UTF-8, which JSON would not round-trip).
func checkName(name string) error {
	var why string
	switch {
	case name == "":
		why = "empty name"
	case len(name) > maxNameLen:
		why = "name longer than 4096 bytes"
	case !utf8.ValidString(name):
		why = "not valid UTF-8"
	case name[0] == '/':
		why = "absolute"
	case strings.ContainsAny(name, "\\\x7f") || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 }):
		why = "backslash or control character"
	default:
		for elem := range strings.SplitSeq(name, "/") {
			switch elem {
			case "":
				why = "empty component"
			case ".", "..":
				why = `"." or ".." component`
			}
		}
	}
	if why != "" {
		return memberErr(name, ErrUnsafePath, "%s", why)
	}
	return nil
}

// nameSet accepts member names one by one, refusing unsafe names,
// duplicates, the manifest's name, and a name that is both a member and a
// directory of another member (such a bundle cannot be extracted).
type nameSet struct {
	files map[string]bool
	dirs  map[string]bool
}

func newNameSet() *nameSet {
	return &nameSet{files: make(map[string]bool), dirs: make(map[string]bool)}
}

// check returns the error add would return, without adding name.
func (s *nameSet) check(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if name == ManifestName || strings.HasPrefix(name, ManifestName+"/") {
		return memberErr(name, ErrDuplicate, "name reserved for the manifest")
	}
	if s.files[name] {
		return memberErr(name, ErrDuplicate, "")
	}
	if s.dirs[name] {
		return memberErr(name, ErrDuplicate, "already a directory of other members")
	}
	for i := range len(name) {
		if name[i] == '/' && s.files[name[:i]] {
			return memberErr(name, ErrDuplicate, "%q is a member, not a directory", name[:i])
		}
	}
	return nil
}

func (s *nameSet) add(name string) error {
	if err := s.check(name); err != nil {
		return err
	}
	s.files[name] = true
	for i := range len(name) {
		if name[i] == '/' {
			s.dirs[name[:i]] = true
		}
	}
	return nil
}
