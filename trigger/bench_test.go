package trigger

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"golang.org/x/sys/unix"

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

// BenchmarkTriggerLatency measures, per trigger kind, the time from the
// condition becoming true to the capture starting (the arm's Capture
// call), through the real arm loop at its default 1 s interval:
//   - mem (polled): a process allocates 100 MiB at once in a cgroup whose
//     limit makes that 20%; the condition is true from the write that
//     releases it (--mem 10%, --for 0).
//   - oom (event-driven): `tail /dev/zero` under a 64 MiB limit; the
//     condition is the kill, timed by its kernel log record
//     (CLOCK_MONOTONIC, like the fire time read here).
func BenchmarkTriggerLatency(b *testing.B) {
	b.Run("mem", func(b *testing.B) {
		python, err := exec.LookPath("python3")
		if err != nil {
			testutil.SkipOrFail(b, "python3 not installed")
		}
		var total time.Duration
		for b.Loop() {
			cg := testutil.NewCgroup(b)
			if cg.Dir("memory") != "" {
				cg.Set(b, "memory", "memory.limit_in_bytes", "512M")
			} else {
				cg.Set(b, "unified", "memory.max", "512M")
			}
			cmd := exec.Command(python, "-c", "import sys, time\nsys.stdin.readline()\nsys.stdin.readline()\na = bytearray(100 << 20)\ntime.sleep(100)")
			w := testutil.StartIn(b, cg, cmd) // consumes the first line
			_, g := liveGroupTB(b, cg)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			var t0, fired time.Time
			go func() {
				time.Sleep(1500 * time.Millisecond) // a few samples below the threshold first
				t0 = time.Now()
				w.Write([]byte("go\n"))
			}()
			_ = Arm(ctx, Config{Group: g, Pollers: []Poller{NewMemory(10, 0, time.Second)},
				Capture: func(context.Context, Event, func() []*Sample) (string, error) {
					fired = time.Now()
					cancel()
					return "", nil
				}})
			cancel()
			if fired.IsZero() {
				b.Fatal("--mem 10% did not fire")
			}
			total += fired.Sub(t0)
		}
		b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms-latency")
	})
	b.Run("oom", func(b *testing.B) {
		var total time.Duration
		for b.Loop() {
			cg := testutil.NewCgroup(b)
			if cg.Dir("memory") != "" {
				cg.Set(b, "memory", "memory.limit_in_bytes", "64M")
			} else {
				cg.Set(b, "unified", "memory.max", "64M")
			}
			_, g := liveGroupTB(b, cg)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			var lag time.Duration
			go func() {
				time.Sleep(300 * time.Millisecond)
				testutil.StartIn(b, cg, exec.Command("/bin/sh", "-c", "read x; exec tail /dev/zero"))
			}()
			_ = Arm(ctx, Config{Group: g, Watchers: []Watcher{NewOOM(g, nil)},
				Capture: func(_ context.Context, ev Event, _ func() []*Sample) (string, error) {
					var now unix.Timespec
					_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &now)
					if v, ok := ev.Evidence["victim"].(OOMVictim); ok {
						lag = time.Duration(now.Nano()) - time.Duration(v.KmsgTimeUS)*time.Microsecond
					}
					cancel()
					return "", nil
				}})
			cancel()
			if lag == 0 {
				b.Fatal("--oom did not fire with a victim")
			}
			total += lag
		}
		b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms-latency")
	})
}
