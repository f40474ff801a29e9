package analyze

// FDSection is filled in by the fds section (work in progress this session).
type FDSection struct{}
