package executor

import (
	"os"
	"path/filepath"
	"strconv"

	"github.com/opencontainers/cgroups"
)

// Moving a process between cgroups takes a global lock whose first writer
// after a quiet period waits for an RCU grace period: on this kind of
// machine 5-20 ms, the largest single cost of a container start, paid when
// libcontainer puts the new init into its cgroups. WarmUp starts that
// wait early, in the background, by "moving" the daemon into the cgroup
// it is already in (a no-op migration that takes the same lock), so the
// wait overlaps the intent's fsync and the rootfs mount instead of
// following them.

// selfFreezerProcs is the cgroup.procs file of this process's own freezer
// cgroup, or "" when it cannot be found.
func (m cgroupMounts) selfFreezerProcs() string {
	if m.freezer == "" {
		return ""
	}
	paths, err := cgroups.ParseCgroupFile("/proc/self/cgroup")
	if err != nil || paths["freezer"] == "" {
		return ""
	}
	return filepath.Join(m.freezer, paths["freezer"], "cgroup.procs")
}

// WarmUp starts, in the background, the slow kernel work the next Start
// will need; calling it shortly before Start (the daemon does, as a create
// or start transition begins) makes the start faster.
func (e *Executor) WarmUp() {
	if e.selfProcs == "" {
		return
	}
	go func() {
		// Best effort: failing only loses the head start.
		_ = os.WriteFile(e.selfProcs, []byte(strconv.Itoa(os.Getpid())), 0)
	}()
}
