package recovery

import sm "github.com/cairn-run/cairn/statemachine"

// NetWorld is what recovery observed about one network attachment.
type NetWorld struct {
	// ContainerExists: the journal still has the container (any state).
	ContainerExists bool
	// ContainerRunning: it has a live process (running or paused) after
	// the containers' own recovery.
	ContainerRunning bool
	// NetNSMounted: the attachment's namespace file is a bind mount.
	NetNSMounted Fact
	// Rebooted: the machine booted since the journal's last start, so the
	// namespace, the veth and the IPAM state are gone with the tmpfs (or,
	// in a simulated reboot, are stale).
	Rebooted bool
}

// NetAction is what recovery does with an attachment.
type NetAction string

const (
	// NetKeep leaves the attachment as it is: same namespace, same IP.
	NetKeep NetAction = "keep"
	// NetRelease runs CNI DEL (with the cached config), unmounts and
	// deletes the namespace and records the attachment gone.
	NetRelease NetAction = "release"
	// NetUncertain decides nothing: a fact it needs is unknown.
	NetUncertain NetAction = "uncertain"
)

// NetPlan is the decision for one attachment.
type NetPlan struct {
	Action NetAction
	Reason string
}

// DecideNetAttach is the pure decision for one attachment after a start.
//
//   - an attach or detach intent without its outcome: release (DEL is
//     idempotent), which rolls an attach back and finishes a detach;
//   - the container is gone: release;
//   - a reboot: release (a stopped container gets a fresh attachment at its
//     next start);
//   - the namespace is mounted: keep (stop/start keep the IP);
//   - the namespace is gone and the container has no process: release;
//   - the namespace is gone under a live process: keep, the process holds
//     it (its next start after a stop re-attaches).
//
// A namespace fact that is unknown decides nothing where it matters.
func DecideNetAttach(v sm.NetAttachView, w NetWorld) NetPlan {
	switch {
	case v.Pending != nil && v.Pending.Event == sm.EventAttach:
		return NetPlan{NetRelease, "attach interrupted before its outcome: rolled back"}
	case v.Pending != nil:
		return NetPlan{NetRelease, "detach interrupted before its outcome: finished"}
	case !w.ContainerExists:
		return NetPlan{NetRelease, "the container is gone"}
	case w.Rebooted:
		return NetPlan{NetRelease, "the machine rebooted: namespace and addresses are gone"}
	}
	switch w.NetNSMounted {
	case Yes:
		return NetPlan{NetKeep, "namespace mounted, container present"}
	case No:
		if w.ContainerRunning {
			return NetPlan{NetKeep, "namespace file gone but held by the live process"}
		}
		return NetPlan{NetRelease, "namespace gone and no process holds it"}
	}
	return NetPlan{NetUncertain, "cannot tell whether the namespace is mounted"}
}

// NetworkPlan is the decision for a user network with an unfinished
// transition.
type NetworkPlan struct {
	// Keep: the network stays defined; otherwise its bridge and address
	// state are deleted (idempotent) and its definition dropped.
	Keep   bool
	Reason string
}

// DecideNetwork is the pure decision for a user network after a start: a
// create cut short is rolled back (it had no side effect yet, and no
// container can have joined a network whose create was not DONE); a
// removal cut short is finished (its bridge may be half gone); a settled
// network is kept.
func DecideNetwork(v sm.NetworkView) NetworkPlan {
	switch {
	case v.Pending == nil:
		return NetworkPlan{Keep: true, Reason: "settled"}
	case v.Pending.Event == sm.EventNetworkCreate:
		return NetworkPlan{Reason: "create interrupted before its outcome: rolled back"}
	default:
		return NetworkPlan{Reason: "removal interrupted before its outcome: finished"}
	}
}
