package redact

import (
	"strings"
	"testing"
	"time"

	"github.com/dashcam-dev/dashcam/internal/testutil"
)

// crafted are inputs shaped to make a careless scanner quadratic. The
// target process chooses its own command line and environment, so such a
// process must not be able to stall a capture.
var crafted = []string{
	"password=", "x&password=1", `"password":"`, "a://b:c@", "p:w@tcp(h) ",
	"Bearer ", "<redacted>password=1 ", "docker login -p x ", "mysql -px ",
	"AKIAIOSFODNN7EXAMPLE ", "a ", "; ", "X-Api-Key: a\t", "sqlplus a/b@c ",
}

// TestLinearTime redacts each crafted input at 32 KiB and at 256 KiB
// (a single argument may be 128 KiB, /proc/<pid>/cmdline a few MiB). Work
// linear in the size grows about 8 times, quadratic work 64 times, which
// at 256 KiB takes many seconds. The best of two runs per size, and a
// wide margin, keep a busy machine from failing the test.
func TestLinearTime(t *testing.T) {
	testutil.SkipInShort(t)
	for _, p := range crafted {
		var took [2]time.Duration
		for i, n := range [2]int{32 << 10, 256 << 10} {
			in := []byte(strings.Repeat(p, n/len(p)))
			for range 2 {
				start := time.Now()
				Cmdline(in)
				Environ(in)
				if d := time.Since(start); took[i] == 0 || d < took[i] {
					took[i] = d
				}
			}
		}
		ratio := float64(took[1]) / float64(took[0])
		t.Logf("%-24q 32 KiB %v, 256 KiB %v (×%.1f)", p, took[0], took[1], ratio)
		if took[1] > 3*time.Second && ratio > 40 {
			t.Errorf("%q: 256 KiB took %v, %.0f times 32 KiB: not linear", p, took[1], ratio)
		}
	}
}

// BenchmarkCmdline measures a typical Java command line with two secrets.
func BenchmarkCmdline(b *testing.B) {
	raw := []byte(strings.Join([]string{
		"/usr/lib/jvm/java-17/bin/java", "-Xmx2g", "-XX:+UseG1GC",
		"-Djavax.net.ssl.keyStorePassword=changeit", "-Dfile.encoding=UTF-8",
		"-cp", strings.Repeat("/opt/app/lib/some-library-1.2.3.jar:", 40),
		"com.example.Main", "--spring.datasource.url=jdbc:postgresql://app:pw@db:5432/shop",
		"--server.port=8080", "--logging.level.root=INFO",
	}, "\x00") + "\x00")
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		Cmdline(raw)
	}
}

// BenchmarkCmdlineClean measures a command line with nothing to redact,
// the common case.
func BenchmarkCmdlineClean(b *testing.B) {
	raw := []byte("/usr/sbin/nginx\x00-g\x00daemon off;\x00-c\x00/etc/nginx/nginx.conf\x00")
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		Cmdline(raw)
	}
}
