package capture

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/procfs"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/dashcam-dev/dashcam/analyze"
	"github.com/dashcam-dev/dashcam/bundle"
	"github.com/dashcam-dev/dashcam/internal/testutil"
)

// socketsWorkload configures the helper processes of TestSocketsLive,
// passed as JSON in DASHCAM_SOCKETS.
type socketsWorkload struct {
	// Closed connections are made to Port and closed by the client; the
	// server accepted them and never closes them: CLOSE_WAIT.
	Closed int `json:"closed"`
	// Pending connections are made to QueuePort, whose listener (backlog
	// Backlog) never accepts: its accept queue.
	Pending int `json:"pending"`
	Backlog int `json:"backlog"`
	// Unix connections are made to UnixPath and held.
	Unix     int    `json:"unix"`
	UnixPath string `json:"unix_path"`
	// Loops are connections the netns helper makes to itself and holds.
	Loops int `json:"loops"`

	// Set by the server. The client fills the window of one connection
	// to ZeroPort, whose server end never reads: a zero window.
	Port, QueuePort, Port6, ZeroPort int
}

// socketsHeld keeps the helpers' connections open for good.
var socketsHeld []any

// socketsHelper is one process of the workload (see helperMain).
func socketsHelper(mode string) {
	var w socketsWorkload
	err := json.Unmarshal([]byte(os.Getenv("DASHCAM_SOCKETS")), &w)
	if err == nil {
		switch mode {
		case "sockets-server":
			err = socketsServer(w)
		case "sockets-client":
			err = socketsClient(w)
		case "sockets-netns":
			err = socketsNetns(w)
		}
	}
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
}

// socketsServer listens on 127.0.0.1 and [::1], accepts w.Closed
// connections and never closes them; listens with backlog w.Backlog and
// never accepts; serves w.UnixPath. It prints its ports as JSON, and
// "accepted" once every expected connection is accepted.
func socketsServer(w socketsWorkload) error {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return err
	}
	w.Port = l.Addr().(*net.TCPAddr).Port
	if l6, err := net.Listen("tcp6", "[::1]:0"); err == nil { // no IPv6: left out
		w.Port6 = l6.Addr().(*net.TCPAddr).Port
		socketsHeld = append(socketsHeld, l6)
	}
	// net.Listen takes net.core.somaxconn as backlog: listen(2) by hand.
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		return err
	}
	if err := unix.Listen(fd, w.Backlog); err != nil {
		return err
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return err
	}
	w.QueuePort = sa.(*unix.SockaddrInet4).Port
	ul, err := net.Listen("unix", w.UnixPath)
	if err != nil {
		return err
	}
	zl, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return err
	}
	w.ZeroPort = zl.Addr().(*net.TCPAddr).Port
	socketsHeld = append(socketsHeld, l, ul, zl)
	done := make(chan bool, 3)
	accept := func(l net.Listener, n int) {
		for range n {
			c, err := l.Accept()
			if err != nil {
				fmt.Println("error", err)
				os.Exit(1)
			}
			socketsHeld = append(socketsHeld, c)
		}
		done <- true
	}
	go accept(l, w.Closed)
	go accept(ul, w.Unix)
	go accept(zl, 1)
	go func() {
		<-done
		<-done
		<-done
		fmt.Println("accepted")
	}()
	out, _ := json.Marshal(w)
	fmt.Println(string(out))
	return nil
}

