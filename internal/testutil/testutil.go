// Package testutil holds helpers shared by dashcam's tests: privilege checks
// that turn into failures under CI, so CI can never go green by skipping.
package testutil

import (
	"os"
	"testing"
)

// Strict reports whether skips of privileged tests must fail instead:
// under CI (CI=true) or when DASHCAM_TEST_PRIVILEGED=1.
func Strict() bool {
	return os.Getenv("CI") == "true" || os.Getenv("DASHCAM_TEST_PRIVILEGED") == "1"
}

// SkipOrFail skips the test with reason, or fails it when Strict.
func SkipOrFail(t testing.TB, reason string) {
	t.Helper()
	if Strict() {
		t.Fatalf("cannot run privileged test (CI=true or DASHCAM_TEST_PRIVILEGED=1 forbids skipping): %s", reason)
	}
	t.Skip(reason)
}

// RequireRoot skips (or fails, when Strict) unless the test runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		SkipOrFail(t, "needs root (euid is not 0)")
	}
}

// SkipInShort skips long tests under go test -short. It never fails: -short
// is an explicit request, and CI does not pass it.
func SkipInShort(t testing.TB) {
	t.Helper()
	if testing.Short() {
		if Strict() {
			t.Fatal("-short given under CI=true: privileged and long tests must run")
		}
		t.Skip("long test; skipped under -short")
	}
}
