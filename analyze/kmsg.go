package analyze

// KernelLogSection is filled in by the kmsg section (work in progress this session).
type KernelLogSection struct{}
