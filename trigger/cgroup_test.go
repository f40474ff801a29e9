package trigger

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/dashcam-dev/dashcam/capture"
)

func fixtureGroup(t *testing.T, mode, spec string) *Group {
	t.Helper()
	root := filepath.Join("testdata", "fixtures")
	p := capture.Paths{Proc: filepath.Join(root, "proc"), Sys: filepath.Join(root, "sys"), Cgroup: filepath.Join(root, "cgroup", mode)}
	tg, err := capture.Resolve(p, capture.Spec{Cgroup: spec}, 0)
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewGroup(p, tg)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestGroupLimits(t *testing.T) {
	tests := []struct {
		mode, spec        string
		cpus              float64
		cpuSource         string
		memBytes          float64
		memSource         string
		usageNS           uint64
		periods, throttle uint64
	}{
		// payment.service: cpu.max 1 CPU under system.slice's 2 CPUs.
		{"v2", "/system.slice/payment.service", 1, "cpu.max of /system.slice/payment.service", 1 << 30, "memory.max of /system.slice/payment.service", 123456789000, 1000, 400},
		// nginx.service: cpu.max "max", so system.slice's 2 CPUs apply.
		{"v2", "/system.slice/nginx.service", 2, "cpu.max of /system.slice (2 CPUs)", 1 << 30, "memory.max", 123456789000, 1000, 400},
		// hybrid: usage from the unified tree, quota from v1 or v2, whichever is lower.
		{"hybrid", "/system.slice/payment.service", 1, "of /system.slice/payment.service", 1 << 30, "/system.slice/payment.service", 123456789000, 1000, 400},
		// v1 only: cpuacct.usage and cfs quota.
		{"v1", "/system.slice/payment.service", 1, "cpu.cfs_quota_us of /system.slice/payment.service", 1 << 30, "memory.limit_in_bytes", 123456789000, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.mode+tt.spec, func(t *testing.T) {
			g := fixtureGroup(t, tt.mode, tt.spec)
			if l := g.CPULimit(); l.Value != tt.cpus || !strings.Contains(l.Source, tt.cpuSource) {
				t.Errorf("CPULimit = %+v, want %v from %q", l, tt.cpus, tt.cpuSource)
			}
			if l := g.MemoryLimit(); l.Value != tt.memBytes || !strings.Contains(l.Source, tt.memSource) {
				t.Errorf("MemoryLimit = %+v, want %v from %q", l, tt.memBytes, tt.memSource)
			}
			if u, _, err := g.CPUUsage(); err != nil || u != tt.usageNS {
				t.Errorf("CPUUsage = %d, %v; want %d", u, err, tt.usageNS)
			}
			p, th, _, err := g.Throttling()
			if tt.periods > 0 && (err != nil || p != tt.periods || th != tt.throttle) {
				t.Errorf("Throttling = %d, %d, %v", p, th, err)
			}
		})
	}
}

func TestGroupCPULimitFallsBackToOnlineCPUs(t *testing.T) {
	g := fixtureGroup(t, "v2", "/init.scope")
	if l := g.CPULimit(); l.Value != 2 || l.Source != "online CPUs (2)" {
		t.Errorf("CPULimit = %+v, want the 2 online CPUs", l)
	}
}

func TestPressureFile(t *testing.T) {
	g := fixtureGroup(t, "hybrid", "/system.slice/payment.service")
	f, fallback := g.PressureFile("memory")
	if fallback || !strings.HasSuffix(f, "unified/system.slice/payment.service/memory.pressure") {
		t.Errorf("PressureFile(memory) = %s, %v", f, fallback)
	}
	f, fallback = g.PressureFile("io")
	if !fallback || !strings.HasSuffix(f, "proc/pressure/io") {
		t.Errorf("PressureFile(io) = %s, %v; want the /proc/pressure fallback", f, fallback)
	}
}
