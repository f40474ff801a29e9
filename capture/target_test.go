package capture

import (
	"errors"
	"slices"
	"testing"
)

func TestCgroupModeDetection(t *testing.T) {
	for _, mode := range []string{ModeV1, ModeV2, ModeHybrid} {
		if got := fixtures(t, mode).CgroupMode(); got != mode {
			t.Errorf("fixture %s: CgroupMode() = %q", mode, got)
		}
	}
	p := fixtures(t, "v2")
	p.Cgroup = "testdata/does-not-exist"
	if got := p.CgroupMode(); got != ModeUnavailable {
		t.Errorf("missing root: CgroupMode() = %q, want %q", got, ModeUnavailable)
	}
}

func TestResolveCgroupEveryLayout(t *testing.T) {
	tests := []struct {
		mode        string
		hierarchies []string
		members     map[string]string
	}{
		{ModeV2, []string{"unified"}, map[string]string{
			"unified": "sys/fs/cgroup/system.slice/payment.service"}},
		{ModeV1, []string{"cpu,cpuacct", "memory", "pids", "systemd"}, map[string]string{
			"memory": "sys/fs/cgroup/memory/system.slice/payment.service"}},
		{ModeHybrid, []string{"unified", "cpu,cpuacct", "memory", "pids", "systemd"}, map[string]string{
			"unified": "sys/fs/cgroup/unified/system.slice/payment.service",
			"memory":  "sys/fs/cgroup/memory/system.slice/payment.service"}},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			tg, err := Resolve(fixtures(t, tt.mode), Spec{Cgroup: "system.slice/payment.service/"}, 0)
			if err != nil {
				t.Fatal(err)
			}
			if tg.Mode != tt.mode {
				t.Errorf("Mode = %q, want %q", tg.Mode, tt.mode)
			}
			var hs []string
			for _, c := range tg.Cgroups {
				hs = append(hs, c.Hierarchy)
				if c.Path != "/system.slice/payment.service" {
					t.Errorf("%s: Path = %q", c.Hierarchy, c.Path)
				}
				if want, ok := tt.members[c.Hierarchy]; ok && c.Member != want {
					t.Errorf("%s: Member = %q, want %q", c.Hierarchy, c.Member, want)
				}
				if c.Pids != 4 { // 100, 104, 105 and 102 in the workers sub-cgroup
					t.Errorf("%s: Pids = %d, want 4", c.Hierarchy, c.Pids)
				}
			}
			if !slices.Equal(hs, tt.hierarchies) {
				t.Errorf("hierarchies = %v, want %v", hs, tt.hierarchies)
			}
			// 103 is a zombie child of 100: not in cgroup.procs, found as a child.
			if want := []int{100, 102, 103, 104, 105}; !slices.Equal(tg.Pids, want) {
				t.Errorf("Pids = %v, want %v", tg.Pids, want)
			}
			if !slices.Equal(tg.Zombies, []int{103}) {
				t.Errorf("Zombies = %v, want [103]", tg.Zombies)
			}
		})
	}
}

func TestResolveUnit(t *testing.T) {
	for _, unit := range []string{"payment.service", "payment"} {
		tg, err := Resolve(fixtures(t, ModeHybrid), Spec{Unit: unit}, 0)
		if err != nil {
			t.Fatalf("%s: %v", unit, err)
		}
		if tg.Cgroups[0].Path != "/system.slice/payment.service" {
			t.Errorf("%s: path %q", unit, tg.Cgroups[0].Path)
		}
		if tg.Spec.Kind() != "unit" {
			t.Errorf("kind %q", tg.Spec.Kind())
		}
	}
	_, err := Resolve(fixtures(t, ModeV2), Spec{Unit: "nope.service"}, 0)
	if !errors.Is(err, ErrTargetNotFound) {
		t.Errorf("unknown unit: err = %v, want ErrTargetNotFound", err)
	}
	_, err = Resolve(fixtures(t, ModeV2), Spec{Unit: "a/b"}, 0)
	if !errors.Is(err, ErrBadSpec) {
		t.Errorf("unit with slash: err = %v, want ErrBadSpec", err)
	}
}

