package analyze

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/prometheus/procfs"
)

func init() {
	registerSection(section{name: "sockets", order: 30, load: loadSockets, text: socketsText, markdown: socketsMarkdown})
}

// socketProcsN is how many processes the text and Markdown tables show.
const socketProcsN = 20

// SocketSection is the sockets module's capture: the socket tables of
// each network namespace (netns/<inode>/net/tcp, …, read once per
// namespace), joined with the processes holding each socket
// (netns/<inode>/sockets.json) and the sock_diag dump
// (netns/<inode>/tcp_diag.json, unix_diag.json) where taken.
type SocketSection struct {
	// Netns are the network namespaces, by inode; their counts cover
	// every socket of the namespace, the target's or not.
	Netns []SocketNetns `json:"netns"`
	// Processes are the target processes holding at least one socket,
	// most sockets first.
	Processes []SocketProcess `json:"processes"`
	// CloseWait groups the target's connections in CLOSE_WAIT.
	CloseWait []CloseWaitGroup `json:"close_wait"`
	// Listeners are the target's TCP listeners with connections waiting
	// in the accept queue, longest queue first.
	Listeners []Listener `json:"listeners"`
	// UnixPaths are the named unix sockets of the target, by path.
	UnixPaths []UnixPath `json:"unix_paths"`
	// Stalled are the target's TCP connections whose peer takes no data,
	// from sock_diag: nil when no namespace has a tcp_diag.json.
	Stalled []StalledConn `json:"stalled"`
}

// SocketNetns is one network namespace.
type SocketNetns struct {
	Inode uint64 `json:"inode"`
	// Pids are the target processes in it.
	Pids []int `json:"pids"`
	// TCP counts TCP sockets (IPv4 and IPv6) by state; nil when the
	// bundle has neither net/tcp nor net/tcp6.
	TCP []SocketStateCount `json:"tcp"`
	// TimeWait is the TIME_WAIT count of TCP (also in TCP); nil likewise.
	TimeWait *int `json:"time_wait"`
	// UDP and Unix count sockets; nil when their files are absent.
	UDP  *int `json:"udp"`
	Unix *int `json:"unix"`
	// ListenOverflows and ListenDrops are TcpExt counters of net/netstat
	// since the namespace was created: SYNs dropped because an accept
	// queue was full, and all listen drops. Nil when absent.
	ListenOverflows *uint64 `json:"listen_overflows"`
	ListenDrops     *uint64 `json:"listen_drops"`
	// SockDiag is "ok" when the capture took sock_diag dumps, else why
	// not; "" when netns.json is absent.
	SockDiag string `json:"sock_diag"`
}

// SocketStateCount is how many TCP sockets were in one state.
type SocketStateCount struct {
	State string `json:"state"`
	Count int    `json:"count"`
}

// SocketProcess is the sockets one process holds. A socket held through
// several fds counts once.
type SocketProcess struct {
	Pid   int    `json:"pid"`
	Comm  string `json:"comm"`
	Netns uint64 `json:"netns"`
	// TCP counts the process's TCP sockets by state.
	TCP  []SocketStateCount `json:"tcp"`
	UDP  int                `json:"udp"`
	Unix int                `json:"unix"`
	// Other are sockets in none of the captured tables: netlink, packet,
	// raw, or a socket of a namespace the bundle does not hold.
	Other int `json:"other"`
}

// CloseWaitGroup is connections of one process in CLOSE_WAIT with the
// same local endpoint and peer: the peer closed them, the process has
// not called close().
type CloseWaitGroup struct {
	Pid   int    `json:"pid"`
	Comm  string `json:"comm"`
	Netns uint64 `json:"netns"`
	// Direction is "inbound" when the local port is one the namespace
	// listens on (Local is address:port, Peer the peer's address: its
	// ports vary), else "outbound" (Local is the address, Peer
	// address:port).
	Direction string `json:"direction"`
	Local     string `json:"local"`
	Peer      string `json:"peer"`
	Count     int    `json:"count"`
	// NotRead counts the connections whose end of stream the process
	// has not read yet (it has not read from them since the peer
	// closed); the others were read to EOF and still not closed.
	NotRead int `json:"not_read"`
	// UnreadBytes is the data received and never read, summed.
	UnreadBytes uint64 `json:"unread_bytes"`
	Advice      string `json:"advice"`
}

// Listener is a TCP listening socket with a non-empty accept queue.
type Listener struct {
	Netns uint64 `json:"netns"`
	Pids  []int  `json:"pids"`
	Comm  string `json:"comm"`
	Local string `json:"local"`
	// Queue is the accept queue: connections established and waiting
	// for accept() (rx_queue of a LISTEN socket in net/tcp).
	Queue uint64 `json:"queue"`
	// Backlog is the queue's limit (listen()'s backlog capped by
	// net.core.somaxconn), from sock_diag; nil when not captured.
	Backlog *uint64 `json:"backlog"`
	// Full is true when Queue exceeds Backlog, the kernel's test for
	// dropping new connections; false when Backlog is unknown.
	Full   bool   `json:"full"`
	Advice string `json:"advice"`
}

