package capture

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// The sock_diag part of the sockets module: one netlink dump per network
// namespace (inet_diag for TCP, unix_diag for unix sockets) through
// github.com/vishvananda/netlink. It adds what /proc/net/tcp and
// /proc/net/unix do not show: the backlog of each listener next to its
// accept queue, tcp_info (RTT, RTO, congestion window, retransmissions,
// bytes in flight) and the peer of each unix socket.
//
// The library's unix_diag decoding (v1.3.1, UnixSocketDiagInfo) reads
// struct unix_diag_msg with udiag_family and udiag_type swapped: it then
// takes every datagram socket for a foreign family and stops the dump
// there, and it reads 4 bytes past each name. So the unix dump uses the
// library's netlink transport (request, multipart receive, dump
// interruption, attributes) with the 16-byte message header decoded
// here.

// diagTimeout bounds one dump when the context has no earlier deadline.
const diagTimeout = 10 * time.Second

// TCPDiag is the JSON layout of netns/<inode>/tcp_diag.json (version 1):
// the TCP sockets of one namespace from sock_diag (inet_diag with
// INET_DIAG_INFO), IPv4 then IPv6, in the kernel's order.
type TCPDiag struct {
	Version int `json:"version"`
	// Interrupted is set when the kernel flagged the dump as inconsistent
	// (NLM_F_DUMP_INTR: the table changed meanwhile); a socket may then be
	// missing or listed twice.
	Interrupted bool            `json:"interrupted,omitempty"`
	Sockets     []TCPDiagSocket `json:"sockets"`
}

// TCPDiagSocket is one struct inet_diag_msg and its tcp_info.
type TCPDiagSocket struct {
	Family string `json:"family"` // "inet" or "inet6"
	State  string `json:"state"`  // as in /proc/net/tcp: ESTABLISHED, LISTEN, CLOSE_WAIT, …
	Local  string `json:"local"`  // address:port, IPv6 in brackets
	Peer   string `json:"peer"`
	Inode  uint32 `json:"inode"` // 0 for TIME_WAIT and not yet accepted sockets
	UID    uint32 `json:"uid"`
	// RecvQ and SendQ are idiag_rqueue and idiag_wqueue. For a LISTEN
	// socket they are the accept queue (connections waiting for
	// accept()) and its limit, the backlog given to listen() capped by
	// net.core.somaxconn; /proc/net/tcp shows only the first. Otherwise
	// they are bytes not yet read by the application and bytes not yet
	// acknowledged by the peer.
	RecvQ uint32 `json:"recv_q"`
	SendQ uint32 `json:"send_q"`
	// Timer is idiag_timer: 0 none, 1 retransmit, 2 keepalive, 3
	// TIME_WAIT, 4 zero window probe; Retrans is idiag_retrans, ExpiresMS
	// when the timer fires.
	Timer     uint8  `json:"timer"`
	Retrans   uint8  `json:"retrans"`
	ExpiresMS uint32 `json:"expires_ms"`
	// Info is struct tcp_info; nil for TIME_WAIT and request sockets.
	// Fields a kernel older than the library's struct does not fill are 0.
	Info *TCPDiagInfo `json:"info,omitempty"`
}

