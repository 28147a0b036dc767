package statemachine

import (
	"maps"
	"slices"
	"time"

	"github.com/cairn-run/cairn/resources"
)

// Kind says what a journal record proves.
type Kind string

const (
	// KindIntent is written, and made durable, before any side effect.
	KindIntent Kind = "INTENT"
	// KindDone says the side effects of an intent happened.
	KindDone Kind = "DONE"
	// KindFailed says an intent was abandoned after undoing what could be undone.
	KindFailed Kind = "FAILED"
	// KindReconciled records a decision taken by startup recovery.
	KindReconciled Kind = "RECONCILED"
)

// ObjectKind says what kind of object a record concerns. Each kind has its
// own fold in the journal; a record of a kind without one is refused.
type ObjectKind string

const (
	ObjectContainer ObjectKind = "container"
	ObjectImage     ObjectKind = "image"
	ObjectVolume    ObjectKind = "volume"
	ObjectNetAttach ObjectKind = "netattach"
	ObjectExec      ObjectKind = "exec"
	ObjectSandbox   ObjectKind = "sandbox"
	ObjectNetwork   ObjectKind = "network"
)

// Known reports whether k is one of the kinds above.
func (k ObjectKind) Known() bool {
	switch k {
	case ObjectContainer, ObjectImage, ObjectVolume, ObjectNetAttach, ObjectExec, ObjectSandbox, ObjectNetwork:
		return true
	}
	return false
}

// ObjectKey names an object across kinds: "<kind>/<id>", e.g.
// "container/<64 hex>". The journal keys pending intents by it.
func ObjectKey(kind ObjectKind, id string) string { return string(kind) + "/" + id }

// Record is one entry of the lifecycle journal. An INTENT carries the
// arguments of a transition; the DONE, FAILED or RECONCILED record that
// finishes it carries the state the object ended in and what the side
// effects produced.
type Record struct {
	Seq  uint64    `json:"seq"`
	Kind Kind      `json:"kind"`
	Time time.Time `json:"time"`
	// Object and ObjectID name the object the record concerns. A record
	// without a kind (every record of schema 1) is a container's, and a
	// container's ObjectID is its Container; see Normalized.
	Object   ObjectKind `json:"object,omitempty"`
	ObjectID string     `json:"object_id,omitempty"`
	// Container is the container the record concerns: the object itself,
	// or the container an exec runs in.
	Container string `json:"container"`
	// Exec is the exec session the record concerns inside Container; empty
	// is the container's init process.
	Exec  string `json:"exec,omitempty"`
	Event Event  `json:"event"`
	From  State  `json:"from"`
	To    State  `json:"to"`
	// Intent is the seq of the INTENT a DONE, FAILED or RECONCILED record finishes.
	Intent uint64  `json:"intent,omitempty"`
	Args   *Args   `json:"args,omitempty"`
	Result *Result `json:"result,omitempty"`
	// Error is the cause of a FAILED record or the reason of a RECONCILED one.
	Error string `json:"error,omitempty"`
}

// Normalized returns r with its object filled in: a record without a kind
// is a container's, and a container record's ObjectID is its Container.
func (r Record) Normalized() Record {
	if r.Object == "" {
		r.Object = ObjectContainer
	}
	if r.Object == ObjectContainer && r.ObjectID == "" {
		r.ObjectID = r.Container
	}
	return r
}

// Key is the object key of the record's object (see ObjectKey).
func (r Record) Key() string {
	n := r.Normalized()
	return ObjectKey(n.Object, n.ObjectID)
}

// Write is a change to another store's records in the journal's file (the
// layer store's mount record, say), committed by Journal.Commit in the same
// transaction as the records of the call, or not at all. It is opaque here:
// the journal's storage (internal/schema.Op) implements it.
type Write interface{ JournalWrite() }