// UnixPath is the unix sockets bound to one path (or abstract name,
// "@…") in one namespace: the listener and the connections it accepted.
type UnixPath struct {
	Netns uint64 `json:"netns"`
	Path  string `json:"path"`
	Type  string `json:"type"` // stream, dgram, seqpacket
	// Sockets counts them; Listening those in listen state.
	Sockets   int   `json:"sockets"`
	Listening int   `json:"listening"`
	Pids      []int `json:"pids"`
	// Queue and Backlog are the listener's accept queue and limit from
	// sock_diag; nil when not captured or when nothing listens.
	Queue   *uint64 `json:"queue"`
	Backlog *uint64 `json:"backlog"`
}

// StalledConn is a connection whose sender is stuck on the peer, as
// sock_diag showed it: the peer advertises a zero window (it does not
// read) or does not acknowledge (retransmissions unanswered).
type StalledConn struct {
	Pid   int    `json:"pid"`
	Comm  string `json:"comm"`
	Netns uint64 `json:"netns"`
	Local string `json:"local"`
	Peer  string `json:"peer"`
	State string `json:"state"`
	// Why is "zero window" (the persist timer is probing) or
	// "retransmitting" (the retransmit timer has fired Retransmits times
	// in a row).
	Why string `json:"why"`
	// SendQBytes is the data written and not yet acknowledged.
	SendQBytes  uint64 `json:"send_q_bytes"`
	RTTUS       uint32 `json:"rtt_us"`
	RTOUS       uint32 `json:"rto_us"`
	Retransmits uint8  `json:"retransmits"`
	// LastAckMS is how long ago the peer last acknowledged anything.
	LastAckMS uint32 `json:"last_ack_ms"`
	Advice    string `json:"advice"`
}

// netnsFile is netns/<inode>/netns.json (capture.Netns).
type netnsFile struct {
	Version  int    `json:"version"`
	Pids     []int  `json:"pids"`
	SockDiag string `json:"sock_diag"`
}

// ownersFile is netns/<inode>/sockets.json (capture.SocketOwners).
type ownersFile struct {
	Version int `json:"version"`
	Owners  map[string][]struct {
		Pid int `json:"pid"`
		FD  int `json:"fd"`
	} `json:"owners"`
}

// tcpDiagFile is netns/<inode>/tcp_diag.json (capture.TCPDiag), the
// fields used here.
type tcpDiagFile struct {
	Version int          `json:"version"`
	Sockets []tcpDiagRow `json:"sockets"`
}

type tcpDiagRow struct {
	State string `json:"state"`
	Local string `json:"local"`
	Inode uint64 `json:"inode"`
	RecvQ uint64 `json:"recv_q"`
	SendQ uint64 `json:"send_q"`
	Timer uint8  `json:"timer"`
	Info  *struct {
		Retransmits   uint8  `json:"retransmits"`
		RTOUS         uint32 `json:"rto_us"`
		RTTUS         uint32 `json:"rtt_us"`
		LastAckRecvMS uint32 `json:"last_ack_recv_ms"`
	} `json:"info"`
}

// unixDiagFile is netns/<inode>/unix_diag.json (capture.UnixDiag).
type unixDiagFile struct {
	Version int `json:"version"`
	Sockets []struct {
		Inode uint64  `json:"inode"`
		State string  `json:"state"`
		RecvQ *uint64 `json:"recv_q"`
		SendQ *uint64 `json:"send_q"`
	} `json:"sockets"`
}

// tcpStates are include/net/tcp_states.h, numbered as in the st column
// of /proc/net/tcp.
var tcpStates = [...]string{
	1: "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT", "CLOSE",
	"CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING", "NEW_SYN_RECV", "BOUND_INACTIVE",
}

func tcpState(st uint64) string {
	if st < uint64(len(tcpStates)) && tcpStates[st] != "" {
		return tcpStates[st]
	}
	return "STATE_" + strconv.FormatUint(st, 16)
}

// tcpSock is one line of net/tcp or net/tcp6.
type tcpSock struct {
	state        string
	local, peer  string
	laddr, paddr net.IP
	lport        uint64
	rxQueue      uint64
	txQueue      uint64
	inode        uint64
}

// netnsData is what one namespace's files say.
type netnsData struct {
	ino  uint64
	info *netnsFile
	tcp  []tcpSock // nil when neither tcp file is present
	udp  []uint64  // inodes; nil when absent
	unix []*procfs.NetUNIXLine
	// backlog, stalled and unixQ come from sock_diag, by socket inode;
	// stalled is nil without tcp_diag.json.
	backlog map[uint64]uint64
	stalled map[uint64]tcpDiagRow
	unixQ   map[uint64][2]*uint64
	ns      *SocketNetns
}