// TCPDiagInfo is the part of struct tcp_info (include/uapi/linux/tcp.h)
// that tells why a connection is slow or stuck. Times are in
// microseconds (_us) or milliseconds (_ms) as the kernel gives them.
type TCPDiagInfo struct {
	CAState         uint8  `json:"ca_state"` // 0 open, 1 disorder, 2 cwr, 3 recovery, 4 loss
	Retransmits     uint8  `json:"retransmits"`
	Probes          uint8  `json:"probes"`
	Backoff         uint8  `json:"backoff"`
	RTOUS           uint32 `json:"rto_us"`
	RTTUS           uint32 `json:"rtt_us"`
	RTTVarUS        uint32 `json:"rttvar_us"`
	MinRTTUS        uint32 `json:"min_rtt_us"`
	SndMSS          uint32 `json:"snd_mss"`
	RcvMSS          uint32 `json:"rcv_mss"`
	PMTU            uint32 `json:"pmtu"`
	SndCwnd         uint32 `json:"snd_cwnd"`
	SndSsthresh     uint32 `json:"snd_ssthresh"`
	SndWnd          uint32 `json:"snd_wnd"`
	Unacked         uint32 `json:"unacked"`
	Sacked          uint32 `json:"sacked"`
	Lost            uint32 `json:"lost"`
	Retrans         uint32 `json:"retrans"`
	TotalRetrans    uint32 `json:"total_retrans"`
	LastDataSentMS  uint32 `json:"last_data_sent_ms"`
	LastDataRecvMS  uint32 `json:"last_data_recv_ms"`
	LastAckRecvMS   uint32 `json:"last_ack_recv_ms"`
	NotsentBytes    uint32 `json:"notsent_bytes"`
	BytesSent       uint64 `json:"bytes_sent"`
	BytesAcked      uint64 `json:"bytes_acked"`
	BytesReceived   uint64 `json:"bytes_received"`
	BytesRetrans    uint64 `json:"bytes_retrans"`
	SegsOut         uint32 `json:"segs_out"`
	SegsIn          uint32 `json:"segs_in"`
	DeliveryRate    uint64 `json:"delivery_rate"` // bytes per second
	BusyTimeUS      uint64 `json:"busy_time_us"`
	RwndLimitedUS   uint64 `json:"rwnd_limited_us"`
	SndbufLimitedUS uint64 `json:"sndbuf_limited_us"`
}

// UnixDiag is the JSON layout of netns/<inode>/unix_diag.json (version
// 1): the unix sockets of one namespace from sock_diag (unix_diag with
// UDIAG_SHOW_PEER and UDIAG_SHOW_RQLEN). Paths are in net/unix.
type UnixDiag struct {
	Version     int              `json:"version"`
	Interrupted bool             `json:"interrupted,omitempty"`
	Sockets     []UnixDiagSocket `json:"sockets"`
}

// UnixDiagSocket is one struct unix_diag_msg with its peer and queues.
type UnixDiagSocket struct {
	Inode uint32 `json:"inode"`
	Type  string `json:"type"`  // stream, dgram, seqpacket
	State string `json:"state"` // LISTEN, ESTABLISHED (connected), CLOSE (unconnected), SYN_SENT
	// Peer is the inode of the other end; 0 when there is none.
	Peer uint32 `json:"peer,omitempty"`
	// RecvQ and SendQ are udiag_rqueue and udiag_wqueue: for a listener
	// the accept queue and the backlog, else the bytes queued to read and
	// to be read by the peer. Nil when the kernel did not send them.
	RecvQ *uint32 `json:"recv_q"`
	SendQ *uint32 `json:"send_q"`
}

// diagResult is what dumpDiag got: either dump may be nil.
type diagResult struct {
	tcp  *TCPDiag
	unix *UnixDiag
	// err is the first failure; notes say what each one was.
	err   error
	notes []string
}

func (d *diagResult) fail(what string, err error) {
	if d.err == nil {
		d.err = err
	}
	d.notes = append(d.notes, what+": "+diagErrString(err))
}

// status is "ok" or the failures, for Netns.SockDiag.
func (d *diagResult) status() string {
	if len(d.notes) == 0 {
		return "ok"
	}
	return strings.Join(d.notes, "; ")
}

// diagErrString names the kernel option behind a missing sock_diag.
func diagErrString(err error) string {
	switch {
	case errors.Is(err, unix.EPROTONOSUPPORT):
		return err.Error() + " (needs a kernel with CONFIG_SOCK_DIAG)"
	case errors.Is(err, unix.ENOENT):
		return err.Error() + " (needs CONFIG_INET_DIAG with CONFIG_INET_TCP_DIAG, or CONFIG_UNIX_DIAG)"
	case errors.Is(err, unix.EPERM):
		return err.Error() + " (entering another network namespace needs CAP_SYS_ADMIN: run as root)"
	}
	return err.Error()
}

