package capture

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

func init() {
	register("sockets", true, func(c *Config) Module { return &sockets{paths: c.Paths} })
}

// sockets copies the socket tables of every network namespace the target
// lives in, once per namespace, and records which process holds each
// socket.
//
// /proc/<pid>/net/ shows the whole network namespace of pid, not the
// process's own sockets: reading it per process would copy the same
// tables a thousand times for a thousand processes in one namespace. So
// the target's processes are grouped by the inode of /proc/<pid>/ns/net
// (a container has its own), and each namespace's files are read once,
// through one member. Which socket belongs to which process comes from
// the fd links "socket:[<inode>]" (Target.FDLinks, read once per capture
// and shared with the fds module). On a live procfs the module also takes
// one sock_diag dump per namespace (sockets_diag.go): it adds what the
// proc files lack, such as the backlog of a listener, RTT, congestion
// window and retransmissions. The cost is one pass over the fds, shared,
// plus a handful of reads and three dumps per namespace.
//
// Members, per namespace (NetnsDir):
//
//	netns/<inode>/net/{tcp,tcp6,udp,udp6,unix,netstat,snmp,sockstat,sockstat6}
//	netns/<inode>/netns.json     Netns: member pids, where the files came from
//	netns/<inode>/sockets.json   SocketOwners: socket inode -> (pid, fd)
//	netns/<inode>/tcp_diag.json  TCPDiag, when sock_diag could be used
//	netns/<inode>/unix_diag.json UnixDiag, likewise
//
// The raw files sit under net/ so that procfs, rooted at netns/<inode>,
// parses them as it would /proc/net.
type sockets struct {
	paths Paths
}

// netFiles are copied from /proc/<pid>/net/ of one member of each
// namespace. tcp6, udp6 and sockstat6 are absent without IPv6.
var netFiles = []string{"tcp", "tcp6", "udp", "udp6", "unix", "netstat", "snmp", "sockstat", "sockstat6"}

// NetnsDir is the bundle directory of the network namespace whose
// /proc/<pid>/ns/net link reads "net:[inode]", with a trailing slash.
func NetnsDir(inode uint64) string {
	return "netns/" + strconv.FormatUint(inode, 10) + "/"
}

// Netns is the JSON layout of netns/<inode>/netns.json (version 1).
type Netns struct {
	Version int    `json:"version"`
	Inode   uint64 `json:"inode"`
	// Pids are the target processes in the namespace, sorted.
	Pids []int `json:"pids"`
	// ReadVia is the pid whose /proc/<pid>/net/ files were copied; 0 when
	// every member exited before they could be read.
	ReadVia int `json:"read_via"`
	// SockDiag is "ok" when the sock_diag dumps were taken, else why not.
	SockDiag string `json:"sock_diag"`
}

// SocketOwners is the JSON layout of netns/<inode>/sockets.json
// (version 1): the processes of the namespace holding each socket, keyed
// by socket inode in decimal. A socket shared across fork or passed over
// a unix socket has several owners; a socket in no map has no owner among
// the target processes (TIME_WAIT, not yet accepted, or another
// process's).
type SocketOwners struct {
	Version int                      `json:"version"`
	Owners  map[string][]SocketOwner `json:"owners"`
}

// SocketOwner is one fd of one process pointing at a socket.
type SocketOwner struct {
	Pid int `json:"pid"`
	FD  int `json:"fd"`
}

func (m *sockets) Run(ctx context.Context, t *Target, s *Sink) error {
	groups := m.namespaces(t, s)
	inodes := make([]uint64, 0, len(groups))
	for ino := range groups {
		inodes = append(inodes, ino)
	}
	slices.Sort(inodes)
	live := isProcfs(m.paths.Proc)
	for _, ino := range inodes {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := m.netns(ctx, t, s, ino, groups[ino], live); err != nil {
			return err
		}
	}
	return nil
}

// namespaces groups the target's processes by network namespace inode.
func (m *sockets) namespaces(t *Target, s *Sink) map[uint64][]int {
	groups := map[uint64][]int{}
	for _, pid := range t.Pids {
		if slices.Contains(t.Zombies, pid) {
			continue // no namespaces and no fds left
		}
		ino, err := netnsInode(m.paths, pid)
		switch {
		case err == nil:
			groups[ino] = append(groups[ino], pid)
		case isGone(err):
			// A zombie (its namespaces are released at exit) or gone.
			if !exists(filepath.Join(m.paths.Proc, strconv.Itoa(pid))) {
				s.Vanished(pid)
			}
		case errors.Is(err, fs.ErrPermission):
			s.Denied("proc/" + strconv.Itoa(pid) + "/ns/net")
		default:
			s.Problem("proc/%d/ns/net: %v", pid, err)
		}
	}
	return groups
}

// netnsInode reads the link /proc/<pid>/ns/net, "net:[4026531840]".
func netnsInode(p Paths, pid int) (uint64, error) {
	link, err := os.Readlink(filepath.Join(p.Proc, strconv.Itoa(pid), "ns", "net"))
	if err != nil {
		return 0, err
	}
	num, ok := bracketed(link, "net")
	if !ok {
		return 0, fmt.Errorf("unexpected link %q", link)
	}
	return strconv.ParseUint(num, 10, 64)
}

// bracketed returns N from "kind:[N]", the form of namespace and
// socket links.
func bracketed(link, kind string) (string, bool) {
	rest, ok := strings.CutPrefix(link, kind+":[")
	if !ok {
		return "", false
	}
	return strings.CutSuffix(rest, "]")
}

