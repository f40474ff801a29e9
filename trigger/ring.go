package trigger

import "sync"

// Ring keeps the most recent samples: the history that each bundle
// freezes, so the analyzer can show what led up to the incident.
type Ring struct {
	mu   sync.Mutex
	buf  []*Sample
	next int
	full bool
}

// NewRing keeps the last n samples.
func NewRing(n int) *Ring { return &Ring{buf: make([]*Sample, max(n, 1))} }

// Add appends s, dropping the oldest sample when full.
func (r *Ring) Add(s *Sample) {
	r.mu.Lock()
	r.buf[r.next] = s
	r.next = (r.next + 1) % len(r.buf)
	r.full = r.full || r.next == 0
	r.mu.Unlock()
}

// Snapshot returns the samples, oldest first.
func (r *Ring) Snapshot() []*Sample {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.full {
		return append([]*Sample(nil), r.buf[:r.next]...)
	}
	return append(append([]*Sample(nil), r.buf[r.next:]...), r.buf[:r.next]...)
}
