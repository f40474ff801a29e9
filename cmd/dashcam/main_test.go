package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/dashcam-dev/dashcam/internal/testutil"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"dashcam": func() { main() },
	})
}

// TestScripts runs the CLI scripts in testdata/script. $FIXTURES is the
// shared fake /proc, /sys and cgroup tree; [root] guards live captures,
// and under CI=true a script that needs root fails if it is not root.
func TestScripts(t *testing.T) {
	fixtures, err := filepath.Abs("testdata/fixtures")
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Setup: func(e *testscript.Env) error {
			e.Setenv("FIXTURES", fixtures)
			return nil
		},
		Condition: func(cond string) (bool, error) {
			switch cond {
			case "root":
				if os.Geteuid() != 0 && testutil.Strict() {
					t.Errorf("script needs root, and CI=true forbids skipping it")
				}
				return os.Geteuid() == 0, nil
			}
			return false, nil
		},
	})
}

// TestExitCodes checks the documented exit codes.
func TestExitCodes(t *testing.T) {
	fixtureFlags := []string{"--path.procfs", "testdata/fixtures/proc", "--path.sysfs", "testdata/fixtures/sys",
		"--path.cgroupfs", "testdata/fixtures/cgroup/hybrid", "-o", t.TempDir(), "-q"}
	garbage := filepath.Join(t.TempDir(), "garbage.tar.zst")
	os.WriteFile(garbage, []byte("not a bundle"), 0o600)
	tests := []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{}, exitUsage, "Commands:"},
		{[]string{"--help"}, exitOK, ""},
		{[]string{"help"}, exitOK, ""},
		{[]string{"help", "capture"}, exitOK, ""},
		{[]string{"capture", "-h"}, exitOK, ""},
		{[]string{"analyze", "--help"}, exitOK, ""},
		{[]string{"version"}, exitOK, ""},
		{[]string{"frobnicate"}, exitUsage, `dashcam: error: unknown command "frobnicate"`},
		{[]string{"help", "frobnicate"}, exitUsage, "dashcam: error: unknown command"},
		{[]string{"capture", "--bogus"}, exitUsage, "dashcam: error: unknown flag: --bogus"},
		{[]string{"capture", "--pid", "abc"}, exitUsage, "dashcam: error: invalid argument"},
		{[]string{"capture", "--unit", "a", "--pid", "1"}, exitUsage, "mutually exclusive"},
		{[]string{"capture", "--modules", "nope"}, exitUsage, `unknown module "nope"`},
		{[]string{"capture", "--timeout", "-1s"}, exitUsage, "--timeout must be positive"},
		{[]string{"capture", "-o", "/does/not/exist"}, exitUsage, "cannot create output directory /does/not/exist"},
		{append([]string{"capture", "--unit", "nope"}, fixtureFlags...), exitUsage, "dashcam: hint: list units"},
		{append([]string{"capture", "--cgroup", "/no/such"}, fixtureFlags...), exitUsage, "target not found"},
		{append([]string{"capture", "--pid", "99999999"}, fixtureFlags...), exitUsage, "no such process"},
		{append([]string{"capture", "--unit", "payment"}, fixtureFlags...), exitOK, ""},
		{[]string{"analyze"}, exitUsage, "analyze needs exactly one bundle"},
		{[]string{"analyze", "--format", "yaml", "x"}, exitUsage, `unknown --format "yaml"`},
		{[]string{"analyze", "/does/not/exist.tar.zst"}, exitFailed, "dashcam: error:"},
		{[]string{"analyze", garbage}, exitFailed, "not a dashcam bundle"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tt.args, &stdout, &stderr)
			if code != tt.code {
				t.Errorf("exit code %d, want %d\nstderr: %s", code, tt.code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("stderr %q does not contain %q", stderr.String(), tt.stderr)
			}
			if strings.Contains(stderr.String(), "panic") {
				t.Errorf("panic: %s", stderr.String())
			}
		})
	}
}