// loadSockets fills r.Sockets from the netns/ members; it stays nil when
// there are none.
func loadSockets(a *analyzer) {
	inodes := netnsInodes(a.b.Names())
	if len(inodes) == 0 {
		return
	}
	sec := &SocketSection{
		Netns: []SocketNetns{}, Processes: []SocketProcess{}, CloseWait: []CloseWaitGroup{},
		Listeners: []Listener{}, UnixPaths: []UnixPath{},
	}
	owners := map[uint64][]int{} // socket inode -> distinct pids, all namespaces
	var all []*netnsData
	for _, ino := range inodes {
		d := a.loadNetns(ino, owners)
		all = append(all, d)
		sec.Netns = append(sec.Netns, *d.ns)
	}
	comms := map[int]string{}
	comm := func(pid int) string {
		c, ok := comms[pid]
		if !ok {
			if p, err := a.fs.Proc(pid); err == nil {
				if st, err := parse(p.Stat); err == nil {
					c = st.Comm
				}
			}
			comms[pid] = c
		}
		return c
	}
	sec.Processes = socketProcesses(all, owners, comm)
	for _, d := range all {
		sec.CloseWait = append(sec.CloseWait, closeWaitGroups(d, owners, comm)...)
		sec.Listeners = append(sec.Listeners, sockListeners(d, owners, comm)...)
		sec.UnixPaths = append(sec.UnixPaths, sockUnixPaths(d, owners)...)
		if d.stalled != nil {
			if sec.Stalled == nil {
				sec.Stalled = []StalledConn{}
			}
			sec.Stalled = append(sec.Stalled, stalledConns(d, owners, comm)...)
		}
	}
	slices.SortStableFunc(sec.Stalled, func(x, y StalledConn) int { return cmp.Compare(y.SendQBytes, x.SendQBytes) })
	slices.SortStableFunc(sec.CloseWait, func(x, y CloseWaitGroup) int { return cmp.Compare(y.Count, x.Count) })
	slices.SortStableFunc(sec.Listeners, func(x, y Listener) int { return cmp.Compare(y.Queue, x.Queue) })
	a.r.Sockets = sec
}

// netnsInodes lists the namespaces of netns/<inode>/… members, sorted.
func netnsInodes(names []string) []uint64 {
	seen := map[uint64]bool{}
	for _, n := range names {
		rest, ok := strings.CutPrefix(n, "netns/")
		if !ok {
			continue
		}
		num, _, ok := strings.Cut(rest, "/")
		if ino, err := strconv.ParseUint(num, 10, 64); ok && err == nil {
			seen[ino] = true
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

// loadNetns parses netns/<ino>/ and adds its socket owners to owners.
func (a *analyzer) loadNetns(ino uint64, owners map[uint64][]int) *netnsData {
	num := strconv.FormatUint(ino, 10)
	dir := "netns/" + num + "/"
	d := &netnsData{ino: ino, ns: &SocketNetns{Inode: ino, Pids: []int{}}}

	var info netnsFile
	if a.netnsJSON(dir+"netns.json", &info, &info.Version) {
		d.info = &info
		d.ns.SockDiag = info.SockDiag
		if info.Pids != nil {
			d.ns.Pids = info.Pids
		}
	}
	var own ownersFile
	if a.netnsJSON(dir+"sockets.json", &own, &own.Version) {
		for num, fds := range own.Owners {
			sock, err := strconv.ParseUint(num, 10, 64)
			if err != nil {
				a.problem(dir+"sockets.json", fmt.Errorf("socket inode %q: %w", num, err))
				continue
			}
			for _, o := range fds {
				if !slices.Contains(owners[sock], o.Pid) {
					owners[sock] = append(owners[sock], o.Pid)
				}
			}
		}
	}

	nfs, err := procfs.NewFS(filepath.Join(a.root, "netns", num))
	if err != nil {
		a.problem(dir, err)
		return d
	}
	d.loadTCP(a, nfs, dir)
	for _, name := range []string{"udp", "udp6"} {
		read := nfs.NetUDP
		if name == "udp6" {
			read = nfs.NetUDP6
		}
		lines, err := parse(read)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				a.problem(dir+"net/"+name, err)
			}
			continue
		}
		if d.udp == nil {
			d.udp = []uint64{}
		}
		for _, l := range lines {
			d.udp = append(d.udp, l.Inode)
		}
	}
	if d.udp != nil {
		d.ns.UDP = sockIntPtr(len(d.udp))
	}
	if u, err := parse(nfs.NetUNIX); err == nil {
		d.unix = u.Rows
		d.ns.Unix = sockIntPtr(len(u.Rows))
	} else if !errors.Is(err, fs.ErrNotExist) {
		a.problem(dir+"net/unix", err)
	}
	a.netstat(d, dir)
	a.diag(d, dir)
	return d
}

// loadTCP parses net/tcp and net/tcp6 with procfs. (procfs decides that
// a file is UDP by "udp" in its path; the extraction directory has none.)
func (d *netnsData) loadTCP(a *analyzer, nfs procfs.FS, dir string) {
	for _, name := range []string{"tcp", "tcp6"} {
		read := nfs.NetTCP
		if name == "tcp6" {
			read = nfs.NetTCP6
		}
		lines, err := parse(read)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				a.problem(dir+"net/"+name, err)
			}
			continue
		}
		if d.tcp == nil {
			d.tcp = []tcpSock{}
		}
		for _, l := range lines {
			d.tcp = append(d.tcp, tcpSock{
				state: tcpState(l.St),
				local: sockAddr(l.LocalAddr, l.LocalPort), peer: sockAddr(l.RemAddr, l.RemPort),
				laddr: l.LocalAddr, paddr: l.RemAddr, lport: l.LocalPort,
				rxQueue: l.RxQueue, txQueue: l.TxQueue, inode: l.Inode,
			})
		}
	}
	if d.tcp == nil {
		return
	}
	d.ns.TCP = tcpStateCounts(d.tcp)
	tw := 0
	for _, s := range d.tcp {
		if s.state == "TIME_WAIT" {
			tw++
		}
	}
	d.ns.TimeWait = &tw
}

