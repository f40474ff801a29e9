package analyze

// SocketSection is filled in by the sockets section (work in progress this session).
type SocketSection struct{}
