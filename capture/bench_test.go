package capture

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/dashcam-dev/dashcam/bundle"
	"github.com/dashcam-dev/dashcam/internal/testutil"
)

// benchTarget starts n sleeping processes in a fresh cgroup.
func benchTarget(b *testing.B, n int) *Target {
	b.Helper()
	cg := testutil.NewCgroup(b)
	for range n {
		testutil.StartIn(b, cg, exec.Command("/bin/sh", "-c", "read x; exec sleep 1000"))
	}
	tg, err := Resolve(DefaultPaths(), Spec{Cgroup: cg.Path}, os.Getpid())
	if err != nil {
		b.Fatal(err)
	}
	if len(tg.Pids) != n {
		b.Fatalf("resolved %d pids, want %d", len(tg.Pids), n)
	}
	return tg
}

// BenchmarkCapture200 compares, on the same 200 processes:
//   - raw-read: the lower bound, a plain loop that reads the files the
//     procs module copies and throws them away;
//   - modules: the procs, cgroup and host modules into memory;
//   - bundle: the whole capture, compressed and committed to disk.
func BenchmarkCapture200(b *testing.B) {
	tg := benchTarget(b, 200)
	dir := b.TempDir()

	b.Run("raw-read", func(b *testing.B) {
		for b.Loop() {
			for _, pid := range tg.Pids {
				rawReadProcess(pid)
			}
		}
	})
	b.Run("modules", func(b *testing.B) {
		for b.Loop() {
			Run(context.Background(), tg, newMemAdder(), RunOptions{Modules: DefaultModules()})
		}
	})
	b.Run("bundle", func(b *testing.B) {
		var size, raw int64
		for b.Loop() {
			res, err := Capture(context.Background(), Options{
				Config: Config{Paths: DefaultPaths()}, Target: tg, OutDir: dir,
				Modules: DefaultModules(), Trigger: bundle.Trigger{Kind: "manual"},
			})
			if err != nil {
				b.Fatal(err)
			}
			fi, _ := os.Stat(res.Path)
			size, raw = fi.Size(), 0
			for _, m := range res.Manifest.Members {
				raw += m.Size
			}
			os.Remove(res.Path)
		}
		b.ReportMetric(float64(size), "bundle-bytes")
		b.ReportMetric(float64(raw), "raw-bytes")
	})
}

// rawReadProcess reads what the procs module reads for one process.
func rawReadProcess(pid int) {
	dir := filepath.Join("/proc", strconv.Itoa(pid))
	for _, name := range append([]string{"stat", "cmdline"}, procFiles...) {
		_, _ = os.ReadFile(filepath.Join(dir, name))
	}
	tasks, _ := os.ReadDir(filepath.Join(dir, "task"))
	for _, t := range tasks {
		_, _ = os.ReadFile(filepath.Join(dir, "task", t.Name(), "stat"))
	}
}

func BenchmarkResolve(b *testing.B) {
	tg := benchTarget(b, 200)
	for b.Loop() {
		if _, err := Resolve(DefaultPaths(), tg.Spec, os.Getpid()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFixtureCapture(b *testing.B) {
	p := fixtures(b, ModeHybrid)
	tg, err := Resolve(p, Spec{Unit: "payment"}, 0)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		Run(context.Background(), tg, newMemAdder(), RunOptions{Modules: DefaultModules(), Config: &Config{Paths: p}})
	}
}
