package recovery

import (
	"context"

	sm "github.com/cairn-run/cairn/statemachine"
)

// Recovery reaches the machine only through these ports, in the state
// machine's types; the daemon's adapters convert from the executor's and
// the layer store's, so recovery (and its pure decision table) links
// neither.

// Journal records decisions and serves the view to recover.
type Journal interface {
	Append(rec sm.Record) (sm.Record, error)
	Container(id string) (sm.Container, bool)
	Containers() []sm.Container
}

// Observation is what the runtime shows of a container's run.
type Observation struct {
	ShimAlive    bool
	ProcessAlive bool
	// Exit is the shim's exit record of the process, if it wrote one.
	Exit *sm.Exit
	// Freezer is the state of the container's freezer cgroup.
	Freezer Freezer
	// StateDirExists: the runtime's state of a run is still on disk.
	StateDirExists bool
}

// Runtime is the part of the executor recovery observes and cleans with.
type Runtime interface {
	// Observe reports what the machine shows of container id's process p
	// (p may be the zero Process: then only the cgroup and state).
	Observe(id string, p sm.Process) Observation
	// Discover finds the process of an unfinished start from what its
	// shim left; ok is false when no start got as far as a shim.
	Discover(ctx context.Context, id string) (p sm.Process, ok bool)
	// StartTime is the start time of the live process pid, 0 if none.
	StartTime(pid int) uint64
	// FinishFreeze completes a freeze of p that was cut off half-way.
	FinishFreeze(id string, p sm.Process) error
	Cleanup(id string, p sm.Process) error
	Remove(id string) error
	// IDs lists the containers that have anything of the runtime on disk.
	IDs() ([]string, error)
}

// Layers is the part of the layer store recovery observes and cleans with.
type Layers interface {
	// MountComplete: mount id is registered and all its directories exist.
	MountComplete(mountID string) (bool, error)
	Mounted(mountID string) (bool, error)
	// MountIDs lists the registered mounts.
	MountIDs() ([]string, error)
	// MountedIDs lists the mounts that are mounted now, registered or not.
	MountedIDs() (map[string]bool, error)
	CreateMount(ctx context.Context, mountID, image, hostname string) error
	Unmount(mountID string) error
	RemoveMount(mountID string) error
}

// Lifecycle is the driver: it watches reattached processes and removes
// auto-remove containers.
type Lifecycle interface {
	Reattach(containers []sm.Container)
	Remove(ctx context.Context, id string, force bool) (sm.Container, error)
}

// Restarter is the driver's restart policy: once every container is
// recovered, it decides, for each stopped one, whether it starts again
// (one that exited while cairnd was down, or was stopped by its shutdown,
// or whose policy restart was rolled back).
type Restarter interface {
	ResumeRestarts(containers []sm.Container, rebooted bool)
}
