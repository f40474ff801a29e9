package capture

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

func init() {
	register("host", true, func(c *Config) Module {
		return &host{paths: c.Paths, kmsgRecords: c.KmsgRecords}
	})
}

// host copies machine-wide state: load, memory, CPU and pressure, the
// NUMA topology and the tail of the kernel log (kmsg.go).
type host struct {
	paths       Paths
	kmsgRecords int
}

// hostFiles are copied from the proc root as they are.
var hostFiles = []string{
	"loadavg", "meminfo", "vmstat", "stat", "uptime", "version",
	"sys/kernel/random/boot_id", "sys/kernel/pid_max", "sys/kernel/threads-max",
}

// sysFiles are copied from the sys root.
var sysFiles = []string{
	"devices/system/cpu/online", "devices/system/cpu/possible",
	"devices/system/node/online",
}

// nodeFiles are copied from each /sys/devices/system/node/node<N>/: the
// node's CPUs ("0-3,8-11"), its memory ("Node 0 MemTotal: 16303428 kB")
// and its distance to every node ("10 21").
var nodeFiles = []string{"cpulist", "meminfo", "distance"}

func (m *host) Run(ctx context.Context, _ *Target, s *Sink) error {
	for _, name := range hostFiles {
		if _, err := s.Copy("proc/"+name, filepath.Join(m.paths.Proc, name)); isGone(err) {
			s.Problem("proc/%s: not provided by this kernel", name)
		}
	}
	for _, name := range sysFiles {
		// Absent on kernels without CPU hotplug or NUMA: nothing to note.
		_, _ = s.Copy("sys/"+name, filepath.Join(m.paths.Sys, name))
	}
	m.numa(s)
	m.kernelLog(ctx, s)
	m.pressure(s)
	return ctx.Err()
}

// numa copies the files of every NUMA node. Without CONFIG_NUMA there is
// no node directory, and nothing to note: the machine is one node.
func (m *host) numa(s *Sink) {
	dir := filepath.Join(m.paths.Sys, "devices/system/node")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		node := e.Name()
		if !strings.HasPrefix(node, "node") || strings.Trim(node[4:], "0123456789") != "" || len(node) == 4 {
			continue
		}
		for _, name := range nodeFiles {
			_, _ = s.Copy("sys/devices/system/node/"+node+"/"+name, filepath.Join(dir, node, name))
		}
	}
}

// pressure copies /proc/pressure/*. It appeared in Linux 4.20
// (CONFIG_PSI) and may be disabled at boot (psi=0); irq pressure needs
// CONFIG_IRQ_TIME_ACCOUNTING.
func (m *host) pressure(s *Sink) {
	entries, err := os.ReadDir(filepath.Join(m.paths.Proc, "pressure"))
	if err != nil {
		s.Problem("proc/pressure: PSI not available (needs Linux 4.20+ with CONFIG_PSI; boot with psi=1): %v", err)
		return
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	for _, e := range entries {
		_, _ = s.Copy("proc/pressure/"+e.Name(), filepath.Join(m.paths.Proc, "pressure", e.Name()))
	}
}
