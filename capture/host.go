package capture

import (
	"context"
	"os"
	"path/filepath"
	"sort"
)

func init() {
	register("host", true, func(c *Config) Module { return &host{paths: c.Paths} })
}

// host copies machine-wide state: load, memory, CPU and pressure.
type host struct{ paths Paths }

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
	// /proc/pressure appeared in Linux 4.20 (CONFIG_PSI) and may be
	// disabled at boot (psi=0); irq pressure needs CONFIG_IRQ_TIME_ACCOUNTING.
	entries, err := os.ReadDir(filepath.Join(m.paths.Proc, "pressure"))
	if err != nil {
		s.Problem("proc/pressure: PSI not available (needs Linux 4.20+ with CONFIG_PSI; boot with psi=1): %v", err)
		return ctx.Err()
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	for _, e := range entries {
		_, _ = s.Copy("proc/pressure/"+e.Name(), filepath.Join(m.paths.Proc, "pressure", e.Name()))
	}
	return ctx.Err()
}
