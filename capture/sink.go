package capture

import (
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"syscall"

	"github.com/dashcam-dev/dashcam/bundle"
	"github.com/dashcam-dev/dashcam/internal/kfile"
)

// Adder receives bundle members; *bundle.Writer is one.
type Adder interface {
	Add(name string, data []byte) error
}

// ErrSinkClosed is returned by Add once the module's deadline has passed:
// late writes are dropped so a slow module cannot change a bundle that is
// already being written.
var ErrSinkClosed = errors.New("module deadline passed; member dropped")

// Sink is one module's view of the bundle. It records what went wrong
// along the way (vanished processes, denied reads), which decides the
// module's status, and what was redacted.
type Sink struct {
	module string
	out    Adder

	mu         sync.Mutex
	closed     bool
	full       bool // the bundle size cap dropped a member
	members    int
	vanished   map[int]bool
	denied     []string
	problems   []string
	truncated  []string
	threads    int
	redactions []bundle.Redaction
}

func newSink(module string, out Adder) *Sink {
	return &Sink{module: module, out: out, vanished: map[int]bool{}}
}

// Add stores data as member name. Only members actually stored are
// counted: the bundle refuses a duplicate name (bundle.ErrDuplicate).
func (s *Sink) Add(name string, data []byte) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrSinkClosed
	}
	s.mu.Unlock()
	if err := s.out.Add(name, data); err != nil {
		if errors.Is(err, ErrBundleFull) {
			s.mu.Lock()
			if !s.full {
				s.full = true
				s.problems = append(s.problems, "bundle size cap reached (--max-bundle-size): later members dropped")
			}
			s.mu.Unlock()
		}
		return err
	}
	s.mu.Lock()
	s.members++
	s.mu.Unlock()
	return nil
}

// Copy reads the file src whole and stores it unchanged as member name.
// A denied read is recorded (the module becomes partial) and returned; a
// missing file is returned as is, so that errors.Is(err, fs.ErrNotExist)
// still tells a vanished process. Anything else is recorded as a problem.
func (s *Sink) Copy(name, src string) ([]byte, error) {
	data, err := readFile(src)
	if err != nil {
		s.fileError(name, err)
		return nil, err
	}
	return data, s.Add(name, data)
}

// fileError records err for member name unless it means "gone".
func (s *Sink) fileError(name string, err error) {
	switch {
	case isGone(err):
	case errors.Is(err, fs.ErrPermission):
		s.Denied(name)
	default:
		s.Problem("%s: %v", name, err)
	}
}

// Vanished records that pid exited during the capture: ordinary, not an error.
func (s *Sink) Vanished(pid int) {
	s.mu.Lock()
	s.vanished[pid] = true
	s.mu.Unlock()
}

// Denied records that member could not be read for lack of permission.
func (s *Sink) Denied(member string) {
	s.mu.Lock()
	s.denied = append(s.denied, member)
	s.mu.Unlock()
}

// Problem records a non-fatal error; the module ends up partial.
func (s *Sink) Problem(format string, args ...any) {
	s.mu.Lock()
	s.problems = append(s.problems, fmt.Sprintf(format, args...))
	s.mu.Unlock()
}

// Truncated records that a budget stopped the module from copying
// everything (--memory-budget, --thread-budget, …); the module ends
// partial with the reason, which should name the flag that raises it.
func (s *Sink) Truncated(format string, args ...any) {
	s.mu.Lock()
	s.truncated = append(s.truncated, fmt.Sprintf(format, args...))
	s.mu.Unlock()
}

// Threads adds n to the count of threads seen.
func (s *Sink) Threads(n int) {
	s.mu.Lock()
	s.threads += n
	s.mu.Unlock()
}

// Redacted records that count secrets matched rule in member of pid.
func (s *Sink) Redacted(pid int, member, rule string, count int) {
	s.mu.Lock()
	s.redactions = append(s.redactions, bundle.Redaction{Pid: pid, Member: member, Rule: rule, Count: count})
	s.mu.Unlock()
}

func (s *Sink) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
}

// isGone reports whether err means the process (or file) went away:
// ENOENT on open, ESRCH on read of a process that just exited.
func isGone(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH)
}

// readFile reads a kernel file whole (see kfile.Read).
func readFile(path string) ([]byte, error) { return kfile.Read(path) }