// netstat reads the listen drop counters from net/netstat:
//
//	TcpExt: SyncookiesSent SyncookiesRecv … ListenOverflows ListenDrops …
//	TcpExt: 0 0 … 17 17 …
//
// procfs parses it as /proc/<pid>/net/netstat, so it is pointed at
// netns/ with the inode as the "pid".
func (a *analyzer) netstat(d *netnsData, dir string) {
	if _, ok := a.b.File(dir + "net/netstat"); !ok {
		return
	}
	nfs, err := procfs.NewFS(filepath.Join(a.root, "netns"))
	if err != nil {
		a.problem(dir+"net/netstat", err)
		return
	}
	st, err := parse(func() (procfs.ProcNetstat, error) {
		p, err := nfs.Proc(int(d.ino))
		if err != nil {
			return procfs.ProcNetstat{}, err
		}
		return p.Netstat()
	})
	if err != nil {
		a.problem(dir+"net/netstat", err)
		return
	}
	d.ns.ListenOverflows = netstatCounter(st.ListenOverflows)
	d.ns.ListenDrops = netstatCounter(st.ListenDrops)
}

// diag reads the backlogs of listeners and the unix queues from the
// sock_diag dumps.
func (a *analyzer) diag(d *netnsData, dir string) {
	var tcp tcpDiagFile
	if a.netnsJSON(dir+"tcp_diag.json", &tcp, &tcp.Version) {
		d.backlog, d.stalled = map[uint64]uint64{}, map[uint64]tcpDiagRow{}
		for _, s := range tcp.Sockets {
			switch {
			case s.Inode == 0:
			case s.State == "LISTEN":
				d.backlog[s.Inode] = s.SendQ
			case s.Timer == timerProbe0, s.Timer == timerRetransmit && s.Info != nil && s.Info.Retransmits > 0:
				d.stalled[s.Inode] = s
			}
		}
	}
	var ux unixDiagFile
	if a.netnsJSON(dir+"unix_diag.json", &ux, &ux.Version) {
		d.unixQ = map[uint64][2]*uint64{}
		for _, s := range ux.Sockets {
			if s.State == "LISTEN" {
				d.unixQ[s.Inode] = [2]*uint64{s.RecvQ, s.SendQ}
			}
		}
	}
}

// netnsJSON decodes the member name into v if it is present, well formed
// and of version 1; version points into v.
func (a *analyzer) netnsJSON(name string, v any, version *int) bool {
	data, ok := a.b.File(name)
	if !ok {
		return false
	}
	if err := json.Unmarshal(data, v); err != nil {
		a.problem(name, err)
		return false
	}
	if *version != 1 {
		a.problem(name, fmt.Errorf("unsupported version %d", *version))
		return false
	}
	return true
}

