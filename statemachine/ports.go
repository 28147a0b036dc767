package statemachine

import (
	"context"
	"syscall"
	"time"
)

// The driver reaches the world only through these interfaces; the daemon
// wires the journal, executor and layer store behind them.

// Journal records intents and outcomes durably and serves the view.
type Journal interface {
	Append(rec Record) (Record, error)
	// Commit appends recs and applies writes in one transaction: all of it
	// is durable when it returns, or none of it happened.
	Commit(recs []Record, writes ...Write) ([]Record, error)
	Container(id string) (Container, bool)
	IDByName(name string) (string, bool)
}

// RunSpec is what the runner needs to start a container's process.
type RunSpec struct {
	ID       string
	Rootfs   string
	Args     []string
	Env      []string
	Hostname string
	// Cwd is the process's working directory ("" is /), created if missing.
	Cwd string
	// User is the container's user spec ("" is root), which the runner
	// resolves through the container's /etc/passwd and /etc/group;
	// unknown is ErrInvalidArgument.
	User string
	// Mounts are the container's volumes, binds and tmpfs mounts, as its
	// create recorded them; the runner finds a volume's directory.
	Mounts []Mount
}

// Runner starts a container's process under its shim, waits for it and
// signals it, identifying it by PID and start time.
type Runner interface {
	Start(ctx context.Context, spec RunSpec) (Process, error)
	Wait(ctx context.Context, id string, p Process) (Exit, error)
	Signal(id string, p Process, sig syscall.Signal) error
}

// Warmer is optionally implemented by a Runner: Warm is called as a
// transition that will start a process begins, so that slow kernel work the
// start will need can get going while the intent is being written.
type Warmer interface {
	Warm()
}

// Freezer pauses and resumes every process of a container; p is its
// process as the journal knows it, which the freezer may use to find the
// container when its runtime state is lost.
type Freezer interface {
	Pause(id string, p Process) error
	Resume(id string, p Process) error
}

// Janitor removes what a run or a container leaves behind.
type Janitor interface {
	// Cleanup releases a finished run's runtime state; the log stays.
	Cleanup(id string, p Process) error
	// Remove deletes every runtime file of the container, log included.
	Remove(id string) error
}

// Layers owns a container's init and writable layers.
type Layers interface {
	// ResolveImage finds the image ref names (any spelling of a name, an
	// id or an id prefix) and reads its config: ErrNotFound if none.
	ResolveImage(ref string) (ImageInfo, error)
	// ClaimMount is the write that registers mount mountID on the image
	// with id imageID (checking that it exists), committed with a create's
	// intent.
	ClaimMount(mountID, imageID string) (Write, error)
	// BuildMount makes the init and writable layers of a claimed mount;
	// it finishes what an earlier call left.
	BuildMount(ctx context.Context, mountID, hostname string) error
	// DiscardMount deletes a mount's directories; ReleaseMount is the
	// write that then unregisters it, committed with the outcome record.
	DiscardMount(mountID string) error
	ReleaseMount(mountID string) (Write, error)
}

// Mounter mounts and unmounts a container's root filesystem.
type Mounter interface {
	Mount(mountID string) (rootfs string, err error)
	Unmount(mountID string) error
}

// Observer is told about every finished transition (metrics).
type Observer interface {
	Transition(event Event, outcome Kind, d time.Duration)
}

// ContainerVolumes makes and removes the volumes of containers' mounts (the volume
// service, whose every change is journaled as a volume's).
type ContainerVolumes interface {
	// PrepareMounts checks a create's mounts against the machine (a bind's
	// source must exist: ErrInvalidArgument otherwise), before anything
	// changes, then makes the volumes they name that do not exist, as
	// Docker does, and gives each anonymous mount a new volume. It returns
	// the mounts as the create records them and an undo that removes the
	// volumes it made, for a create that then fails.
	PrepareMounts(ctx context.Context, mounts []Mount) ([]Mount, func(), error)
	// RemoveAnonymous removes the volumes named, made for a container that
	// is now removed (rm -v, or an auto-removed container).
	RemoveAnonymous(ctx context.Context, names []string) error
}