// Args are the arguments of an intent.
type Args struct {
	Name       string   `json:"name,omitempty"`
	Image      string   `json:"image,omitempty"`
	Command    []string `json:"command,omitempty"`
	Env        []string `json:"env,omitempty"`
	MountID    string   `json:"mount_id,omitempty"`
	Hostname   string   `json:"hostname,omitempty"`
	AutoRemove bool     `json:"auto_remove,omitempty"`
	// Timeout is the grace period of a stop or restart before SIGKILL.
	Timeout Duration `json:"timeout,omitempty"`
	Signal  string   `json:"signal,omitempty"`
	// Exit is the exit an exit intent is about to record.
	Exit *Exit `json:"exit,omitempty"`

	// ImageID is the image a create's container is made from (the image's
	// own records name it as their object).
	ImageID string `json:"image_id,omitempty"`
	// Config is what a create took from the image and its overrides, for
	// the container's view.
	Config *ContainerConfig `json:"config,omitempty"`

	// RestartPolicy is the policy of a create, or the new one of a
	// set-restart-policy.
	RestartPolicy *RestartPolicy `json:"restart_policy,omitempty"`
	// RestartCount and RestartDelay are, for a policy-restart, the
	// container's restart count once it is done and the delay it waited
	// after the exit (the next one doubles from it): the fold takes both
	// from the intent, so a restart that never happened counts nothing.
	RestartCount int      `json:"restart_count,omitempty"`
	RestartDelay Duration `json:"restart_delay,omitempty"`
	// UserStop marks a stop or kill a user asked for: the restart policy
	// does not bring the container back (a stop cairnd makes at shutdown
	// has none). ResetRestarts marks a user's start or restart: it clears
	// that mark and the restart count. Records written before restart
	// policies have neither, and fold as they did.
	UserStop      bool `json:"user_stop,omitempty"`
	ResetRestarts bool `json:"reset_restarts,omitempty"`

	// Refs are the names an image transition gives or takes.
	Refs []string `json:"refs,omitempty"`
	// Layers are the layer directories a load or import installs.
	Layers []LayerClaim `json:"layers,omitempty"`

	// NetAttach is an attach's (or detach's) network, netns and ports.
	NetAttach *NetAttachArgs `json:"netattach,omitempty"`
	// Network is a network-create's definition.
	Network *NetworkDef `json:"network,omitempty"`
	// The init's stdio and log of a create (see Container), and an exec
	// session's terminal and stdin.
	TTY         bool  `json:"tty,omitempty"`
	OpenStdin   bool  `json:"open_stdin,omitempty"`
	StdinOnce   bool  `json:"stdin_once,omitempty"`
	LogMaxSize  int64 `json:"log_max_size,omitempty"`
	LogMaxFiles int   `json:"log_max_files,omitempty"`
	// An exec session's user (as given) and working directory.
	User    string `json:"user,omitempty"`
	Workdir string `json:"workdir,omitempty"`
	// Resources are the limits an update sets (all of them, not only the
	// changed ones).
	Resources *resources.Resources `json:"resources,omitempty"`
	// RemoveVolumes: a remove that takes the container's anonymous
	// volumes with it (rm -v).
	RemoveVolumes bool `json:"remove_volumes,omitempty"`
	// Mounts are a create's volumes, binds and tmpfs mounts.
	Mounts []Mount `json:"mounts,omitempty"`
	// Volume is what a volume create records about the volume.
	Volume *VolumeSpec `json:"volume,omitempty"`
}

// clone is a deep copy of the arguments.
func (a Args) clone() Args {
	a.Command = slices.Clone(a.Command)
	a.Env = slices.Clone(a.Env)
	a.Refs = slices.Clone(a.Refs)
	a.Layers = slices.Clone(a.Layers)
	a.Mounts = slices.Clone(a.Mounts)
	if a.Exit != nil {
		e := *a.Exit
		a.Exit = &e
	}
	if a.Config != nil {
		c := a.Config.Clone()
		a.Config = &c
	}
	if a.NetAttach != nil {
		n := *a.NetAttach
		n.Ports = slices.Clone(n.Ports)
		a.NetAttach = &n
	}
	if a.Network != nil {
		n := *a.Network
		a.Network = &n
	}
	if a.Resources != nil {
		r := a.Resources.Clone()
		a.Resources = &r
	}
	if a.Volume != nil {
		v := *a.Volume
		v.Labels = maps.Clone(v.Labels)
		a.Volume = &v
	}
	if a.RestartPolicy != nil {
		p := *a.RestartPolicy
		a.RestartPolicy = &p
	}
	return a
}

// Result is what the side effects of a transition produced.
type Result struct {
	// Process is set when a new process was started.
	Process *Process `json:"process,omitempty"`
	// Exit is set when a process ended.
	Exit *Exit `json:"exit,omitempty"`
	// NetAttach is what an attach's CNI ADD gave.
	NetAttach *NetAttachResult `json:"netattach,omitempty"`
	// Resources are the container's limits from now on: an update's,
	// rolled forward.
	Resources *resources.Resources `json:"resources,omitempty"`
}

// Process identifies a container's running process and its shim. PID and
// start time together survive PID reuse; they are the handle used to
// reattach after a daemon restart.
type Process struct {
	PID           int       `json:"pid"`
	StartTime     uint64    `json:"start_time"`
	ShimPID       int       `json:"shim_pid"`
	ShimStartTime uint64    `json:"shim_start_time"`
	StartedAt     time.Time `json:"started_at"`
}

// Exit is how a process ended. A nil Code means nobody can know it; Reason
// then says what was lost.
type Exit struct {
	Code       *int      `json:"code,omitempty"`
	Reason     string    `json:"reason,omitempty"`
	FinishedAt time.Time `json:"finished_at"`
	// OOMKilled: the kernel's OOM killer killed a process of the
	// container during the run; Reason is then ReasonOOMKilled.
	OOMKilled bool `json:"oom_killed,omitempty"`
}

// ReasonOOMKilled is the exit reason of a run the OOM killer ended, as
// Docker names it.
const ReasonOOMKilled = "OOMKilled"

// ExitCode returns an Exit with a known code.
func ExitCode(code int, finishedAt time.Time) *Exit {
	return &Exit{Code: &code, FinishedAt: finishedAt}
}

// Duration is a time.Duration that reads as "10s" in the journal.
type Duration time.Duration

func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	*d = Duration(v)
	return err
}