// socketsClient makes w.Closed connections and closes them, then holds
// w.Pending connections to the queue port and w.Unix to the unix socket.
func socketsClient(w socketsWorkload) error {
	for range w.Closed {
		c, err := net.Dial("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(w.Port)))
		if err != nil {
			return err
		}
		c.Close()
	}
	for range w.Pending {
		c, err := net.Dial("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(w.QueuePort)))
		if err != nil {
			return err
		}
		socketsHeld = append(socketsHeld, c)
	}
	for range w.Unix {
		c, err := net.Dial("unix", w.UnixPath)
		if err != nil {
			return err
		}
		socketsHeld = append(socketsHeld, c)
	}
	// Write until the peer, which never reads, has no window left.
	c, err := net.Dial("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(w.ZeroPort)))
	if err != nil {
		return err
	}
	socketsHeld = append(socketsHeld, c)
	buf := make([]byte, 64<<10)
	for {
		_ = c.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
		if _, err := c.Write(buf); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return nil
			}
			return err
		}
	}
}

// socketsNetns runs in a network namespace of its own (CLONE_NEWNET):
// it brings up lo, listens, and holds w.Loops connections to itself.
func socketsNetns(w socketsWorkload) error {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return err
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		return err
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return err
	}
	socketsHeld = append(socketsHeld, l)
	for range w.Loops {
		c, err := net.Dial("tcp4", l.Addr().String())
		if err != nil {
			return err
		}
		s, err := l.Accept()
		if err != nil {
			return err
		}
		socketsHeld = append(socketsHeld, c, s)
	}
	return nil
}

// socketsProc is a started helper and its output.
type socketsProc struct {
	pid int
	out *bufio.Reader
}

// startSockets starts a workload helper in c, optionally in a new
// network namespace.
func startSockets(t *testing.T, c *testutil.Cgroup, mode string, w socketsWorkload, newNetns bool) socketsProc {
	t.Helper()
	cfg, _ := json.Marshal(w)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "DASHCAM_TEST_HELPER="+mode, "DASHCAM_SOCKETS="+string(cfg))
	if newNetns {
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	testutil.StartIn(t, c, cmd)
	return socketsProc{cmd.Process.Pid, bufio.NewReader(out)}
}

// line reads the helper's next line of output.
func (p socketsProc) line(t *testing.T) string {
	t.Helper()
	type res struct {
		s   string
		err error
	}
	ch := make(chan res, 1)
	go func() {
		s, err := p.out.ReadString('\n')
		ch <- res{strings.TrimSpace(s), err}
	}()
	select {
	case r := <-ch:
		if r.err != nil || strings.HasPrefix(r.s, "error") {
			t.Fatalf("helper %d: %q %v", p.pid, r.s, r.err)
		}
		return r.s
	case <-time.After(20 * time.Second):
		t.Fatalf("helper %d: no output in 20s", p.pid)
	}
	return ""
}

func (p socketsProc) expect(t *testing.T, want string) {
	t.Helper()
	if got := p.line(t); got != want {
		t.Fatalf("helper %d said %q, want %q", p.pid, got, want)
	}
}

// liveSocket is a socket held by a process, as the live kernel shows it.
type liveSocket struct {
	proto string // tcp, tcp6, unix
	state uint64 // st column (tcp: tcp_states.h; unix: socket state)
	local string
	queue uint64 // rx_queue
}

// startSocketsWorkload starts the workload in c and waits until the
// kernel shows it complete. It returns the three helpers.
func startSocketsWorkload(t *testing.T, c *testutil.Cgroup, w *socketsWorkload) (server, client, netns socketsProc) {
	t.Helper()
	server = startSockets(t, c, "sockets-server", *w, false)
	if err := json.Unmarshal([]byte(server.line(t)), w); err != nil {
		t.Fatal(err)
	}
	server.expect(t, "ready")
	client = startSockets(t, c, "sockets-client", *w, false)
	client.expect(t, "ready")
	server.expect(t, "accepted")
	netns = startSockets(t, c, "sockets-netns", *w, true)
	netns.expect(t, "ready")

	// The client's FINs arrive at once on loopback; wait for them anyway.
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := 0
		for _, s := range liveSockets(t, server.pid) {
			if s.proto == "tcp" && s.state == 8 { // CLOSE_WAIT
				n++
			}
		}
		if n == w.Closed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server has %d sockets in CLOSE_WAIT, want %d", n, w.Closed)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return server, client, netns
}