// socketProcesses counts the sockets of each owning process.
func socketProcesses(all []*netnsData, owners map[uint64][]int, comm func(int) string) []SocketProcess {
	type counts struct {
		netns     uint64
		tcp       []tcpSock
		udp, unix int
		seen      map[uint64]bool
	}
	procs := map[int]*counts{}
	get := func(pid int) *counts {
		c := procs[pid]
		if c == nil {
			c = &counts{seen: map[uint64]bool{}}
			procs[pid] = c
		}
		return c
	}
	listed := map[uint64]bool{}
	for _, d := range all {
		if d.info != nil {
			for _, pid := range d.info.Pids {
				if c := procs[pid]; c != nil {
					c.netns = d.ino
				} else {
					procs[pid] = &counts{netns: d.ino, seen: map[uint64]bool{}}
				}
			}
		}
		add := func(ino uint64, f func(*counts)) {
			if ino == 0 {
				return
			}
			listed[ino] = true
			for _, pid := range owners[ino] {
				if c := get(pid); !c.seen[ino] {
					c.seen[ino] = true
					f(c)
				}
			}
		}
		for _, s := range d.tcp {
			add(s.inode, func(c *counts) { c.tcp = append(c.tcp, s) })
		}
		for _, ino := range d.udp {
			add(ino, func(c *counts) { c.udp++ })
		}
		for _, u := range d.unix {
			add(u.Inode, func(c *counts) { c.unix++ })
		}
	}
	for ino, pids := range owners {
		if listed[ino] {
			continue
		}
		for _, pid := range pids {
			get(pid).seen[ino] = true
		}
	}
	out := []SocketProcess{}
	for pid, c := range procs {
		if len(c.seen) == 0 {
			continue
		}
		out = append(out, SocketProcess{
			Pid: pid, Comm: comm(pid), Netns: c.netns,
			TCP: tcpStateCounts(c.tcp),
			UDP: c.udp, Unix: c.unix, Other: len(c.seen) - len(c.tcp) - c.udp - c.unix,
		})
	}
	slices.SortFunc(out, func(x, y SocketProcess) int {
		return cmp.Or(cmp.Compare(sockTotal(y), sockTotal(x)), cmp.Compare(x.Pid, y.Pid))
	})
	return out
}

func sockTotal(p SocketProcess) int {
	n := p.UDP + p.Unix + p.Other
	for _, s := range p.TCP {
		n += s.Count
	}
	return n
}

// stateCounts counts socks by state, in the kernel's state order.
func tcpStateCounts(socks []tcpSock) []SocketStateCount {
	n := map[string]int{}
	for _, s := range socks {
		n[s.state]++
	}
	out := []SocketStateCount{}
	for _, st := range tcpStates {
		if n[st] > 0 {
			out = append(out, SocketStateCount{State: st, Count: n[st]})
			delete(n, st)
		}
	}
	for _, st := range slices.Sorted(maps.Keys(n)) {
		out = append(out, SocketStateCount{State: st, Count: n[st]})
	}
	return out
}

// closeWaitGroups groups the owned CLOSE_WAIT connections of d.
func closeWaitGroups(d *netnsData, owners map[uint64][]int, comm func(int) string) []CloseWaitGroup {
	listening := map[uint64]bool{}
	for _, s := range d.tcp {
		if s.state == "LISTEN" {
			listening[s.lport] = true
		}
	}
	type key struct {
		pid              int
		dir, local, peer string
	}
	groups := map[key]*CloseWaitGroup{}
	var order []key
	for _, s := range d.tcp {
		if s.state != "CLOSE_WAIT" {
			continue
		}
		k := key{dir: "outbound", local: s.laddr.String(), peer: s.peer}
		if listening[s.lport] {
			k.dir, k.local, k.peer = "inbound", s.local, s.paddr.String()
		}
		for _, pid := range owners[s.inode] {
			k.pid = pid
			g := groups[k]
			if g == nil {
				g = &CloseWaitGroup{Pid: pid, Comm: comm(pid), Netns: d.ino, Direction: k.dir, Local: k.local, Peer: k.peer}
				groups[k] = g
				order = append(order, k)
			}
			g.Count++
			// rx_queue is rcv_nxt - copied_seq, and the peer's FIN takes
			// one sequence number: copied_seq passes it only when the
			// application reads the end of stream. So rx_queue > 0 means
			// the FIN is unread, with rx_queue-1 bytes of data before it.
			if s.rxQueue > 0 {
				g.NotRead++
				g.UnreadBytes += s.rxQueue - 1
			}
		}
	}
	slices.SortFunc(order, func(x, y key) int {
		return cmp.Or(cmp.Compare(x.pid, y.pid), cmp.Compare(x.local, y.local), cmp.Compare(x.peer, y.peer))
	})
	out := make([]CloseWaitGroup, 0, len(order))
	for _, k := range order {
		g := groups[k]
		g.Advice = closeWaitAdvice(*g)
		out = append(out, *g)
	}
	return out
}

func closeWaitAdvice(g CloseWaitGroup) string {
	conns := "connections"
	if g.Count == 1 {
		conns = "connection"
	}
	s := fmt.Sprintf("%d %s between %s and %s: the peer closed, but %s has not called close() — "+
		"the application does not close these sockets (a leak, or a thread stuck before close())",
		g.Count, conns, g.Local, g.Peer, sockWho(g.Pid, g.Comm))
	switch g.NotRead {
	case 0:
		s += "; it read the end of stream of each and still kept them open"
	case g.Count:
		s += "; it has not even read from them since the peer closed"
	default:
		s += fmt.Sprintf("; %d of them it has not read from since the peer closed", g.NotRead)
	}
	return s
}

// who names a process: "pid 42 (app)".
func sockWho(pid int, comm string) string {
	s := "pid " + strconv.Itoa(pid)
	if comm != "" {
		s += " (" + clean(comm) + ")"
	}
	return s
}

