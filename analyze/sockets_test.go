package analyze

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"text/tabwriter"

	"github.com/dashcam-dev/dashcam/bundle"
)

// The sockets bundle holds the fixture's two network namespaces, as the
// sockets module captures them (see capture/sockets_test.go): real
// net/ files sampled on Linux 6.18 from testdata/fixtures/proc/{100,105}/net,
// and dashcam's JSON from testdata/fixtures/netns/<inode>/.
//
//	namespace   pids      what is in it
//	4026532176  100, 104  payment: listeners :8080 (v4, v6; shared with
//	                      104), :9090 (backlog 4, 3 never accepted),
//	                      127.0.0.2:5432 and :7070; 4 inbound connections
//	                      in CLOSE_WAIT with 18 unread bytes each; 2
//	                      outbound ones (held by 104) to 127.0.0.2:5432;
//	                      3 TIME_WAIT; /run/payment/payment.sock with one
//	                      accepted and one pending connection; @payment-ctl
//	4026532245  105       one listener on :3000 and a connection to itself
const (
	sockNetnsA = "4026532176"
	sockNetnsB = "4026532245"
)

// socketsFiles returns the members of the sockets bundle.
func socketsFiles(t *testing.T) map[string][]byte {
	t.Helper()
	root := filepath.Join("..", "testdata", "fixtures")
	files := map[string][]byte{
		"proc/100/stat": []byte(statLine(100, "payment", "S", 1, 9000, 1000, 2, 5000)),
		"proc/104/stat": []byte(statLine(104, "payment-io", "S", 100, 10, 40, 1, 300)),
		"proc/105/stat": []byte(statLine(105, "stuck", "S", 100, 0, 0, 1, 100)),
	}
	for ns, pid := range map[string]string{sockNetnsA: "100", sockNetnsB: "105"} {
		for _, f := range []string{"tcp", "tcp6", "udp", "udp6", "unix", "netstat", "snmp", "sockstat", "sockstat6"} {
			files["netns/"+ns+"/net/"+f] = readFixture(t, filepath.Join(root, "proc", pid, "net", f))
		}
		for _, f := range []string{"netns.json", "sockets.json", "tcp_diag.json", "unix_diag.json"} {
			files["netns/"+ns+"/"+f] = readFixture(t, filepath.Join(root, "netns", ns, f))
		}
	}
	return files
}