func TestResolveExcludesSelf(t *testing.T) {
	tg, err := Resolve(fixtures(t, ModeV2), Spec{Cgroup: "/system.slice/payment.service"}, 104)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(tg.Pids, 104) || !slices.Equal(tg.Excluded, []int{104}) {
		t.Errorf("Pids = %v, Excluded = %v; want 104 excluded", tg.Pids, tg.Excluded)
	}
	if _, err := Resolve(fixtures(t, ModeV2), Spec{Pids: []int{104}}, 104); !errors.Is(err, ErrSelfTarget) {
		t.Errorf("--pid self: err = %v, want ErrSelfTarget", err)
	}
	host, err := Resolve(fixtures(t, ModeV2), Spec{}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(host.Pids, 1) {
		t.Errorf("host target contains self: %v", host.Pids)
	}
}

func TestResolvePids(t *testing.T) {
	tg, err := Resolve(fixtures(t, ModeHybrid), Spec{Pids: []int{200, 102}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{102, 200}; !slices.Equal(tg.Pids, want) {
		t.Errorf("Pids = %v, want %v", tg.Pids, want)
	}
	var unified []string
	for _, c := range tg.Cgroups {
		if c.Hierarchy == "unified" {
			unified = append(unified, c.Path)
		}
	}
	if want := []string{"/system.slice/payment.service/workers", "/system.slice/nginx.service"}; !slices.Equal(unified, want) {
		t.Errorf("unified cgroups = %v, want %v", unified, want)
	}
	if _, err := Resolve(fixtures(t, ModeHybrid), Spec{Pids: []int{999999}}, 0); !errors.Is(err, ErrTargetNotFound) {
		t.Errorf("missing pid: err = %v, want ErrTargetNotFound", err)
	}
}

func TestResolveErrors(t *testing.T) {
	for _, spec := range []Spec{{Cgroup: "/no/such/group"}, {Cgroup: "../../etc"}} {
		_, err := Resolve(fixtures(t, ModeHybrid), spec, 0)
		if !errors.Is(err, ErrTargetNotFound) && !errors.Is(err, ErrBadSpec) {
			t.Errorf("%+v: err = %v, want not found or bad spec", spec, err)
		}
	}
}

func TestParseStat(t *testing.T) {
	st, err := parseStat([]byte("42 (a (weird) comm) Z 7 42 42 0 -1 0 0 0 0 0 15 16 0 0 20 0 3 0 100 0 77 0\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := stat{Comm: "a (weird) comm", State: "Z", PPid: 7, UTime: 15, STime: 16, NumThreads: 3, RSSPages: 77}
	if st != want {
		t.Errorf("parseStat = %+v, want %+v", st, want)
	}
	for _, bad := range []string{"", "42 comm S 1", "42 (x) S 1 2"} {
		if _, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("parseStat(%q): no error", bad)
		}
	}
}

func TestFileName(t *testing.T) {
	when := mustTime(t, "2026-11-28T23:54:46Z")
	tests := []struct {
		spec Spec
		want string
	}{
		{Spec{}, "dashcam-web1-host-20261128T235446Z-manual.tar.zst"},
		{Spec{Unit: "payment.service"}, "dashcam-web1-payment.service-20261128T235446Z-manual.tar.zst"},
		{Spec{Cgroup: "/system.slice/a b.service"}, "dashcam-web1-system.slice-a_b.service-20261128T235446Z-manual.tar.zst"},
		{Spec{Pids: []int{1, 2}}, "dashcam-web1-pid-1-2-20261128T235446Z-manual.tar.zst"},
	}
	for _, tt := range tests {
		if got := FileName("web1", tt.spec, when, "manual"); got != tt.want {
			t.Errorf("FileName(%+v) = %q, want %q", tt.spec, got, tt.want)
		}
	}
}
