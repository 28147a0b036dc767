package recovery

import (
	"context"

	"github.com/cairn-run/cairn/executor"
	"github.com/cairn-run/cairn/layer"
	sm "github.com/cairn-run/cairn/statemachine"
)

// Journal records decisions and serves the view to recover.
type Journal interface {
	Append(rec sm.Record) (sm.Record, error)
	Container(id string) (sm.Container, bool)
	Containers() []sm.Container
}

// Runtime is the part of the executor recovery observes and cleans with.
type Runtime interface {
	Observe(id string, p executor.Process) executor.Observation
	Discover(ctx context.Context, id string) (executor.Process, bool)
	Pause(id string) error
	Cleanup(id string, p executor.Process) error
	Remove(id string) error
	IDs() ([]string, error)
}

// Layers is the part of the layer store recovery observes and cleans with.
type Layers interface {
	MountInfo(mountID string) (layer.Mount, error)
	Mounted(mountID string) (bool, error)
	Mounts() ([]layer.Mount, error)
	MountedIDs() (map[string]bool, error)
	CreateMount(ctx context.Context, mountID, image string, init layer.InitConfig) (layer.Mount, error)
	Unmount(mountID string) error
	RemoveMount(mountID string) error
}

// Lifecycle is the driver: it watches reattached processes and removes
// auto-remove containers.
type Lifecycle interface {
	Reattach(containers []sm.Container)
	Remove(ctx context.Context, id string, force bool) (sm.Container, error)
}
