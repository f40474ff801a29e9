package analyze

// KStackSection is filled in by the kstacks section (work in progress this session).
type KStackSection struct{}