// liveSockets lists the sockets pid holds, by inode, from its fds and
// its namespace's tables, read with procfs from the live /proc.
func liveSockets(t *testing.T, pid int) map[uint64]liveSocket {
	t.Helper()
	fs, err := procfs.NewFS(filepath.Join("/proc", strconv.Itoa(pid)))
	if err != nil {
		t.Fatal(err)
	}
	all := map[uint64]liveSocket{}
	for proto, read := range map[string]func() (procfs.NetTCP, error){"tcp": fs.NetTCP, "tcp6": fs.NetTCP6} {
		lines, err := read()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range lines {
			all[l.Inode] = liveSocket{proto, l.St, net.JoinHostPort(l.LocalAddr.String(), strconv.FormatUint(l.LocalPort, 10)), l.RxQueue}
		}
	}
	ux, err := fs.NetUNIX()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ux.Rows {
		all[l.Inode] = liveSocket{"unix", uint64(l.State), l.Path, 0}
	}
	mine := map[uint64]liveSocket{}
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	fds, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		link, _ := os.Readlink(filepath.Join(dir, fd.Name()))
		num, ok := strings.CutPrefix(link, "socket:[")
		if !ok {
			continue
		}
		ino, _ := strconv.ParseUint(strings.TrimSuffix(num, "]"), 10, 64)
		if s, ok := all[ino]; ok {
			mine[ino] = s
		}
	}
	return mine
}

