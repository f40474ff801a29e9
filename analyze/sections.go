package analyze

import (
	"io"
	"slices"
	"text/tabwriter"
)

// A section is one optional part of the report that belongs to one capture
// module (fds, sockets, memory, …). Each lives in its own file, registers
// itself from init, and stays silent, leaving its Report field nil, when
// the bundle holds none of its module's files: absent is not empty.
type section struct {
	name string
	// order places the section in text and Markdown output (lower first).
	order int
	// load fills the section's Report field from the bundle.
	load func(a *analyzer)
	// text writes the section for a terminal, through the report's
	// tabwriter (cells separated by '\t'); it must not Flush.
	text func(tw *tabwriter.Writer, r *Report)
	// markdown writes the section as Markdown (a "## Title" and tables).
	markdown func(w io.Writer, r *Report)
}

var sections []section

// registerSection adds a section; sections call it from init.
func registerSection(s section) {
	sections = append(sections, s)
	slices.SortStableFunc(sections, func(a, b section) int { return a.order - b.order })
}