// netns captures one network namespace with member pids.
func (m *sockets) netns(ctx context.Context, t *Target, s *Sink, ino uint64, pids []int, live bool) error {
	dir := NetnsDir(ino)
	info := Netns{Version: 1, Inode: ino, Pids: pids}
	info.ReadVia = m.copyNet(s, dir, pids)

	owners := SocketOwners{Version: 1, Owners: map[string][]SocketOwner{}}
	for _, pid := range pids {
		if err := ctx.Err(); err != nil {
			return err
		}
		m.owners(t, s, pid, owners.Owners)
	}

	switch {
	case !live:
		info.SockDiag = "not taken: " + m.paths.Proc + " is not a live procfs"
	case info.ReadVia == 0:
		info.SockDiag = "not taken: every process of the namespace exited"
	default:
		d := dumpDiag(ctx, m.paths, pids)
		info.SockDiag = d.status()
		if d.err != nil {
			if errors.Is(d.err, fs.ErrPermission) {
				s.Denied(dir + "tcp_diag.json")
			} else {
				s.Problem("%s sock_diag: %s", dir, info.SockDiag)
			}
		}
		if d.tcp != nil {
			if err := addRows(s, dir+"tcp_diag.json", TCPDiag{Version: 1, Interrupted: d.tcp.Interrupted, Sockets: []TCPDiagSocket{}}, d.tcp.Sockets); err != nil {
				return err
			}
		}
		if d.unix != nil {
			if err := addRows(s, dir+"unix_diag.json", UnixDiag{Version: 1, Interrupted: d.unix.Interrupted, Sockets: []UnixDiagSocket{}}, d.unix.Sockets); err != nil {
				return err
			}
		}
	}
	if err := addOwners(s, dir+"sockets.json", owners); err != nil {
		return err
	}
	data, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	return s.Add(dir+"netns.json", data)
}

// copyNet copies the namespace's files from /proc/<pid>/net/ of the first
// member still alive, moving on to the next member when one exits midway.
// It returns the pid the last file was read through, or 0 if none lived.
func (m *sockets) copyNet(s *Sink, dir string, pids []int) int {
	i := 0
	for _, name := range netFiles {
		for ; i < len(pids); i++ {
			pdir := filepath.Join(m.paths.Proc, strconv.Itoa(pids[i]))
			data, err := readFile(filepath.Join(pdir, "net", name))
			if err == nil {
				_ = s.Add(dir+"net/"+name, data)
				break
			}
			if isGone(err) && !exists(pdir) {
				s.Vanished(pids[i])
				continue
			}
			// Absent while the process lives: no IPv6 (tcp6, udp6,
			// sockstat6), which leaves the member out.
			if !isGone(err) {
				s.fileError(dir+"net/"+name, err)
			}
			break
		}
	}
	if i == len(pids) {
		return 0
	}
	return pids[i]
}

// owners adds the sockets among pid's fds to owners.
func (m *sockets) owners(t *Target, s *Sink, pid int, owners map[string][]SocketOwner) {
	links, err := t.FDLinks(m.paths, pid)
	if err != nil {
		switch {
		case isGone(err):
			if !exists(filepath.Join(m.paths.Proc, strconv.Itoa(pid))) {
				s.Vanished(pid)
			}
		case errors.Is(err, fs.ErrPermission):
			s.Denied("proc/" + strconv.Itoa(pid) + "/fd")
		default:
			s.Problem("proc/%d/fd: %v", pid, err)
		}
		return
	}
	fds := make([]int, 0, len(links))
	for fd := range links {
		fds = append(fds, fd)
	}
	slices.Sort(fds)
	for _, fd := range fds {
		// "socket:[4242]": the inode that /proc/net/* lists.
		num, ok := bracketed(links[fd], "socket")
		if !ok {
			continue
		}
		owners[num] = append(owners[num], SocketOwner{Pid: pid, FD: fd})
	}
}

// isProcfs reports whether dir is a mounted procfs, where namespaces can
// be entered; a fixture tree is not.
func isProcfs(dir string) bool {
	var st unix.Statfs_t
	return unix.Statfs(dir, &st) == nil && st.Type == unix.PROC_SUPER_MAGIC
}

// addRows stores head, whose last field is an empty list, as compact
// JSON with that list filled with rows, one per line: greppable, and
// cheap for the thousands of sockets of a busy host, where indented JSON
// took a third of the module's time.
func addRows[T any](s *Sink, name string, head any, rows []T) error {
	h, err := json.Marshal(head)
	if err != nil {
		return err
	}
	if !bytes.HasSuffix(h, []byte("[]}")) {
		return fmt.Errorf("%s: %T does not end with an empty list", name, head)
	}
	return addLines(s, name, h[:len(h)-2], "]}", len(rows), func(i int) ([]byte, error) { return json.Marshal(rows[i]) })
}

// addOwners stores o like addRows, one socket per line, by inode.
func addOwners(s *Sink, name string, o SocketOwners) error {
	h, err := json.Marshal(SocketOwners{Version: o.Version, Owners: map[string][]SocketOwner{}})
	if err != nil {
		return err
	}
	keys := slices.SortedFunc(maps.Keys(o.Owners), func(a, b string) int {
		return cmp.Or(cmp.Compare(len(a), len(b)), strings.Compare(a, b)) // numerically
	})
	return addLines(s, name, h[:len(h)-2], "}}", len(keys), func(i int) ([]byte, error) {
		k, _ := json.Marshal(keys[i])
		v, err := json.Marshal(o.Owners[keys[i]])
		return append(append(k, ':'), v...), err
	})
}

// addLines stores open, then n elements separated by ",\n", then close.
func addLines(s *Sink, name string, open []byte, close string, n int, elem func(int) ([]byte, error)) error {
	b := bytes.NewBuffer(open)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
		e, err := elem(i)
		if err != nil {
			return err
		}
		b.Write(e)
	}
	b.WriteString("\n" + close + "\n")
	return s.Add(name, b.Bytes())
}
