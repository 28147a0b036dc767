package inspect_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/cairn-run/cairn/internal/inspect"
	"github.com/cairn-run/cairn/internal/testenv"
)

func TestReadStat_SelfIsAliveAndGoneIsNot(t *testing.T) {
	st, err := inspect.ReadStat(os.Getpid())
	if err != nil || st.Dead() || st.PPID != os.Getppid() {
		t.Fatalf("self: %+v %v", st, err)
	}
	if !inspect.Alive(os.Getpid(), st.StartTime) || inspect.Alive(os.Getpid(), st.StartTime+1) {
		t.Fatal("Alive does not tell the recorded process from a pid reuse")
	}
	if !inspect.IsZombie(0) || inspect.IsZombie(os.Getpid()) {
		t.Fatal("IsZombie")
	}
}

// fakeShim runs a process whose command line names root, as a shim's does.
func fakeShim(t *testing.T, root string) *exec.Cmd {
	t.Helper()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep binary")
	}
	cmd := exec.Command(sleep, "60")
	cmd.Args[0] = root + "/fake-shim"
	cmd.Dir = root
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

func TestLeaksAndScrub_FindAndKillTheProcessesOfARoot(t *testing.T) {
	root := t.TempDir()
	cmd := fakeShim(t, root)
	parent := "cairn-inspect-test-none" // no such cgroup: only the command line finds it

	if got := inspect.ProcessesOf(root, parent); !slices.Contains(got, cmd.Process.Pid) {
		t.Fatalf("ProcessesOf = %v, want %d", got, cmd.Process.Pid)
	}
	if got := inspect.Cwd(cmd.Process.Pid); got != root {
		t.Fatalf("Cwd = %q, want %q", got, root)
	}
	if leaks := inspect.Leaks(root, parent, root); len(leaks) != 0 {
		t.Fatalf("a process waiting in the standby directory counted: %v", leaks)
	}
	leaks := inspect.Leaks(root, parent, "")
	if len(leaks) != 1 || !strings.Contains(leaks[0], "fake-shim") {
		t.Fatalf("Leaks = %v", leaks)
	}
	if scrubbed := inspect.Scrub(root, parent); len(scrubbed) != 1 {
		t.Fatalf("Scrub reported %v", scrubbed)
	}
	if got := inspect.ProcessesOf(root, parent); len(got) != 0 {
		t.Fatalf("left after Scrub: %v", got)
	}
}

func TestScrub_RefusesRootsThatNameTooMuch(t *testing.T) {
	for _, tc := range []struct{ root, parent string }{{"/", "p"}, {"relative", "p"}, {"/tmp/x", ""}, {"/tmp/x", "/"}} {
		out := inspect.Scrub(tc.root, tc.parent)
		if len(out) != 1 || !strings.Contains(out[0], "refusing") {
			t.Errorf("Scrub(%q, %q) = %v", tc.root, tc.parent, out)
		}
	}
}

func TestMountsUnderAndScrub_UnmountWhatIsBelowTheRoot(t *testing.T) {
	testenv.RequireRoot(t)
	root := t.TempDir()
	dir := filepath.Join(root, "a", "merged")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	// mountinfo spells a space "\040": the paths must come back as they are.
	spaced := filepath.Join(root, "with space", "merged")
	if err := os.MkdirAll(spaced, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", spaced, "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(spaced, unix.MNT_DETACH) })
	if got := inspect.MountsUnder(root); !slices.Equal(got, []string{dir, spaced}) {
		t.Fatalf("MountsUnder = %q, want [%s %s]", got, dir, spaced)
	}
	if got := inspect.MountsUnder(dir); len(got) != 0 {
		t.Fatalf("the root itself is not below it: %v", got)
	}
	inspect.Scrub(root, "cairn-inspect-test-none")
	if got := inspect.MountsUnder(root); len(got) != 0 {
		t.Fatalf("left after Scrub: %v", got)
	}
}

func TestCgroupDirsAndOwner(t *testing.T) {
	testenv.RequireRoot(t)
	parent := "cairn-inspect-test-" + strconv.Itoa(os.Getpid())
	dir := filepath.Join(inspect.CgroupRoot, "freezer", parent, "c1")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Skipf("no freezer hierarchy to write: %v", err)
	}
	t.Cleanup(func() { inspect.Scrub(t.TempDir(), parent) })
	if got := inspect.CgroupDirs(parent); !slices.Contains(got, dir) {
		t.Fatalf("CgroupDirs = %v, want %s", got, dir)
	}
	if id, ok := inspect.CgroupOwner(parent, filepath.Join(dir, "sub")); !ok || id != "c1" {
		t.Fatalf("CgroupOwner = %q %v", id, ok)
	}
	if _, ok := inspect.CgroupOwner(parent, filepath.Join(inspect.CgroupRoot, "freezer", parent)); ok {
		t.Fatal("the parent itself has an owner")
	}
	if state, err := inspect.FreezerState(parent, "c1"); err != nil || state != "THAWED" {
		t.Fatalf("FreezerState = %q %v", state, err)
	}
	inspect.Scrub(t.TempDir(), parent)
	for _, h := range inspect.Hierarchies() {
		if _, err := os.Stat(filepath.Join(h, parent)); err == nil {
			t.Errorf("Scrub left %s", filepath.Join(h, parent))
		}
	}
}

func TestCgroupOf_ReadsTheControllersLine(t *testing.T) {
	if _, err := os.Stat(filepath.Join(inspect.CgroupRoot, "freezer")); err != nil {
		t.Skip("no cgroup v1 freezer hierarchy")
	}
	got := inspect.CgroupOf(os.Getpid(), "freezer")
	if !strings.HasPrefix(got, "/") {
		t.Fatalf("CgroupOf(self, freezer) = %q, want a path", got)
	}
	if procs := inspect.CgroupProcs(filepath.Join(inspect.CgroupRoot, "freezer", got)); !slices.Contains(procs, os.Getpid()) {
		t.Fatalf("CgroupOf(self, freezer) = %q, whose cgroup.procs does not list us: %v", got, procs)
	}
	if got := inspect.CgroupOf(os.Getpid(), "no-such-controller"); got != "" {
		t.Fatalf("CgroupOf(self, no-such-controller) = %q", got)
	}
}