// listeners lists the owned LISTEN sockets of d with a queue.
func sockListeners(d *netnsData, owners map[uint64][]int, comm func(int) string) []Listener {
	var out []Listener
	for _, s := range d.tcp {
		pids := owners[s.inode]
		if s.state != "LISTEN" || s.rxQueue == 0 || len(pids) == 0 {
			continue
		}
		l := Listener{Netns: d.ino, Pids: slices.Sorted(slices.Values(pids)), Local: s.local, Queue: s.rxQueue}
		l.Comm = comm(l.Pids[0])
		if b, ok := d.backlog[s.inode]; ok {
			l.Backlog = &b
			// sk_acceptq_is_full: ack_backlog > max_ack_backlog.
			l.Full = l.Queue > b
		}
		l.Advice = listenerAdvice(l)
		out = append(out, l)
	}
	return out
}

func listenerAdvice(l Listener) string {
	s := fmt.Sprintf("%d connections wait for accept() on %s: %s is not accepting them fast enough, or at all",
		l.Queue, l.Local, sockWho(l.Pids[0], l.Comm))
	if l.Full {
		s += "; the queue is full: the kernel drops new connections (see listen overflows)"
	}
	return s
}

// idiag_timer values (net/ipv4/tcp_diag.c, as in /proc/net/tcp's tr).
const (
	timerRetransmit = 1 // ICSK_TIME_RETRANS, also loss probes
	timerProbe0     = 4 // ICSK_TIME_PROBE0: zero window probes
)

// stalledConns lists the owned connections of d that sock_diag showed
// stuck on their peer.
func stalledConns(d *netnsData, owners map[uint64][]int, comm func(int) string) []StalledConn {
	var out []StalledConn
	for _, s := range d.tcp {
		row, ok := d.stalled[s.inode]
		if !ok {
			continue
		}
		for _, pid := range owners[s.inode] {
			c := StalledConn{Pid: pid, Comm: comm(pid), Netns: d.ino, Local: s.local, Peer: s.peer, State: s.state,
				Why: "retransmitting", SendQBytes: s.txQueue}
			if row.Timer == timerProbe0 {
				c.Why = "zero window"
			}
			if i := row.Info; i != nil {
				c.RTTUS, c.RTOUS, c.Retransmits, c.LastAckMS = i.RTTUS, i.RTOUS, i.Retransmits, i.LastAckRecvMS
			}
			c.Advice = stalledAdvice(c)
			out = append(out, c)
		}
	}
	return out
}

func stalledAdvice(c StalledConn) string {
	if c.Why == "zero window" {
		return fmt.Sprintf("%s cannot send to %s: the peer's receive window is zero, it does not read what it is sent "+
			"(%s waiting) — look at the peer, not at this process", sockWho(c.Pid, c.Comm), c.Peer, humanBytes(c.SendQBytes))
	}
	return fmt.Sprintf("%s gets no acknowledgement from %s: %d retransmissions in a row, the last ack %d ms ago "+
		"(%s waiting) — the peer is down or the path drops packets", sockWho(c.Pid, c.Comm), c.Peer, c.Retransmits,
		c.LastAckMS, humanBytes(c.SendQBytes))
}

// unixPaths groups the named unix sockets of d that target processes hold.
func sockUnixPaths(d *netnsData, owners map[uint64][]int) []UnixPath {
	type key struct{ path, typ string }
	groups := map[key]*UnixPath{}
	for _, u := range d.unix {
		if u.Path == "" {
			continue
		}
		k := key{u.Path, u.Type.String()}
		g := groups[k]
		if g == nil {
			g = &UnixPath{Netns: d.ino, Path: u.Path, Type: k.typ, Pids: []int{}}
			groups[k] = g
		}
		g.Sockets++
		if u.Flags == netUnixListen {
			g.Listening++
			if q, ok := d.unixQ[u.Inode]; ok {
				g.Queue, g.Backlog = q[0], q[1]
			}
		}
		for _, pid := range owners[u.Inode] {
			if !slices.Contains(g.Pids, pid) {
				g.Pids = append(g.Pids, pid)
			}
		}
	}
	var out []UnixPath
	for _, k := range slices.SortedFunc(maps.Keys(groups), func(x, y key) int {
		return cmp.Or(cmp.Compare(x.path, y.path), cmp.Compare(x.typ, y.typ))
	}) {
		if g := groups[k]; len(g.Pids) > 0 {
			slices.Sort(g.Pids)
			out = append(out, *g)
		}
	}
	return out
}

// netUnixListen is __SO_ACCEPTCON in the Flags column of /proc/net/unix.
const netUnixListen = 1 << 16

func sockAddr(ip net.IP, port uint64) string {
	return net.JoinHostPort(ip.String(), strconv.FormatUint(port, 10))
}

func sockIntPtr(v int) *int { return &v }

// counter converts a procfs counter (a float64) to a count.
func netstatCounter(f *float64) *uint64 {
	if f == nil || *f < 0 {
		return nil
	}
	n := uint64(*f)
	return &n
}