// dumpDiag takes the TCP and unix dumps of the namespace of pids (the
// first whose ns/net can still be opened). The library reads netlink
// attributes by slicing without bounds checks in places, so a panic is
// turned into an error like any other failure.
func dumpDiag(ctx context.Context, p Paths, pids []int) (d diagResult) {
	defer func() {
		if r := recover(); r != nil {
			d.tcp, d.unix = nil, nil
			d.fail("sock_diag", fmt.Errorf("netlink library panicked: %v", r))
		}
	}()
	var (
		socks diagSockets
		err   error
	)
	for _, pid := range pids {
		socks, err = diagOpen(filepath.Join(p.Proc, strconv.Itoa(pid), "ns", "net"))
		if !isGone(err) {
			break
		}
	}
	if err != nil {
		d.fail("sock_diag", err)
		return d
	}
	defer socks.close()
	h := socks.h
	timeout := diagTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	if timeout < time.Millisecond {
		d.fail("sock_diag", context.DeadlineExceeded)
		return d
	}
	if err := h.SetSocketTimeout(timeout); err != nil {
		d.fail("sock_diag", err)
		return d
	}
	tv := unix.NsecToTimeval(timeout.Nanoseconds())
	_ = socks.unix.SetSendTimeout(&tv)
	_ = socks.unix.SetReceiveTimeout(&tv)

	tcp := &TCPDiag{Version: 1, Sockets: []TCPDiagSocket{}}
	ok := false
	for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
		if err := ctx.Err(); err != nil {
			d.fail("tcp", err)
			return d
		}
		resp, err := h.SocketDiagTCPInfo(fam)
		if errors.Is(err, netlink.ErrDumpInterrupted) {
			tcp.Interrupted, err = true, nil
		}
		if err != nil {
			d.fail("tcp "+familyName(fam), err)
			continue
		}
		ok = true
		for _, r := range resp {
			tcp.Sockets = append(tcp.Sockets, tcpDiagSocket(r))
		}
	}
	if ok {
		d.tcp = tcp
	}

	if err := ctx.Err(); err != nil {
		d.fail("unix", err)
		return d
	}
	ux, err := unixDump(socks.unix)
	if err != nil {
		d.fail("unix", err)
		return d
	}
	d.unix = ux
	return d
}

// diagSockets are two sock_diag netlink sockets of one namespace: the
// library's handle (TCP) and a bare socket (unix, see above).
type diagSockets struct {
	h    *netlink.Handle
	unix *nl.NetlinkSocket
}

func (d diagSockets) close() {
	d.h.Close()
	d.unix.Close()
}

// diagOpen returns sock_diag netlink sockets inside the network namespace
// at nsPath (/proc/<pid>/ns/net). A socket belongs to the namespace of the
// thread that creates it, and keeps it: so they are made on a locked OS
// thread switched into the namespace (setns), which then switches back,
// and queries on them work from any thread afterwards. When the thread
// cannot switch back it is never unlocked: its goroutine ends locked and
// the Go runtime terminates the thread, instead of letting other
// goroutines run in a foreign namespace. (netlink.NewHandleAt would
// unlock it regardless.) No switch is needed for dashcam's own namespace,
// where an unprivileged user may dump too.
func diagOpen(nsPath string) (diagSockets, error) {
	type result struct {
		s   diagSockets
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		s, restored, err := diagOpenLocked(nsPath)
		if restored {
			runtime.UnlockOSThread()
		}
		ch <- result{s, err}
	}()
	r := <-ch
	return r.s, r.err
}

