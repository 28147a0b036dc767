package statemachine

import (
	"context"
	"syscall"
	"time"

	"github.com/cairn-run/cairn/resources"
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
	// The init's stdio and log (see Container); AwaitAttach holds its
	// output for the client that started it to attach.
	TTY, OpenStdin, StdinOnce, AwaitAttach bool
	LogMaxSize                             int64
	LogMaxFiles                            int
	// Resources and Security are the container's limits and security
	// options as journaled.
	Resources resources.Resources
	Security  resources.Security
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

// ExecUser is a user resolved in a container.
type ExecUser struct {
	UID, GID int
	Groups   []int
	Home     string
}

// ExecSpec is an exec session for the runner to start.
type ExecSpec struct {
	ID      string
	Args    []string
	Env     []string
	Workdir string
	User    ExecUser
	TTY     bool
	Stdin   bool
	// Attach: the session's stdio is returned; else it is /dev/null.
	Attach     bool
	Rows, Cols uint16
}

// ExecIO is an attached session's stdio as the runner returns it: the
// driver only hands it to its caller (or closes it), who talks through it.
type ExecIO interface {
	Close() error
}

// ExecRunner runs exec sessions in a container through its shim, the
// parent of every process of the container and the only one who learns an
// exec's exit. container is the container's init (its shim is asked).
type ExecRunner interface {
	// ResolveUser resolves a user spec in container id; an unknown user is
	// errdefs.ErrInvalidArgument.
	ResolveUser(ctx context.Context, id, user string) (ExecUser, error)
	// Exec starts a session and returns its process (PID, start time,
	// start) once it runs, and its stdio when spec.Attach.
	Exec(ctx context.Context, id string, container Process, spec ExecSpec) (Process, ExecIO, error)
	// WaitExec returns the session's exit once it ended; a code nobody can
	// know is a nil Code with the reason.
	WaitExec(ctx context.Context, id string, container Process, execID string, p Process) (Exit, error)
	// ReleaseExec tells the shim the session's exit is journaled.
	ReleaseExec(ctx context.Context, id, execID string) error
}

// ExecViews is the journal's view of exec sessions.
type ExecViews interface {
	Exec(id string) (Exec, bool)
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