func statesLineTCP(s []SocketStateCount) string {
	if s == nil {
		return unknown
	}
	if len(s) == 0 {
		return "none"
	}
	parts := make([]string, len(s))
	for i, c := range s {
		parts[i] = c.State + " " + strconv.Itoa(c.Count)
	}
	return strings.Join(parts, ", ")
}

func sockUint(p *uint64) string {
	if p == nil {
		return unknown
	}
	return strconv.FormatUint(*p, 10)
}

func sockPids(pids []int) string {
	parts := make([]string, len(pids))
	for i, p := range pids {
		parts[i] = strconv.Itoa(p)
	}
	return strings.Join(parts, ",")
}

func socketsText(tw *tabwriter.Writer, r *Report) {
	s := r.Sockets
	if s == nil {
		return
	}
	fmt.Fprintf(tw, "\nSockets: %s (counts cover each whole namespace)\n", namespaces(len(s.Netns)))
	fmt.Fprintf(tw, "  NETNS\tPIDS\tTCP\tTIME_WAIT\tUDP\tUNIX\tLISTEN OVERFLOWS\tSOCK_DIAG\n")
	for _, n := range s.Netns {
		fmt.Fprintf(tw, "  %d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", n.Inode, len(n.Pids), statesLineTCP(n.TCP),
			intOr(n.TimeWait), intOr(n.UDP), intOr(n.Unix), sockUint(n.ListenOverflows), clean(orUnknown(n.SockDiag)))
	}
	tw.Flush()

	heading(tw, "Sockets by process", len(s.Processes))
	if len(s.Processes) > 0 {
		fmt.Fprintf(tw, "  PID\tCOMM\tNETNS\tTCP\tUDP\tUNIX\tOTHER\n")
		for _, p := range s.Processes[:min(socketProcsN, len(s.Processes))] {
			fmt.Fprintf(tw, "  %d\t%s\t%d\t%s\t%d\t%d\t%d\n", p.Pid, clean(p.Comm), p.Netns, statesLineTCP(p.TCP), p.UDP, p.Unix, p.Other)
		}
		if n := len(s.Processes) - socketProcsN; n > 0 {
			fmt.Fprintf(tw, "  … and %d more (see --format json)\n", n)
		}
	}
	tw.Flush()

	heading(tw, "CLOSE_WAIT (the peer closed; the application did not)", len(s.CloseWait))
	if len(s.CloseWait) > 0 {
		fmt.Fprintf(tw, "  PID\tCOMM\tDIRECTION\tLOCAL\tPEER\tCOUNT\tEOF NOT READ\tUNREAD\n")
		for _, g := range s.CloseWait {
			fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", g.Pid, clean(g.Comm), g.Direction, clean(g.Local), clean(g.Peer),
				g.Count, g.NotRead, humanBytes(g.UnreadBytes))
		}
		tw.Flush()
		for _, g := range s.CloseWait {
			fmt.Fprintf(tw, "  - %s\n", g.Advice)
		}
	}
	tw.Flush()

	heading(tw, "Accept queues (listeners with connections waiting)", len(s.Listeners))
	if len(s.Listeners) > 0 {
		fmt.Fprintf(tw, "  PID\tCOMM\tLOCAL\tQUEUE\tBACKLOG\tFULL\n")
		for _, l := range s.Listeners {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%s\t%s\n", sockPids(l.Pids), clean(l.Comm), clean(l.Local), l.Queue,
				sockUint(l.Backlog), listenerFull(l))
		}
		tw.Flush()
		for _, l := range s.Listeners {
			fmt.Fprintf(tw, "  - %s\n", l.Advice)
		}
	}
	tw.Flush()

	if s.Stalled != nil {
		heading(tw, "Stalled connections (the peer takes no data)", len(s.Stalled))
		if len(s.Stalled) > 0 {
			fmt.Fprintf(tw, "  PID\tCOMM\tLOCAL\tPEER\tSTATE\tWHY\tSEND-Q\tRTT\tRETRANS\n")
			for _, c := range s.Stalled {
				fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n", c.Pid, clean(c.Comm), clean(c.Local), clean(c.Peer),
					c.State, c.Why, humanBytes(c.SendQBytes), rttString(c.RTTUS), c.Retransmits)
			}
			tw.Flush()
			for _, c := range s.Stalled {
				fmt.Fprintf(tw, "  - %s\n", clean(c.Advice))
			}
		}
		tw.Flush()
	}

	heading(tw, "Unix sockets by path", len(s.UnixPaths))
	if len(s.UnixPaths) > 0 {
		fmt.Fprintf(tw, "  PATH\tTYPE\tSOCKETS\tLISTENING\tQUEUE\tBACKLOG\tPIDS\n")
		for _, u := range s.UnixPaths {
			q, b := unixQueue(u)
			fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\t%s\t%s\t%s\n", clean(u.Path), u.Type, u.Sockets, u.Listening, q, b, sockPids(u.Pids))
		}
	}
}

