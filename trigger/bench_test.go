package trigger

import (
	"os/exec"
	"testing"
	"time"

	"github.com/dashcam-dev/dashcam/internal/testutil"
)

// BenchmarkSample measures one sample of an armed loop on a cgroup of 1000
// sleeping processes: the cgroup counters (every interval) and the process
// sampler with and without fd counts (every 10 s, or 1 min with only
// event-driven triggers). Their cost is the armed process's overhead.
func BenchmarkSample(b *testing.B) {
	cg := testutil.NewCgroup(b)
	// One shell in the cgroup starts the sleepers, which inherit it.
	testutil.StartIn(b, cg, exec.Command("/bin/sh", "-c", "read x; for i in $(seq 1000); do sleep 100000 & done; wait"))
	deadline := time.Now().Add(30 * time.Second)
	for {
		if pids, _ := cg.Procs(); len(pids) > 1000 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	_, g := liveGroupTB(b, cg)
	b.Run("cgroup", func(b *testing.B) {
		s := NewSampler(g)
		for b.Loop() {
			s.Sample(time.Now())
		}
	})
	for _, fds := range []bool{false, true} {
		name := "procs"
		if fds {
			name = "procs+fds"
		}
		b.Run(name, func(b *testing.B) {
			p := NewProcSampler(g, 0)
			p.FDs = fds
			for b.Loop() {
				if n := len(p.Sample(time.Now())); n < 1000 {
					b.Fatalf("sampled %d processes", n)
				}
			}
		})
	}
}