func readFixture(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func socketsBundle(t *testing.T, edit func(map[string][]byte)) *Report {
	t.Helper()
	files := socketsFiles(t)
	if edit != nil {
		edit(files)
	}
	return load(t, bundle.New(fixtureManifest(), files))
}

func TestSocketsSection(t *testing.T) {
	r := socketsBundle(t, nil)
	s := r.Sockets
	if s == nil {
		t.Fatal("no sockets section")
	}
	if len(r.Problems) > 0 {
		t.Errorf("problems: %+v", r.Problems)
	}
	if len(s.Netns) != 2 {
		t.Fatalf("%d namespaces, want 2", len(s.Netns))
	}
	a := s.Netns[0]
	if got := statesLineTCP(a.TCP); got != "ESTABLISHED 10, FIN_WAIT2 6, TIME_WAIT 3, CLOSE_WAIT 6, LISTEN 5" {
		t.Errorf("namespace A TCP = %s", got)
	}
	if a.Inode != 4026532176 || !slices.Equal(a.Pids, []int{100, 104}) || *a.TimeWait != 3 || *a.UDP != 2 ||
		*a.Unix != 6 || *a.ListenOverflows != 0 || *a.ListenDrops != 0 || a.SockDiag != "ok" {
		t.Errorf("namespace A = %+v", a)
	}
	if b := s.Netns[1]; statesLineTCP(b.TCP) != "ESTABLISHED 2, LISTEN 1" || *b.Unix != 0 {
		t.Errorf("namespace B = %+v", b)
	}

	want := []string{
		"100 payment 4026532176 ESTABLISHED 7, CLOSE_WAIT 4, LISTEN 5 udp 2 unix 5 other 0",
		"104 payment-io 4026532176 CLOSE_WAIT 2, LISTEN 1 udp 0 unix 0 other 0",
		"105 stuck 4026532245 ESTABLISHED 2, LISTEN 1 udp 0 unix 0 other 0",
	}
	var got []string
	for _, p := range s.Processes {
		got = append(got, fmt.Sprintf("%d %s %d %s udp %d unix %d other %d", p.Pid, p.Comm, p.Netns, statesLineTCP(p.TCP), p.UDP, p.Unix, p.Other))
	}
	if !slices.Equal(got, want) {
		t.Errorf("processes:\n got %q\nwant %q", got, want)
	}

	if len(s.CloseWait) != 2 {
		t.Fatalf("close_wait = %+v, want 2 groups", s.CloseWait)
	}
	in, out := s.CloseWait[0], s.CloseWait[1]
	if in.Pid != 100 || in.Direction != "inbound" || in.Local != "127.0.0.1:8080" || in.Peer != "127.0.0.1" ||
		in.Count != 4 || in.NotRead != 4 || in.UnreadBytes != 4*18 {
		t.Errorf("inbound group = %+v", in)
	}
	if out.Pid != 104 || out.Comm != "payment-io" || out.Direction != "outbound" || out.Local != "127.0.0.1" ||
		out.Peer != "127.0.0.2:5432" || out.Count != 2 || out.UnreadBytes != 0 {
		t.Errorf("outbound group = %+v", out)
	}
	for _, g := range s.CloseWait {
		if !strings.Contains(g.Advice, "has not called close()") || !strings.Contains(g.Advice, fmt.Sprint("pid ", g.Pid)) {
			t.Errorf("advice %q", g.Advice)
		}
	}

	if len(s.Listeners) != 1 {
		t.Fatalf("listeners = %+v, want the one on :9090", s.Listeners)
	}
	if l := s.Listeners[0]; l.Local != "127.0.0.1:9090" || l.Queue != 3 || l.Backlog == nil || *l.Backlog != 4 ||
		l.Full || !slices.Equal(l.Pids, []int{100}) || l.Comm != "payment" {
		t.Errorf("listener = %+v", l)
	}

	if len(s.UnixPaths) != 2 {
		t.Fatalf("unix paths = %+v", s.UnixPaths)
	}
	if u := s.UnixPaths[0]; u.Path != "/run/payment/payment.sock" || u.Type != "stream" || u.Sockets != 3 ||
		u.Listening != 1 || *u.Queue != 1 || *u.Backlog != 4096 || !slices.Equal(u.Pids, []int{100}) {
		t.Errorf("unix path = %+v", u)
	}
	if u := s.UnixPaths[1]; u.Path != "@payment-ctl" || u.Type != "dgram" || u.Queue != nil || u.Listening != 0 {
		t.Errorf("abstract socket = %+v", u)
	}
}

// TestSocketsOther: sockets in no table (a TCP socket reset into CLOSE,
// a netlink socket) count as other, once per process.
func TestSocketsOther(t *testing.T) {
	r := socketsBundle(t, func(f map[string][]byte) {
		f["netns/"+sockNetnsB+"/sockets.json"] = []byte(`{"version":1,"owners":{
			"227971":[{"pid":105,"fd":5}],"227975":[{"pid":105,"fd":6}],"227976":[{"pid":105,"fd":9}],
			"999":[{"pid":105,"fd":10},{"pid":105,"fd":11}],"1000":[{"pid":105,"fd":12}]}}`)
	})
	for _, p := range r.Sockets.Processes {
		if p.Pid == 105 && p.Other != 2 {
			t.Errorf("pid 105: other = %d, want 2", p.Other)
		}
	}
}

// TestSocketsWithoutDiag: without the sock_diag dumps the backlogs are
// unknown, not 0, and a full queue cannot be told.
func TestSocketsWithoutDiag(t *testing.T) {
	r := socketsBundle(t, func(f map[string][]byte) {
		for _, ns := range []string{sockNetnsA, sockNetnsB} {
			delete(f, "netns/"+ns+"/tcp_diag.json")
			delete(f, "netns/"+ns+"/unix_diag.json")
			delete(f, "netns/"+ns+"/netns.json")
		}
	})
	s := r.Sockets
	if l := s.Listeners[0]; l.Queue != 3 || l.Backlog != nil || l.Full {
		t.Errorf("listener = %+v, want queue 3, backlog unknown", l)
	}
	if u := s.UnixPaths[0]; u.Queue != nil || u.Backlog != nil {
		t.Errorf("unix path = %+v, want queue unknown", u)
	}
	if n := s.Netns[0]; n.SockDiag != "" || len(n.Pids) != 0 {
		t.Errorf("namespace = %+v, want no pids or sock_diag without netns.json", n)
	}
	var buf bytes.Buffer
	if err := r.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, line := range strings.Split(buf.String(), "\n") {
		if f := strings.Fields(line); len(f) == 6 && f[2] == "127.0.0.1:9090" {
			found = true
			if !slices.Equal(f[3:], []string{"3", "unknown", "unknown"}) {
				t.Errorf("listener line does not say the backlog is unknown: %q", line)
			}
		}
	}
	if !found {
		t.Errorf("no listener line in:\n%s", buf.String())
	}
}

func TestSocketsAbsent(t *testing.T) {
	if r := load(t, fixtureBundle()); r.Sockets != nil {
		t.Errorf("sockets section without sockets files: %+v", r.Sockets)
	}
}

// TestSocketsMalformed: a hostile bundle gives problems, not a panic or
// a made-up count.
func TestSocketsMalformed(t *testing.T) {
	r := socketsBundle(t, func(f map[string][]byte) {
		f["netns/"+sockNetnsA+"/net/tcp"] = []byte("  sl  local_address\n   0: zz:zz 00000000:0000 0A\n")
		f["netns/"+sockNetnsA+"/net/tcp6"] = []byte("header\n")
		f["netns/"+sockNetnsA+"/sockets.json"] = []byte(`{"version":1,"owners":{"x":[{"pid":1,"fd":2}]}}`)
		f["netns/"+sockNetnsA+"/tcp_diag.json"] = []byte(`{"version":2}`)
		f["netns/"+sockNetnsA+"/unix_diag.json"] = []byte(`[`)
		f["netns/"+sockNetnsA+"/net/netstat"] = []byte("TcpExt: ListenOverflows\n")
		f["netns/"+sockNetnsB+"/net/unix"] = []byte("Num RefCount Protocol Flags Type St Inode Path\nbad\n")
		f["netns/12/net/tcp"] = []byte{0xff, 0, '\n'}
	})
	s := r.Sockets
	paths := map[string]bool{}
	for _, p := range r.Problems {
		paths[p.Path] = true
	}
	for _, want := range []string{
		"netns/" + sockNetnsA + "/net/tcp", "netns/" + sockNetnsA + "/sockets.json",
		"netns/" + sockNetnsA + "/tcp_diag.json", "netns/" + sockNetnsA + "/unix_diag.json",
		"netns/" + sockNetnsA + "/net/netstat", "netns/" + sockNetnsB + "/net/unix",
	} {
		if !paths[want] {
			t.Errorf("no problem reported for %s (%+v)", want, r.Problems)
		}
	}
	// tcp is malformed, tcp6 has no sockets: the count covers tcp6 only.
	if n := s.Netns[1]; statesLineTCP(n.TCP) != "none" {
		t.Errorf("namespace A TCP = %s", statesLineTCP(n.TCP))
	}
	if n := s.Netns[2]; n.Unix != nil {
		t.Errorf("namespace B unix = %d, want unknown", *n.Unix)
	}
	var buf bytes.Buffer
	for _, w := range []func(*bytes.Buffer) error{
		func(b *bytes.Buffer) error { return r.WriteText(b) },
		func(b *bytes.Buffer) error { return r.WriteMarkdown(b) },
		func(b *bytes.Buffer) error { return r.WriteJSON(b) },
	} {
		if err := w(&buf); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSocketsGolden(t *testing.T) {
	r := socketsBundle(t, nil)
	var txt bytes.Buffer
	tw := tabwriter.NewWriter(&txt, 0, 0, 2, ' ', 0)
	socketsText(tw, r)
	tw.Flush()
	golden(t, "sockets.txt.golden", txt.Bytes())
	var md bytes.Buffer
	socketsMarkdown(&md, r)
	golden(t, "sockets.md.golden", md.Bytes())
	var js bytes.Buffer
	if err := (&Report{Sockets: r.Sockets}).WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(js.Bytes(), []byte(`  "sockets":`))
	j := bytes.Index(js.Bytes(), []byte(`  "modules":`))
	if i < 0 || j < i {
		t.Fatalf("no sockets in the JSON:\n%s", js.Bytes())
	}
	golden(t, "sockets.json.golden", js.Bytes()[i:j])
}

// TestSocketsStalled: connections sock_diag shows stuck on their peer,
// one probing a zero window, one retransmitting; the fixture's dump has
// none, so two of its rows are edited.
func TestSocketsStalled(t *testing.T) {
	if s := socketsBundle(t, nil).Sockets; s.Stalled == nil || len(s.Stalled) != 0 {
		t.Errorf("stalled = %+v, want [] (a dump with none)", s.Stalled)
	}
	r := socketsBundle(t, func(f map[string][]byte) {
		name := "netns/" + sockNetnsA + "/tcp_diag.json"
		var d struct {
			Version int              `json:"version"`
			Sockets []map[string]any `json:"sockets"`
		}
		if err := json.Unmarshal(f[name], &d); err != nil {
			t.Fatal(err)
		}
		for _, s := range d.Sockets {
			info, _ := s["info"].(map[string]any)
			switch s["inode"] {
			case 228005.0:
				s["timer"] = 4
			case 228006.0:
				s["timer"] = 1
				info["retransmits"], info["last_ack_recv_ms"], info["rtt_us"] = 5, 12000, 250
			}
		}
		data, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		f[name] = data
		delete(f, "netns/"+sockNetnsB+"/tcp_diag.json")
	})
	var got []string
	for _, c := range r.Sockets.Stalled {
		got = append(got, fmt.Sprintf("%d %s %s %s %s %d %d %d", c.Pid, c.Local, c.Peer, c.State, c.Why, c.Retransmits, c.LastAckMS, c.RTTUS))
		if !strings.Contains(c.Advice, "pid 100 (payment)") {
			t.Errorf("advice %q", c.Advice)
		}
	}
	want := []string{
		"100 127.0.0.1:36176 127.0.0.1:9090 ESTABLISHED zero window 0 4736 6",
		"100 127.0.0.1:36188 127.0.0.1:9090 ESTABLISHED retransmitting 5 12000 250",
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("stalled:\n got %q\nwant %q", got, want)
	}
}
