package executor

import (
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/cairn-run/cairn/resources"
)

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
	// NetNS, if set, is a network namespace file (a bind mount the caller
	// made) the container joins instead of getting a new one; HostNetwork
	// shares the host's. Neither: a new namespace with only loopback.
	NetNS       string `json:",omitempty"`
	HostNetwork bool   `json:",omitempty"`
	// Terminal gives the init a pseudo-terminal; its output is then one
	// stream (stdout).
	Terminal bool
	// OpenStdin lets attached clients write to the init's stdin (else it is
	// /dev/null); with StdinOnce the first client to end its input ends it.
	OpenStdin, StdinOnce bool
	// AwaitAttach holds the init's output for the first attach (see
	// Attach), so a client that starts and then attaches misses nothing.
	AwaitAttach bool
	// LogMaxSize (bytes) and LogMaxFiles rotate the container's log; zero
	// is the default (DefaultLogMaxSize, DefaultLogMaxFiles), a negative
	// size never rotates.
	LogMaxSize  int64
	LogMaxFiles int
	// Resources are the cgroup limits and rlimits (see package resources);
	// the zero value is no limit, and RLIMIT_NOFILE resources.DefaultNofile.
	Resources resources.Resources `json:",omitzero"`
	// Security is what the container's processes may do.
	Security SecuritySpec `json:",omitzero"`
	// Mounts are bind and tmpfs mounts inside the container, besides its
	// root (a volume is a bind of its directory); see mountsOf.
	Mounts []Mount `json:",omitempty"`
}

// SecuritySpec is a container's security configuration, computed by the
// daemon (see package resources): the executor applies it as given.
type SecuritySpec struct {
	// Capabilities are the bounding, permitted and effective sets; nil is
	// Docker's default set (resources.DefaultCapabilities).
	Capabilities []string `json:",omitempty"`
	// Seccomp is the filter; nil is none.
	Seccomp         *specs.LinuxSeccomp `json:",omitempty"`
	NoNewPrivileges bool                `json:",omitempty"`
	// Privileged drops the masked and read-only /proc and /sys paths and
	// allows every device in the devices cgroup.
	Privileged bool `json:",omitempty"`
	// ReadOnly mounts the root filesystem read-only.
	ReadOnly bool              `json:",omitempty"`
	Tmpfs    []resources.Tmpfs `json:",omitempty"`
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
	// OOMKilled: the OOM killer killed a process of the container.
	OOMKilled bool
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
