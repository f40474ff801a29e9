package capture

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dashcam-dev/dashcam/bundle"
)

// TestHostNUMAFixture: every node directory's cpulist, meminfo and
// distance are copied raw, and nothing else under node/ is.
func TestHostNUMAFixture(t *testing.T) {
	out, rep := runFixture(t, ModeHybrid, Spec{}, "host")
	if m := rep.Modules[0]; m.Status != bundle.StatusOK {
		t.Fatalf("host module %s: %s %v", m.Status, m.Reason, m.Errors)
	}
	sys := fixtures(t, ModeHybrid).Sys
	for _, name := range []string{"online", "node0/cpulist", "node0/meminfo", "node0/distance"} {
		member := "sys/devices/system/node/" + name
		want, err := os.ReadFile(filepath.Join(sys, "devices/system/node", name))
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := out.files[member]; !ok || !bytes.Equal(got, want) {
			t.Errorf("%s = %q (present %v), want the source bytes %q", member, got, ok, want)
		}
	}
	if got := string(out.files["sys/devices/system/node/node0/cpulist"]); got != "0-1\n" {
		t.Errorf("node0 cpulist = %q", got)
	}
	if !strings.HasPrefix(string(out.files["sys/devices/system/node/node0/meminfo"]), "Node 0 MemTotal:        8000000 kB\n") {
		t.Errorf("node0 meminfo = %q", out.files["sys/devices/system/node/node0/meminfo"])
	}
}

// TestHostNUMALive: the live machine's node files are in the bundle, the
// same as the kernel shows them.
func TestHostNUMALive(t *testing.T) {
	p := DefaultPaths()
	if _, err := os.Stat("/sys/devices/system/node/node0"); err != nil {
		t.Skipf("no NUMA node directory (kernel without CONFIG_NUMA): %v", err)
	}
	out := newMemAdder()
	rep := Run(context.Background(), &Target{Mode: p.CgroupMode()}, out, RunOptions{Modules: []string{"host"}, Config: &Config{Paths: p}})
	if m := rep.Modules[0]; m.Status == bundle.StatusFailed || m.Status == bundle.StatusSkipped {
		t.Fatalf("host module %s: %s", m.Status, m.Reason)
	}
	for _, name := range []string{"cpulist", "meminfo"} {
		member := "sys/devices/system/node/node0/" + name
		live, err := os.ReadFile("/sys/devices/system/node/node0/" + name)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := out.files[member]
		if !ok {
			t.Errorf("%s missing", member)
			continue
		}
		// meminfo moves between two reads; its first field names the node.
		if name == "cpulist" && !bytes.Equal(got, live) || name == "meminfo" && !bytes.HasPrefix(got, []byte("Node 0 MemTotal:")) {
			t.Errorf("%s = %q, live %q", member, got, live)
		}
	}
	if os.Geteuid() == 0 { // else the kernel log is denied
		if m := rep.Modules[0]; m.Status != bundle.StatusOK {
			t.Errorf("host module as root: %s (%s)", m.Status, m.Reason)
		}
	}
}
