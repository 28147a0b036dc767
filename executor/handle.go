package executor

import "time"

// Spec is what to run.
type Spec struct {
	ID string
	// Rootfs is the directory that becomes the container's /, usually an
	// overlay mount prepared by the caller. It is used read-write.
	Rootfs string
	Args   []string
	// Env is the process environment; PATH defaults to the usual directories
	// when absent.
	Env []string
	// Hostname defaults to the first 12 characters of ID.
	Hostname string
	// Cwd is the process's working directory inside the container; ""
	// is /. libcontainer creates it (inside the container) if missing.
	Cwd string
	// UID, GID and AdditionalGIDs are the process's user and groups,
	// already resolved by the caller; the zero values are root.
	UID, GID       int
	AdditionalGIDs []int
	// Mounts are bind and tmpfs mounts inside the container, besides its
	// root (a volume is a bind of its directory); see mountsOf.
	Mounts []Mount `json:",omitempty"`
}

// Mount is a bind mount of a host path or a tmpfs in the container.
// libcontainer makes it inside the container's mount namespace, so it
// never shows on the host and nothing is left to unmount.
type Mount struct {
	// Type is "bind" or "tmpfs".
	Type        string
	Source      string `json:",omitempty"`
	Destination string
	ReadOnly    bool  `json:",omitempty"`
	TmpfsSize   int64 `json:",omitempty"`
}

// Process is the persisted handle of a started container: the daemon journals
// it and later reattaches using only it. A PID alone can be reused after the
// process is gone; with the start time it names exactly one process.
type Process struct {
	PID           int
	StartTime     uint64 // /proc/<pid>/stat field 22
	ShimPID       int
	ShimStartTime uint64
	StartedAt     time.Time
}

// Exit is how a container process ended. Code is nil when nobody can know it
// (shim and process gone without an exit record); Reason then says what was
// lost and FinishedAt is when the loss was observed. Otherwise Code follows
// the shell convention: the exit status, or 128+signal with Signal set.
type Exit struct {
	Code       *int
	Signal     string
	Reason     string
	FinishedAt time.Time
}

// Observation is what the machine shows for a container, for startup
// recovery. Gathering it has no side effects.
type Observation struct {
	ShimAlive    bool
	ProcessAlive bool
	// Exit is the shim's exit record, if it wrote one.
	Exit *Exit
	// Freezer is the freezer cgroup's state ("FROZEN", "THAWED",
	// "FREEZING"), or "" when the cgroup does not exist.
	Freezer        string
	StateDirExists bool
}
