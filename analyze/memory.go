package analyze

// MemorySection is filled in by the memory section (work in progress this session).
type MemorySection struct{}
