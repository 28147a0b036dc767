package testenv

import (
	"path/filepath"
	"testing"

	"github.com/cairn-run/cairn/internal/inspect"
)

// AssertNoLeaks fails the test if anything of the environment is still on
// the machine: a mount under its root, a container cgroup, a shim or a
// container process. The one standby shim of a running daemon is not a leak.
func (e *Env) AssertNoLeaks(t testing.TB) {
	t.Helper()
	standbyDir := ""
	if e.Running() {
		standbyDir = filepath.Join(e.Config.Root, "exec")
	}
	for _, leak := range Leaks(e.Root, e.CgroupParent, standbyDir) {
		t.Errorf("leak: %s", leak)
	}
}

// Leaks lists what a Cairn on root with cgroupParent left on the machine.
// A shim waiting in standbyDir (a standby shim, which has no container yet)
// is not counted; pass "" to count it.
func Leaks(root, cgroupParent, standbyDir string) []string {
	return inspect.Leaks(root, cgroupParent, standbyDir)
}

// Scrub kills, unmounts and removes whatever Leaks finds, and the cgroup
// parent itself, reporting what it had to clean.
func Scrub(root, cgroupParent string) []string {
	return inspect.Scrub(root, cgroupParent)
}
