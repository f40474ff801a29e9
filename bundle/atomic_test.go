package bundle

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dashcam-dev/dashcam/internal/testutil"
)

// childCommitEnv makes the test binary act as a capture that commits a
// large bundle into the directory it names; see TestCommitKilled.
const childCommitEnv = "DASHCAM_BUNDLE_TEST_COMMIT_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(childCommitEnv); dir != "" {
		if err := childCommit(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// childCommit spools 256 MiB of incompressible data, says "committing" on
// stdout, and commits, which takes long enough to be killed half-way.
func childCommit(dir string) error {
	w, err := Create(dir)
	if err != nil {
		return err
	}
	rng := rand.NewChaCha8([32]byte{1})
	buf := make([]byte, 1<<20)
	for i := range 256 {
		rng.Read(buf)
		if err := w.Add(fmt.Sprintf("proc/%d/smaps", i), buf); err != nil {
			return err
		}
	}
	fmt.Println("committing")
	if _, err := w.Commit(testManifest(), "big.tar.zst"); err != nil {
		return err
	}
	fmt.Println("committed")
	return nil
}

// A capture SIGKILLed in the middle of Commit leaves no file that looks
// like a bundle. It does leave the hidden temp file .big.tar.zst.tmp-*
// (the spool is unlinked from the start, so it leaves nothing): the
// directory may hold such dot files after a crash, never a *.tar.zst.
func TestCommitKilled(t *testing.T) {
	testutil.SkipInShort(t)
	for _, killAt := range []int64{1 << 20, 64 << 20} {
		t.Run(fmt.Sprintf("after %d MiB", killAt>>20), func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), childCommitEnv+"="+dir)
			cmd.Stderr = os.Stderr
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			lines := bufio.NewScanner(out)
			if !lines.Scan() || lines.Text() != "committing" {
				t.Fatalf("child said %q, %v", lines.Text(), cmd.Wait())
			}
			tmp := waitForTemp(t, dir, killAt)
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			err = cmd.Wait()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("child was not killed mid-commit (%v); make its bundle bigger", err)
			}
			assertNoBundle(t, dir, false)
			if names := listDir(t, dir); len(names) != 1 || names[0] != filepath.Base(tmp) {
				t.Errorf("dir holds %q, want only the temp file %s", names, filepath.Base(tmp))
			}
		})
	}
}

// waitForTemp polls dir until the commit's temp file holds at least size
// bytes, and returns its path.
func waitForTemp(t *testing.T, dir string, size int64) string {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		matches, _ := filepath.Glob(filepath.Join(dir, ".big.tar.zst.tmp-*"))
		for _, m := range matches {
			if st, err := os.Stat(m); err == nil && st.Size() >= size {
				return m
			}
		}
		time.Sleep(200 * time.Microsecond)
	}
	t.Fatalf("no temp file of %d bytes in %s after a minute", size, dir)
	return ""
}

// On a full disk Commit fails with ENOSPC and leaves the directory as it
// found it: no bundle, no temp file, no spool, no space used.
func TestCommitDiskFull(t *testing.T) {
	testutil.RequireRoot(t)
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=256k,mode=0700"); err != nil {
		testutil.SkipOrFail(t, fmt.Sprintf("mount tmpfs on %s: %v", dir, err))
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
			syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
	free := func() uint64 {
		var st syscall.Statfs_t
		if err := syscall.Statfs(dir, &st); err != nil {
			t.Fatal(err)
		}
		return st.Bfree
	}
	empty := free()
	noise := make([]byte, 160<<10) // incompressible: the bundle is as big as the spool
	rand.NewChaCha8([32]byte{2}).Read(noise)

	// A failed Add records nothing, and the writer stays usable.
	w, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Add("huge", make([]byte, 300<<10)); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("Add beyond the disk = %v, want ENOSPC", err)
	}
	if w.Has("huge") || w.Len() != 0 || w.Bytes() != 0 {
		t.Error("failed Add was recorded")
	}

	// The spool fits; the spool plus the bundle does not.
	if err := w.Add("proc/1/smaps", noise); err != nil {
		t.Fatal(err)
	}
	path, err := w.Commit(testManifest(), "full.tar.zst")
	if err == nil {
		t.Fatalf("Commit on a full disk wrote %s", path)
	}
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "no space left on device") {
		t.Errorf("Commit error %q does not say the disk is full", err)
	}
	t.Log(err)
	assertNoBundle(t, dir, true)
	if got := free(); got != empty {
		t.Errorf("%d free blocks after the failed commit, %d before", got, empty)
	}

	// With the space back, the same data commits.
	w, err = Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Add("proc/1/smaps", noise[:64<<10]); err != nil {
		t.Fatal(err)
	}
	if path, err = w.Commit(testManifest(), "fits.tar.zst"); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path); err != nil {
		t.Fatal(err)
	}
}