// diagOpenLocked runs on a locked thread; restored is false when the
// thread is left in another namespace.
func diagOpenLocked(nsPath string) (s diagSockets, restored bool, err error) {
	target, err := netns.GetFromPath(nsPath)
	if err != nil {
		return s, true, err
	}
	defer target.Close()
	self, err := netns.Get()
	if err != nil {
		return s, true, err
	}
	defer self.Close()
	if self.Equal(target) {
		s, err = diagNew()
		return s, true, err
	}
	if err := netns.Set(target); err != nil {
		return s, true, fmt.Errorf("setns %s: %w", nsPath, err)
	}
	s, err = diagNew()
	if rerr := netns.Set(self); rerr != nil {
		if err == nil {
			s.close()
		}
		return diagSockets{}, false, fmt.Errorf("setns back to dashcam's namespace: %w", rerr)
	}
	return s, true, err
}

// diagNew opens the sockets in the calling thread's namespace.
func diagNew() (diagSockets, error) {
	h, err := netlink.NewHandle(unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return diagSockets{}, err
	}
	// With no namespace handles this creates the socket where the
	// thread is, without switching.
	u, err := nl.GetNetlinkSocketAt(netns.None(), netns.None(), unix.NETLINK_SOCK_DIAG)
	if err != nil {
		h.Close()
		return diagSockets{}, err
	}
	return diagSockets{h, u}, nil
}

// unixDiagReq is struct unix_diag_req (include/uapi/linux/unix_diag.h):
//
//	__u8 sdiag_family; __u8 sdiag_protocol; __u16 pad;
//	__u32 udiag_states; __u32 udiag_ino; __u32 udiag_show; __u32 udiag_cookie[2];
type unixDiagReq struct{}

// Attributes of a unix_diag reply, and the UDIAG_SHOW_* bits asking
// for them.
const (
	unixDiagPeer     = 2 // UNIX_DIAG_PEER: __u32 inode of the peer
	unixDiagRQLen    = 4 // UNIX_DIAG_RQLEN: struct unix_diag_rqlen
	udiagShowPeer    = 1 << unixDiagPeer
	udiagShowRQLen   = 1 << unixDiagRQLen
	unixDiagMsgBytes = 16 // struct unix_diag_msg
)

func (unixDiagReq) Len() int { return 24 }

func (unixDiagReq) Serialize() []byte {
	b := make([]byte, 24)
	b[0] = unix.AF_UNIX
	ne := nl.NativeEndian()
	ne.PutUint32(b[4:], ^uint32(0)) // every state
	ne.PutUint32(b[12:], udiagShowPeer|udiagShowRQLen)
	return b
}