func namespaces(n int) string {
	if n == 1 {
		return "1 network namespace"
	}
	return strconv.Itoa(n) + " network namespaces"
}

// rttString shows a smoothed RTT in milliseconds.
func rttString(us uint32) string {
	return strconv.FormatFloat(float64(us)/1000, 'f', 1, 64) + " ms"
}

// unixQueue shows the accept queue and backlog of a unix path: "-"
// when nothing listens on it.
func unixQueue(u UnixPath) (queue, backlog string) {
	if u.Listening == 0 {
		return "-", "-"
	}
	return sockUint(u.Queue), sockUint(u.Backlog)
}

func listenerFull(l Listener) string {
	switch {
	case l.Backlog == nil:
		return unknown
	case l.Full:
		return "yes"
	}
	return "no"
}

func socketsMarkdown(w io.Writer, r *Report) {
	s := r.Sockets
	if s == nil {
		return
	}
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	table := func(header ...string) {
		p("| %s |\n|%s\n", strings.Join(header, " | "), strings.Repeat("---|", len(header)))
	}
	row := func(cells ...string) { p("| %s |\n", strings.Join(cells, " | ")) }

	p("\n## Sockets\n\n%s; their counts cover each whole namespace.\n\n", namespaces(len(s.Netns)))
	table("Netns", "Pids", "TCP", "TIME_WAIT", "UDP", "Unix", "Listen overflows", "sock_diag")
	for _, n := range s.Netns {
		row(strconv.FormatUint(n.Inode, 10), strconv.Itoa(len(n.Pids)), md(statesLineTCP(n.TCP)), intOr(n.TimeWait),
			intOr(n.UDP), intOr(n.Unix), sockUint(n.ListenOverflows), md(orUnknown(n.SockDiag)))
	}

	p("\n### Sockets by process\n\n")
	if len(s.Processes) == 0 {
		p("None.\n")
	} else {
		table("PID", "Comm", "Netns", "TCP", "UDP", "Unix", "Other")
		for _, pr := range s.Processes[:min(socketProcsN, len(s.Processes))] {
			row(strconv.Itoa(pr.Pid), code(pr.Comm), strconv.FormatUint(pr.Netns, 10), md(statesLineTCP(pr.TCP)),
				strconv.Itoa(pr.UDP), strconv.Itoa(pr.Unix), strconv.Itoa(pr.Other))
		}
		if n := len(s.Processes) - socketProcsN; n > 0 {
			p("\n… and %d more (see the JSON report).\n", n)
		}
	}

	p("\n### CLOSE_WAIT\n\n")
	if len(s.CloseWait) == 0 {
		p("None.\n")
	} else {
		table("PID", "Comm", "Direction", "Local", "Peer", "Count", "EOF not read", "Unread")
		for _, g := range s.CloseWait {
			row(strconv.Itoa(g.Pid), code(g.Comm), g.Direction, code(g.Local), code(g.Peer), strconv.Itoa(g.Count),
				strconv.Itoa(g.NotRead), humanBytes(g.UnreadBytes))
		}
		p("\n")
		for _, g := range s.CloseWait {
			p("- %s\n", md(g.Advice))
		}
	}

	p("\n### Accept queues\n\n")
	if len(s.Listeners) == 0 {
		p("None.\n")
	} else {
		table("PIDs", "Comm", "Local", "Queue", "Backlog", "Full")
		for _, l := range s.Listeners {
			row(sockPids(l.Pids), code(l.Comm), code(l.Local), strconv.FormatUint(l.Queue, 10), sockUint(l.Backlog), listenerFull(l))
		}
		p("\n")
		for _, l := range s.Listeners {
			p("- %s\n", md(l.Advice))
		}
	}

	if s.Stalled != nil {
		p("\n### Stalled connections\n\n")
		if len(s.Stalled) == 0 {
			p("None.\n")
		} else {
			table("PID", "Comm", "Local", "Peer", "State", "Why", "Send-Q", "RTT", "Retrans")
			for _, c := range s.Stalled {
				row(strconv.Itoa(c.Pid), code(c.Comm), code(c.Local), code(c.Peer), md(c.State), c.Why,
					humanBytes(c.SendQBytes), rttString(c.RTTUS), strconv.Itoa(int(c.Retransmits)))
			}
			p("\n")
			for _, c := range s.Stalled {
				p("- %s\n", md(c.Advice))
			}
		}
	}

	p("\n### Unix sockets by path\n\n")
	if len(s.UnixPaths) == 0 {
		p("None.\n")
		return
	}
	table("Path", "Type", "Sockets", "Listening", "Queue", "Backlog", "PIDs")
	for _, u := range s.UnixPaths {
		q, b := unixQueue(u)
		row(code(u.Path), u.Type, strconv.Itoa(u.Sockets), strconv.Itoa(u.Listening), q, b, sockPids(u.Pids))
	}
}