// TestSocketsLive captures a real workload: a server with connections
// in CLOSE_WAIT, a listener with a full-ish accept queue, a named unix
// socket, and a process in a network namespace of its own.
func TestSocketsLive(t *testing.T) {
	cg := testutil.NewCgroup(t)
	w := socketsWorkload{Closed: 7, Pending: 5, Backlog: 16, Unix: 2, Loops: 3,
		UnixPath: filepath.Join(t.TempDir(), "app.sock")}
	server, client, nsproc := startSocketsWorkload(t, cg, &w)
	workload := []int{server.pid, client.pid, nsproc.pid}

	tg, err := Resolve(DefaultPaths(), Spec{Cgroup: cg.Path}, os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	res, err := Capture(context.Background(), Options{
		Config: Config{Paths: DefaultPaths()}, Target: tg, OutDir: t.TempDir(),
		Modules: []string{"procs", "sockets"}, Trigger: bundle.Trigger{Kind: "manual"}, ToolVersion: "test",
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := bundle.Open(res.Path)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range b.Manifest.Modules {
		if m.Status != bundle.StatusOK {
			t.Errorf("module %s: %s (%s) %v", m.Name, m.Status, m.Reason, m.Errors)
		}
	}

	// One copy of the tables per namespace, never one per process.
	hostNS, _ := netnsInode(DefaultPaths(), server.pid)
	ownNS, _ := netnsInode(DefaultPaths(), nsproc.pid)
	if hostNS == ownNS || hostNS == 0 {
		t.Fatalf("namespaces %d and %d: the netns helper did not get its own", hostNS, ownNS)
	}
	var tables []string
	for _, n := range b.Names() {
		if strings.HasSuffix(n, "/net/tcp") {
			tables = append(tables, n)
		}
	}
	want := []string{NetnsDir(hostNS) + "net/tcp", NetnsDir(ownNS) + "net/tcp"}
	slices.Sort(want)
	if !slices.Equal(tables, want) {
		t.Errorf("net/tcp members = %v, want %v", tables, want)
	}
	for ns, pids := range map[uint64][]int{hostNS: {server.pid, client.pid}, ownNS: {nsproc.pid}} {
		var info Netns
		data, _ := b.File(NetnsDir(ns) + "netns.json")
		if err := json.Unmarshal(data, &info); err != nil {
			t.Fatalf("netns %d: %v", ns, err)
		}
		slices.Sort(pids)
		if !slices.Equal(info.Pids, pids) || info.SockDiag != "ok" || info.Version != 1 {
			t.Errorf("netns %d: %+v, want pids %v and sock_diag ok", ns, info, pids)
		}
		for _, f := range []string{"tcp_diag.json", "unix_diag.json", "sockets.json", "net/unix", "net/netstat", "net/sockstat"} {
			if _, ok := b.File(NetnsDir(ns) + f); !ok {
				t.Errorf("netns %d: %s missing", ns, f)
			}
		}
	}

	// Every socket of the workload is in the bundle, with its state and
	// the pid holding it.
	owners := map[uint64][]SocketOwner{}
	for _, ns := range []uint64{hostNS, ownNS} {
		var o SocketOwners
		data, _ := b.File(NetnsDir(ns) + "sockets.json")
		if err := json.Unmarshal(data, &o); err != nil {
			t.Fatal(err)
		}
		for k, v := range o.Owners {
			ino, _ := strconv.ParseUint(k, 10, 64)
			owners[ino] = append(owners[ino], v...)
		}
	}
	dir := t.TempDir()
	if err := b.Extract(dir); err != nil {
		t.Fatal(err)
	}
	captured := map[int]map[uint64]liveSocket{}
	for _, pid := range workload {
		ns, _ := netnsInode(DefaultPaths(), pid)
		fs, err := procfs.NewFS(filepath.Join(dir, "netns", strconv.FormatUint(ns, 10)))
		if err != nil {
			t.Fatal(err)
		}
		tables := map[uint64]liveSocket{}
		for proto, read := range map[string]func() (procfs.NetTCP, error){"tcp": fs.NetTCP, "tcp6": fs.NetTCP6} {
			lines, _ := read()
			for _, l := range lines {
				tables[l.Inode] = liveSocket{proto, l.St, net.JoinHostPort(l.LocalAddr.String(), strconv.FormatUint(l.LocalPort, 10)), l.RxQueue}
			}
		}
		ux, err := fs.NetUNIX()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range ux.Rows {
			tables[l.Inode] = liveSocket{"unix", uint64(l.State), l.Path, 0}
		}
		captured[pid] = tables
		live := liveSockets(t, pid)
		if len(live) == 0 {
			t.Errorf("pid %d holds no sockets", pid)
		}
		for ino, ls := range live {
			cs, ok := tables[ino]
			if !ok {
				t.Errorf("pid %d: socket %d (%+v) not in the captured tables", pid, ino, ls)
				continue
			}
			if cs != ls {
				t.Errorf("pid %d: socket %d captured as %+v, live %+v", pid, ino, cs, ls)
			}
			if !slices.ContainsFunc(owners[ino], func(o SocketOwner) bool { return o.Pid == pid }) {
				t.Errorf("pid %d: socket %d has owners %v in sockets.json", pid, ino, owners[ino])
			}
		}
	}

	// The facts the workload was built for, from the analyzer.
	r, err := analyze.Load(b)
	if err != nil {
		t.Fatal(err)
	}
	s := r.Sockets
	if s == nil {
		t.Fatal("no sockets section")
	}
	t.Cleanup(func() {
		if t.Failed() {
			var buf strings.Builder
			_ = r.WriteText(&buf)
			t.Log(buf.String())
		}
	})
	if len(s.Netns) != 2 {
		t.Errorf("analyzer: %d namespaces, want 2", len(s.Netns))
	}
	closeWait := 0
	for _, g := range s.CloseWait {
		if g.Pid == server.pid && g.Local == "127.0.0.1:"+strconv.Itoa(w.Port) && g.Direction == "inbound" {
			closeWait += g.Count
			if g.Peer != "127.0.0.1" || g.NotRead != g.Count || !strings.Contains(g.Advice, "does not close") {
				t.Errorf("CLOSE_WAIT group %+v", g)
			}
		} else if slices.Contains(workload, g.Pid) {
			t.Errorf("unexpected CLOSE_WAIT group %+v", g)
		}
	}
	if closeWait != w.Closed {
		t.Errorf("CLOSE_WAIT of the server: %d, want %d (%+v)", closeWait, w.Closed, s.CloseWait)
	}
	var queue *analyze.Listener
	for i, l := range s.Listeners {
		if l.Local == "127.0.0.1:"+strconv.Itoa(w.QueuePort) {
			queue = &s.Listeners[i]
		}
	}
	if queue == nil {
		t.Fatalf("listener :%d with %d pending not reported: %+v", w.QueuePort, w.Pending, s.Listeners)
	}
	if queue.Queue != uint64(w.Pending) || queue.Backlog == nil || *queue.Backlog != uint64(w.Backlog) ||
		queue.Full || !slices.Equal(queue.Pids, []int{server.pid}) {
		t.Errorf("listener = %+v (backlog %v), want queue %d backlog %d pid %d", *queue, queue.Backlog, w.Pending, w.Backlog, server.pid)
	}
	var named *analyze.UnixPath
	for i, u := range s.UnixPaths {
		if u.Path == w.UnixPath {
			named = &s.UnixPaths[i]
		}
	}
	if named == nil {
		t.Fatalf("unix socket %s not reported: %+v", w.UnixPath, s.UnixPaths)
	}
	if named.Listening != 1 || named.Sockets != 1+w.Unix || named.Type != "stream" ||
		!slices.Equal(named.Pids, []int{server.pid}) || named.Queue == nil || *named.Queue != 0 {
		t.Errorf("unix path = %+v", *named)
	}
	procs := map[int]analyze.SocketProcess{}
	for _, p := range s.Processes {
		procs[p.Pid] = p
	}
	listen := 2
	if w.Port6 != 0 {
		listen++
	}
	wantTCP := map[int]string{
		server.pid: fmt.Sprintf("CLOSE_WAIT %d, ESTABLISHED 1, LISTEN %d", w.Closed, listen+1),
		client.pid: fmt.Sprintf("ESTABLISHED %d", w.Pending+1),
		nsproc.pid: fmt.Sprintf("ESTABLISHED %d, LISTEN 1", 2*w.Loops),
	}
	for pid, want := range wantTCP {
		p := procs[pid]
		if got := tcpCounts(p.TCP); got != want || p.Netns == 0 {
			t.Errorf("pid %d: TCP %q in netns %d, want %q", pid, got, p.Netns, want)
		}
	}
	if procs[server.pid].Unix != 1+w.Unix || procs[client.pid].Unix != w.Unix {
		t.Errorf("unix sockets: server %d, client %d; want %d, %d", procs[server.pid].Unix, procs[client.pid].Unix, 1+w.Unix, w.Unix)
	}
	// The client's connection to ZeroPort waits on a zero window.
	var stalled []analyze.StalledConn
	for _, c := range s.Stalled {
		if slices.Contains(workload, c.Pid) {
			stalled = append(stalled, c)
		}
	}
	if len(stalled) != 1 || stalled[0].Pid != client.pid || stalled[0].Why != "zero window" ||
		stalled[0].Peer != "127.0.0.1:"+strconv.Itoa(w.ZeroPort) || stalled[0].SendQBytes == 0 {
		t.Errorf("stalled connections = %+v, want the client's to :%d on a zero window", stalled, w.ZeroPort)
	}
	t.Run("ss", func(t *testing.T) { diffSS(t, s, workload) })
}

// tcpCounts formats counts by state sorted by name: "CLOSE_WAIT 7, LISTEN 3".
func tcpCounts(c []analyze.SocketStateCount) string {
	var parts []string
	for _, s := range c {
		parts = append(parts, s.State+" "+strconv.Itoa(s.Count))
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

// ssStates maps ss's state names to the kernel's.
var ssStates = map[string]string{
	"ESTAB": "ESTABLISHED", "SYN-SENT": "SYN_SENT", "SYN-RECV": "SYN_RECV", "FIN-WAIT-1": "FIN_WAIT1",
	"FIN-WAIT-2": "FIN_WAIT2", "TIME-WAIT": "TIME_WAIT", "UNCONN": "CLOSE", "CLOSE-WAIT": "CLOSE_WAIT",
	"LAST-ACK": "LAST_ACK", "LISTEN": "LISTEN", "CLOSING": "CLOSING",
}

// diffSS compares the analyzer's TCP counts by state of each pid with
// what `ss -tanp` shows, run in each pid's network namespace.
func diffSS(t *testing.T, s *analyze.SocketSection, pids []int) {
	ss, err := exec.LookPath("ss")
	if err != nil {
		testutil.SkipOrFail(t, "ss not installed (Debian package iproute2)")
	}
	nsenter, err := exec.LookPath("nsenter")
	if err != nil {
		testutil.SkipOrFail(t, "nsenter not installed (Debian package util-linux)")
	}
	got := map[int]string{}
	for _, p := range s.Processes {
		if slices.Contains(pids, p.Pid) {
			got[p.Pid] = tcpCounts(p.TCP)
		}
	}
	for _, pid := range pids {
		out, err := exec.Command(nsenter, "--net=/proc/"+strconv.Itoa(pid)+"/ns/net", ss, "-tanpH").Output()
		if err != nil {
			t.Fatalf("ss in the netns of %d: %v", pid, err)
		}
		n := map[string]int{}
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			if len(f) == 0 || !strings.Contains(line, "pid="+strconv.Itoa(pid)+",") {
				continue
			}
			st, ok := ssStates[f[0]]
			if !ok {
				t.Fatalf("ss state %q unknown: %s", f[0], line)
			}
			n[st]++
		}
		var parts []string
		for st, c := range n {
			parts = append(parts, st+" "+strconv.Itoa(c))
		}
		slices.Sort(parts)
		if want := strings.Join(parts, ", "); got[pid] != want {
			t.Errorf("pid %d: dashcam says TCP %q, ss -tanp says %q\n%s", pid, got[pid], want, out)
		}
	}
}

// The fixture's two network namespaces: A holds payment (100) and
// payment-io (104), B holds 105. Their net/ files are real, sampled on
// Linux 6.18 from a workload in namespaces of its own, under
// testdata/fixtures/proc/{100,105}/net; testdata/fixtures/netns/<inode>/
// holds what dashcam derived from them (sockets.json with the owners
// rewritten to the fixture's pids, and the sock_diag dumps).
const (
	fixtureNetnsA uint64 = 4026532176
	fixtureNetnsB uint64 = 4026532245
)

// socketsTree builds a fake /proc for the sockets module: net/ is the
// fixture's, while ns/net and fd/* are real symlinks made here (git
// cannot carry /proc's magic links), the fds pointing at the sockets of
// the fixture's sockets.json.
func socketsTree(t *testing.T) (Paths, map[uint64]SocketOwners) {
	t.Helper()
	root := t.TempDir()
	fix := fixtures(t, ModeV2).Proc
	owners := map[uint64]SocketOwners{}
	netDir := map[int]string{100: "100", 104: "100", 105: "105"}
	netnsOf := map[int]uint64{100: fixtureNetnsA, 104: fixtureNetnsA, 105: fixtureNetnsB}
	for pid, from := range netDir {
		dir := filepath.Join(root, strconv.Itoa(pid))
		for _, d := range []string{"ns", "fd"} {
			if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		abs, err := filepath.Abs(filepath.Join(fix, from, "net"))
		if err != nil {
			t.Fatal(err)
		}
		ns := netnsOf[pid]
		if err := os.Symlink(abs, filepath.Join(dir, "net")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(fmt.Sprintf("net:[%d]", ns), filepath.Join(dir, "ns", "net")); err != nil {
			t.Fatal(err)
		}
		o, ok := owners[ns]
		if !ok {
			data, err := os.ReadFile(filepath.Join("testdata", "fixtures", "netns", strconv.FormatUint(ns, 10), "sockets.json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(data, &o); err != nil {
				t.Fatal(err)
			}
			owners[ns] = o
		}
		for ino, fds := range o.Owners {
			for _, f := range fds {
				if f.Pid == pid {
					if err := os.Symlink("socket:["+ino+"]", filepath.Join(dir, "fd", strconv.Itoa(f.FD))); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		// Other kinds of fds, which the module must leave out.
		for fd, target := range map[int]string{0: "/dev/null", 1: "pipe:[118880]", 2: "anon_inode:[eventpoll]"} {
			if err := os.Symlink(target, filepath.Join(dir, "fd", strconv.Itoa(fd))); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A zombie: its namespaces and fds are gone, its directory is not.
	if err := os.MkdirAll(filepath.Join(root, "103", "fd"), 0o755); err != nil {
		t.Fatal(err)
	}
	return Paths{Proc: root}, owners
}

func runSockets(t *testing.T, p Paths, tg *Target) (*memAdder, bundle.ModuleResult, Report) {
	t.Helper()
	out := newMemAdder()
	rep := Run(context.Background(), tg, out, RunOptions{Modules: []string{"sockets"}, Config: &Config{Paths: p}})
	return out, rep.Modules[0], rep
}

func TestSocketsFixture(t *testing.T) {
	p, owners := socketsTree(t)
	tg := &Target{Pids: []int{100, 103, 104, 105, 4000000}, Zombies: []int{103}}
	out, res, rep := runSockets(t, p, tg)
	if res.Status != bundle.StatusOK {
		t.Errorf("status %s (%s) %v", res.Status, res.Reason, res.Errors)
	}
	if rep.Counts.ProcessesVanished != 1 {
		t.Errorf("vanished = %d, want 1 (pid 4000000)", rep.Counts.ProcessesVanished)
	}
	fix := fixtures(t, ModeV2).Proc
	want := map[string][]byte{}
	for ns, pid := range map[uint64]string{fixtureNetnsA: "100", fixtureNetnsB: "105"} {
		dir := NetnsDir(ns)
		// Raw first: each namespace's files, byte for byte, once.
		for _, f := range netFiles {
			data, err := os.ReadFile(filepath.Join(fix, pid, "net", f))
			if err != nil {
				t.Fatal(err)
			}
			want[dir+"net/"+f] = data
		}
		want[dir+"netns.json"], want[dir+"sockets.json"] = nil, nil
	}
	for name := range out.files {
		if _, ok := want[name]; !ok {
			t.Errorf("unexpected member %s", name)
		}
	}
	for name, data := range want {
		got, ok := out.files[name]
		if !ok {
			t.Errorf("member %s missing", name)
		} else if data != nil && string(got) != string(data) {
			t.Errorf("%s differs from the source file", name)
		}
	}
	for ns, pids := range map[uint64][]int{fixtureNetnsA: {100, 104}, fixtureNetnsB: {105}} {
		var info Netns
		if err := json.Unmarshal(out.files[NetnsDir(ns)+"netns.json"], &info); err != nil {
			t.Fatal(err)
		}
		if info.Version != 1 || info.Inode != ns || !slices.Equal(info.Pids, pids) || info.ReadVia != pids[0] ||
			!strings.HasPrefix(info.SockDiag, "not taken: ") {
			t.Errorf("netns.json = %+v, want pids %v read via %d, sock_diag not taken", info, pids, pids[0])
		}
		var got SocketOwners
		if err := json.Unmarshal(out.files[NetnsDir(ns)+"sockets.json"], &got); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(owners[ns]) {
			t.Errorf("netns %d: sockets.json\n got %v\nwant %v", ns, got, owners[ns])
		}
		// And byte for byte, one socket per line in inode order.
		want, _ := os.ReadFile(filepath.Join("testdata", "fixtures", "netns", strconv.FormatUint(ns, 10), "sockets.json"))
		if g := out.files[NetnsDir(ns)+"sockets.json"]; string(g) != string(want) {
			t.Errorf("netns %d: sockets.json is\n%s\nwant\n%s", ns, g, want)
		}
	}
}

// TestSocketsMemberVanishes: when the member the files are read through
// exits, the next member of the namespace is used.
func TestSocketsMemberVanishes(t *testing.T) {
	p, _ := socketsTree(t)
	m := &sockets{paths: p}
	s := newSink("sockets", newMemAdder())
	if via := m.copyNet(s, NetnsDir(fixtureNetnsA), []int{4000000, 104}); via != 104 {
		t.Errorf("read via %d, want 104", via)
	}
	if !s.vanished[4000000] || s.members != len(netFiles) {
		t.Errorf("vanished %v, members %d; want 4000000 and %d", s.vanished, s.members, len(netFiles))
	}
	if via := m.copyNet(s, NetnsDir(1), []int{4000001}); via != 0 {
		t.Errorf("every member gone: read via %d, want 0", via)
	}
}

// socketsBenchSetup starts n sleeping processes and holds conns loopback
// connections (2 sockets each) in this process, all in this network
// namespace, for the benchmarks below.
func socketsBenchSetup(b *testing.B, n, conns int) []int {
	b.Helper()
	var pids []int
	for range n {
		cmd := exec.Command("sleep", "1000")
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		pids = append(pids, cmd.Process.Pid)
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	for range conns {
		c, err := net.Dial("tcp4", l.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		s, err := l.Accept()
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() {
			// Reset, not closed: no TIME_WAIT left for the next benchmark.
			_ = c.(*net.TCPConn).SetLinger(0)
			c.Close()
			s.Close()
		})
	}
	return pids
}

// reportTCPSockets reports how many TCP sockets the namespace held: the
// cost of the tables grows with every one of them, this benchmark's or
// not. (Called after the loop: b.ResetTimer deletes reported metrics.)
func reportTCPSockets(b *testing.B) {
	if data, err := readFile("/proc/self/net/tcp"); err == nil {
		b.ReportMetric(float64(strings.Count(string(data), "\n")-1), "tcp-sockets")
	}
}

// BenchmarkSocketsModule is the sockets module on 100 processes of one
// namespace holding 1000 TCP sockets: one fd pass, one copy of the
// tables, one sock_diag dump.
func BenchmarkSocketsModule(b *testing.B) {
	pids := socketsBenchSetup(b, 100, 500)
	m := &sockets{paths: DefaultPaths()}
	b.ResetTimer()
	for b.Loop() {
		tg := &Target{Pids: pids} // fresh FDLinks memo
		if err := m.Run(context.Background(), tg, newSink("sockets", newMemAdder())); err != nil {
			b.Fatal(err)
		}
	}
	reportTCPSockets(b)
}

// BenchmarkSocketsPerPidTables is what the module avoids: reading
// /proc/<pid>/net/{tcp,tcp6,udp,udp6,unix} of each of the 100 processes,
// the same namespace's tables 100 times.
func BenchmarkSocketsPerPidTables(b *testing.B) {
	pids := socketsBenchSetup(b, 100, 500)
	b.ResetTimer()
	for b.Loop() {
		for _, pid := range pids {
			for _, f := range []string{"tcp", "tcp6", "udp", "udp6", "unix"} {
				if _, err := readFile(fmt.Sprintf("/proc/%d/net/%s", pid, f)); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	reportTCPSockets(b)
}

// BenchmarkSocketsDump is one namespace's sock_diag dumps (TCP with
// tcp_info, unix) against 1000 TCP sockets, socket creation included.
func BenchmarkSocketsDump(b *testing.B) {
	pids := socketsBenchSetup(b, 1, 500)
	b.ResetTimer()
	for b.Loop() {
		if d := dumpDiag(context.Background(), DefaultPaths(), pids); d.err != nil {
			b.Fatal(d.err)
		}
	}
	reportTCPSockets(b)
}

// BenchmarkSocketsNetTCPOnce reads /proc/net/tcp once, against the same
// 1000 sockets: the raw copy the dump goes with.
func BenchmarkSocketsNetTCPOnce(b *testing.B) {
	pids := socketsBenchSetup(b, 1, 500)
	b.ResetTimer()
	for b.Loop() {
		if _, err := readFile(fmt.Sprintf("/proc/%d/net/tcp", pids[0])); err != nil {
			b.Fatal(err)
		}
	}
	reportTCPSockets(b)
}

// BenchmarkSocketsEmptyNetns is the module on one process alone in a
// network namespace without sockets: the floor paid per namespace
// (container). /proc/net/tcp and the inet_diag dump both walk the
// host-wide TCP hash tables and keep the namespace's entries.
func BenchmarkSocketsEmptyNetns(b *testing.B) {
	testutil.RequireRoot(b)
	cmd := exec.Command("sleep", "1000")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	m := &sockets{paths: DefaultPaths()}
	for b.Loop() {
		s := newSink("sockets", newMemAdder())
		if err := m.Run(context.Background(), &Target{Pids: []int{cmd.Process.Pid}}, s); err != nil || len(s.problems) > 0 {
			b.Fatal(err, s.problems)
		}
	}
}