// unixDump dumps the unix sockets of the socket's namespace. Each reply
// is struct unix_diag_msg and attributes:
//
//	__u8 udiag_family; __u8 udiag_type; __u8 udiag_state; __u8 pad;
//	__u32 udiag_ino; __u32 udiag_cookie[2];
func unixDump(s *nl.NetlinkSocket) (*UnixDiag, error) {
	req := nl.NewNetlinkRequest(nl.SOCK_DIAG_BY_FAMILY, unix.NLM_F_DUMP)
	req.AddData(unixDiagReq{})
	req.Sockets = map[int]*nl.SocketHandle{unix.NETLINK_SOCK_DIAG: {Socket: s}}
	out := &UnixDiag{Version: 1, Sockets: []UnixDiagSocket{}}
	var perr error
	err := req.ExecuteIter(unix.NETLINK_SOCK_DIAG, nl.SOCK_DIAG_BY_FAMILY, func(msg []byte) bool {
		u, err := parseUnixDiag(msg)
		if err != nil {
			perr = err
			return false
		}
		out.Sockets = append(out.Sockets, u)
		return true
	})
	if errors.Is(err, nl.ErrDumpInterrupted) {
		out.Interrupted, err = true, nil
	}
	if err == nil {
		err = perr
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

func parseUnixDiag(msg []byte) (UnixDiagSocket, error) {
	if len(msg) < unixDiagMsgBytes || msg[0] != unix.AF_UNIX {
		return UnixDiagSocket{}, fmt.Errorf("unix_diag: malformed reply of %d bytes", len(msg))
	}
	ne := nl.NativeEndian()
	u := UnixDiagSocket{Inode: ne.Uint32(msg[4:]), State: tcpStateName(msg[2]), Type: unixTypeName(msg[1])}
	attrs, err := nl.ParseRouteAttr(msg[unixDiagMsgBytes:])
	if err != nil {
		return UnixDiagSocket{}, fmt.Errorf("unix_diag: %w", err)
	}
	for _, a := range attrs {
		switch {
		case a.Attr.Type == unixDiagPeer && len(a.Value) >= 4:
			u.Peer = ne.Uint32(a.Value)
		case a.Attr.Type == unixDiagRQLen && len(a.Value) >= 8:
			rq, wq := ne.Uint32(a.Value), ne.Uint32(a.Value[4:])
			u.RecvQ, u.SendQ = &rq, &wq
		}
	}
	return u, nil
}

func unixTypeName(t uint8) string {
	switch t {
	case syscall.SOCK_STREAM:
		return "stream"
	case syscall.SOCK_DGRAM:
		return "dgram"
	case syscall.SOCK_SEQPACKET:
		return "seqpacket"
	}
	return "type_" + strconv.Itoa(int(t))
}

func familyName(fam uint8) string {
	if fam == unix.AF_INET6 {
		return "inet6"
	}
	return "inet"
}

// tcpStateNames are include/net/tcp_states.h, numbered as in
// /proc/net/tcp's st column.
var tcpStateNames = [...]string{
	1: "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT", "CLOSE",
	"CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING", "NEW_SYN_RECV", "BOUND_INACTIVE",
}

func tcpStateName(st uint8) string {
	if int(st) < len(tcpStateNames) && tcpStateNames[st] != "" {
		return tcpStateNames[st]
	}
	return "STATE_" + strconv.Itoa(int(st))
}

func tcpDiagSocket(r *netlink.InetDiagTCPInfoResp) TCPDiagSocket {
	m := r.InetDiagMsg
	s := TCPDiagSocket{
		Family:    familyName(m.Family),
		State:     tcpStateName(m.State),
		Local:     net.JoinHostPort(m.ID.Source.String(), strconv.Itoa(int(m.ID.SourcePort))),
		Peer:      net.JoinHostPort(m.ID.Destination.String(), strconv.Itoa(int(m.ID.DestinationPort))),
		Inode:     m.INode,
		UID:       m.UID,
		RecvQ:     m.RQueue,
		SendQ:     m.WQueue,
		Timer:     m.Timer,
		Retrans:   m.Retrans,
		ExpiresMS: m.Expires,
	}
	if i := r.TCPInfo; i != nil {
		s.Info = &TCPDiagInfo{
			CAState: i.Ca_state, Retransmits: i.Retransmits, Probes: i.Probes, Backoff: i.Backoff,
			RTOUS: i.Rto, RTTUS: i.Rtt, RTTVarUS: i.Rttvar, MinRTTUS: i.Min_rtt,
			SndMSS: i.Snd_mss, RcvMSS: i.Rcv_mss, PMTU: i.Pmtu,
			SndCwnd: i.Snd_cwnd, SndSsthresh: i.Snd_ssthresh, SndWnd: i.Snd_wnd,
			Unacked: i.Unacked, Sacked: i.Sacked, Lost: i.Lost, Retrans: i.Retrans, TotalRetrans: i.Total_retrans,
			LastDataSentMS: i.Last_data_sent, LastDataRecvMS: i.Last_data_recv, LastAckRecvMS: i.Last_ack_recv,
			NotsentBytes: i.Notsent_bytes,
			BytesSent:    i.Bytes_sent, BytesAcked: i.Bytes_acked, BytesReceived: i.Bytes_received, BytesRetrans: i.Bytes_retrans,
			SegsOut: i.Segs_out, SegsIn: i.Segs_in, DeliveryRate: i.Delivery_rate,
			BusyTimeUS: i.Busy_time, RwndLimitedUS: i.Rwnd_limited, SndbufLimitedUS: i.Sndbuf_limited,
		}
	}
	return s
}
