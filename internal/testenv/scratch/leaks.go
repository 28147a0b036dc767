package scratch

import (
	"path/filepath"
	"testing"

	"github.com/cairn-run/cairn/internal/testenv"
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
	for _, leak := range testenv.Leaks(e.Root, e.CgroupParent, standbyDir) {
		t.Errorf("leak: %s", leak)
	}
}
