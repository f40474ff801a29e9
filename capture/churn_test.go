package capture

import (
	"context"
	"os"
	"os/exec"
	"testing"

	"github.com/dashcam-dev/dashcam/bundle"
	"github.com/dashcam-dev/dashcam/internal/testutil"
)

// TestCaptureUnderChurn captures a cgroup in which processes and threads
// come and go all the time: a vanished process or thread is ordinary and
// must never fail a module or the bundle.
func TestCaptureUnderChurn(t *testing.T) {
	testutil.SkipInShort(t)
	cg := testutil.NewCgroup(t)
	for range 2 {
		testutil.StartIn(t, cg, exec.Command("/bin/sh", "-c", "read x; while :; do /bin/true & /bin/true; done"))
	}
	startHelper(t, cg, "thread-churn")
	vanished := 0
	for i := range 8 {
		tg, err := Resolve(DefaultPaths(), Spec{Cgroup: cg.Path}, os.Getpid())
		if err != nil {
			t.Fatalf("round %d: resolve: %v", i, err)
		}
		res, err := Capture(context.Background(), Options{
			Config: DefaultConfig(), Target: tg, OutDir: t.TempDir(),
			Modules: DefaultModules(), Trigger: bundle.Trigger{Kind: "manual"},
		})
		if err != nil {
			t.Fatalf("round %d: capture: %v", i, err)
		}
		b, err := bundle.Open(res.Path)
		if err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		vanished += b.Manifest.Counts.ProcessesVanished
		for _, m := range b.Manifest.Modules {
			if m.Status == bundle.StatusFailed || len(m.Errors) > 0 {
				t.Errorf("round %d: module %s: %s (%s) %v", i, m.Name, m.Status, m.Reason, m.Errors)
			}
		}
	}
	// The churn must really have raced the capture, or this test proves nothing.
	if vanished == 0 {
		t.Error("no process vanished during 8 captures: the churn did not race the capture")
	}
	t.Logf("%d processes vanished during 8 captures", vanished)
}
