package analyze

// ExecSection is filled in by the exec section (work in progress this session).
type ExecSection struct{}
