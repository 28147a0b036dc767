package statemachine

// State is a container's lifecycle state. The zero value means "not created
// yet": a create whose intent is recorded but not finished.
type State string

const (
	StateNone    State = ""
	StateCreated State = "created"
	StateRunning State = "running"
	StatePaused  State = "paused"
	StateStopped State = "stopped"
	StateRemoved State = "removed"
)

// Event is what moves a container from one state to another.
type Event string

const (
	EventCreate  Event = "create"
	EventStart   Event = "start"
	EventPause   Event = "pause"
	EventUnpause Event = "unpause"
	EventStop    Event = "stop"
	// EventExit is observed, never requested: the container's process ended.
	EventExit    Event = "exit"
	EventRestart Event = "restart"
	EventRemove  Event = "remove"
	// EventForceRemove is remove of a running or paused container.
	EventForceRemove Event = "force-remove"
	// EventKill delivers a signal and leaves the state as it is; the exit it
	// may cause arrives as EventExit.
	EventKill Event = "kill"
	// EventUpdate changes a container's limits and leaves the state as it
	// is: written to the cgroup of a live container, kept for the next
	// start of one that is not.
	EventUpdate Event = "update"
	// EventPolicyRestart is a start the container's restart policy asked
	// for after an exit (restartpolicy.go); the user never requests it.
	EventPolicyRestart Event = "policy-restart"
	// EventCancelRestart is a user's stop of a stopped container whose
	// policy restart is scheduled: the restart does not happen, and the
	// container is user-stopped.
	EventCancelRestart Event = "cancel-restart"
	// EventSetRestartPolicy changes a container's restart policy and
	// leaves its state as it is.
	EventSetRestartPolicy Event = "set-restart-policy"
)

// HasProcess reports whether a container in state s has a live process.
func (s State) HasProcess() bool { return s == StateRunning || s == StatePaused }
