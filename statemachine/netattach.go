package statemachine

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/looplab/fsm"

	"github.com/cairn-run/cairn/internal/errdefs"
)

// Networks and network attachments are journaled objects, as images are:
//
//   - a network (kind "network", id = its name) is a user-defined network:
//     its subnet, gateway and bridge; `network create` and `network rm`;
//   - an attachment (kind "netattach", id = the container's id) is one
//     container's place on one network: its network namespace (a file
//     named after the container under the run directory), and what CNI
//     ADD gave it (IP, MAC, gateway, published ports).
//
// The intent of an attach names the network, the netns path and the
// requested ports and is durable before the namespace is made or CNI ADD
// runs; the DONE carries the result. A detach records its intent before
// CNI DEL. Recovery decides an unfinished one with a pure table
// (recovery.DecideNetAttach).

// Network events.
const (
	EventAttach        Event = "attach"         // netns + CNI ADD
	EventDetach        Event = "detach"         // CNI DEL + netns released
	EventNetworkCreate Event = "network-create" // a user network defined
	EventNetworkRemove Event = "network-remove" // its bridge deleted, the definition dropped
)

// NetEvents are the network events, in the order NetCrashPoints lists them.
var NetEvents = []Event{EventAttach, EventDetach, EventNetworkCreate, EventNetworkRemove}

// StateAttached is the state of an attachment whose ADD is done; StateDefined
// is a user network's.
const (
	StateAttached State = "attached"
	StateDefined  State = "defined"
)

var netRules = fsm.Events{
	{Name: string(EventAttach), Src: []string{string(StateNone)}, Dst: string(StateAttached)},
	{Name: string(EventDetach), Src: []string{string(StateAttached)}, Dst: string(StateRemoved)},
	{Name: string(EventNetworkCreate), Src: []string{string(StateNone)}, Dst: string(StateDefined)},
	{Name: string(EventNetworkRemove), Src: []string{string(StateDefined)}, Dst: string(StateRemoved)},
}

// NetTarget returns the state a network event leads to from state from, or
// ErrFailedPrecondition when the rules forbid it.
func NetTarget(from State, event Event) (State, error) {
	f := fsm.NewFSM(string(from), netRules, nil)
	if !f.Can(string(event)) {
		return from, fmt.Errorf("cannot %s from %q: %w", event, from, errdefs.ErrFailedPrecondition)
	}
	if err := f.Event(context.Background(), string(event)); err != nil && !isSelfTransition(err) {
		return from, fmt.Errorf("%s from %s: %w", event, from, err)
	}
	return State(f.Current()), nil
}

// IsNetEvent reports whether event is one of NetEvents.
func IsNetEvent(event Event) bool { return slices.Contains(NetEvents, event) }

// NetObjectOf is the object kind of a network event.
func NetObjectOf(event Event) ObjectKind {
	if event == EventAttach || event == EventDetach {
		return ObjectNetAttach
	}
	return ObjectNetwork
}

// PortMapping is one published port: HostIP:HostPort on the host to
// ContainerPort/Protocol in the container.
type PortMapping struct {
	HostIP        string `json:"host_ip,omitempty"`
	HostPort      int    `json:"host_port"`
	ContainerPort int    `json:"container_port"`
	Protocol      string `json:"protocol"` // "tcp" or "udp"
}

// NetworkSettings are what a create asked of the network: the mode
// ("none", "host", "bridge" or a user network's name), the published ports,
// and the name service options. They are part of the container's config.
type NetworkSettings struct {
	Mode       string        `json:"mode,omitempty"`
	Ports      []PortMapping `json:"ports,omitempty"`
	PublishAll bool          `json:"publish_all,omitempty"`
	DNS        []string      `json:"dns,omitempty"`
	DNSSearch  []string      `json:"dns_search,omitempty"`
	ExtraHosts []string      `json:"extra_hosts,omitempty"`
}

// Clone returns a deep copy.
func (n *NetworkSettings) Clone() *NetworkSettings {
	if n == nil {
		return nil
	}
	c := *n
	c.Ports = slices.Clone(n.Ports)
	c.DNS = slices.Clone(n.DNS)
	c.DNSSearch = slices.Clone(n.DNSSearch)
	c.ExtraHosts = slices.Clone(n.ExtraHosts)
	return &c
}

// NetAttachArgs are what an attach's intent records: everything a DEL
// needs, should the daemon die before the DONE.
type NetAttachArgs struct {
	Network string        `json:"network"`
	NetNS   string        `json:"netns"`
	IfName  string        `json:"ifname"`
	Ports   []PortMapping `json:"ports,omitempty"`
}

// NetAttachResult is what CNI ADD gave.
type NetAttachResult struct {
	IP      string        `json:"ip"`
	MAC     string        `json:"mac,omitempty"`
	Gateway string        `json:"gateway,omitempty"`
	Ports   []PortMapping `json:"ports,omitempty"`
}

// NetworkDef is a user network's definition, recorded by network-create.
type NetworkDef struct {
	Name    string `json:"name"`
	Subnet  string `json:"subnet"`
	Gateway string `json:"gateway"`
	Bridge  string `json:"bridge"`
}

// NetAttachView is the journal's view of one attachment.
type NetAttachView struct {
	ID        string           `json:"id"` // the container's id
	State     State            `json:"state"`
	Network   string           `json:"network"`
	NetNS     string           `json:"netns"`
	IfName    string           `json:"ifname"`
	Requested []PortMapping    `json:"requested,omitempty"`
	Result    *NetAttachResult `json:"result,omitempty"`
	Pending   *Pending         `json:"pending,omitempty"`
	CreatedAt time.Time        `json:"created_at"`
	Seq       uint64           `json:"seq"`
}

// Clone returns a deep copy.
func (v NetAttachView) Clone() NetAttachView {
	v.Requested = slices.Clone(v.Requested)
	if v.Result != nil {
		r := *v.Result
		r.Ports = slices.Clone(r.Ports)
		v.Result = &r
	}
	if v.Pending != nil {
		p := *v.Pending
		if p.Args != nil {
			a := p.Args.clone()
			p.Args = &a
		}
		v.Pending = &p
	}
	return v
}

// NetworkView is the journal's view of one user network.
type NetworkView struct {
	ID        string      `json:"id"` // its name
	State     State       `json:"state"`
	Def       *NetworkDef `json:"def,omitempty"`
	Pending   *Pending    `json:"pending,omitempty"`
	CreatedAt time.Time   `json:"created_at"`
	Seq       uint64      `json:"seq"`
}

// Clone returns a deep copy.
func (v NetworkView) Clone() NetworkView {
	if v.Def != nil {
		d := *v.Def
		v.Def = &d
	}
	if v.Pending != nil {
		p := *v.Pending
		if p.Args != nil {
			a := p.Args.clone()
			p.Args = &a
		}
		v.Pending = &p
	}
	return v
}

// The named steps of network events.
const (
	NetStepNetNS   = "netns"   // attach: the namespace made and bind-mounted
	NetStepAdd     = "add"     // attach: CNI ADD
	NetStepDel     = "del"     // detach: CNI DEL
	NetStepRelease = "release" // detach: the namespace unmounted and deleted
	NetStepBridge  = "bridge"  // network-remove: the bridge device deleted
)

// netStepsOf names the steps of a network event, in order.
func netStepsOf(event Event) []string {
	switch event {
	case EventAttach:
		return []string{NetStepNetNS, NetStepAdd}
	case EventDetach:
		return []string{NetStepDel, NetStepRelease}
	case EventNetworkRemove:
		return []string{NetStepBridge}
	}
	return nil
}

// NetCrashPoints lists the crash points of network transitions.
func NetCrashPoints() []string {
	var names []string
	for _, ev := range NetEvents {
		names = append(names, string(ev)+"."+stepAfterIntent)
		for _, s := range netStepsOf(ev) {
			names = append(names, string(ev)+".after-"+s)
		}
		names = append(names, string(ev)+"."+stepBeforeDone, string(ev)+"."+stepAfterDone)
	}
	return names
}

// NetOp is one network transition to run.
type NetOp struct {
	Event Event
	ID    string
	// Attach is the attach intent's arguments (attach, detach).
	Attach *NetAttachArgs
	// Network is a network-create's definition.
	Network *NetworkDef
	// Do and Undo carry out and reverse the steps netStepsOf(Event) names.
	// Undo also cleans up after a Do that failed half-way.
	Do, Undo map[string]func() error
	// Result, if set, is what the DONE records (an attach's result),
	// called once the steps are done.
	Result func() *NetAttachResult
}

// NetJournal is the journal as the network driver uses it.
type NetJournal interface {
	Commit(recs []Record, writes ...Write) ([]Record, error)
	NetAttachment(id string) (NetAttachView, bool)
	Network(id string) (NetworkView, bool)
}

// NetDeps are what the network driver works through.
type NetDeps struct {
	Journal    NetJournal
	Logger     *slog.Logger
	CrashPoint func(name string)
}

// Nets drives network transitions: one at a time per object.
type Nets struct {
	d     NetDeps
	mu    sync.Mutex
	slots map[string]chan struct{}
}

// NewNets returns a network driver over d.
func NewNets(d NetDeps) *Nets {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	return &Nets{d: d, slots: map[string]chan struct{}{}}
}

// Lock holds the slot of object key while the caller reads and decides:
// a caller that checks before it runs (is it attached?) holds it across
// Run with RunLocked.
func (n *Nets) Lock(ctx context.Context, key string) (func(), error) {
	n.mu.Lock()
	s, ok := n.slots[key]
	if !ok {
		s = make(chan struct{}, 1)
		n.slots[key] = s
	}
	n.mu.Unlock()
	select {
	case s <- struct{}{}:
		return func() { <-s }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for %s to finish its transition: %w", key, ctx.Err())
	}
}

func (n *Nets) crash(event Event, point string) {
	if n.d.CrashPoint != nil {
		n.d.CrashPoint(string(event) + "." + point)
	}
}

func (n *Nets) state(kind ObjectKind, id string) (State, *Pending) {
	if kind == ObjectNetAttach {
		v, ok := n.d.Journal.NetAttachment(id)
		if !ok {
			return StateNone, nil
		}
		return v.State, v.Pending
	}
	v, ok := n.d.Journal.Network(id)
	if !ok {
		return StateNone, nil
	}
	return v.State, v.Pending
}

// Run takes op's slot and runs it (see RunLocked).
func (n *Nets) Run(ctx context.Context, op NetOp) error {
	unlock, err := n.Lock(ctx, ObjectKey(NetObjectOf(op.Event), op.ID))
	if err != nil {
		return err
	}
	defer unlock()
	return n.RunLocked(ctx, op)
}

// RunLocked runs op, whose slot the caller holds: the rule check and the
// intent (nothing done when either fails), the steps, and the DONE, or
// FAILED after undoing the steps. Once the intent is durable the
// transition finishes even if ctx ends.
func (n *Nets) RunLocked(ctx context.Context, op NetOp) error {
	if !IsNetEvent(op.Event) || op.ID == "" {
		return fmt.Errorf("network op %q of %q: %w", op.Event, op.ID, errdefs.ErrInvalidArgument)
	}
	kind := NetObjectOf(op.Event)
	from, pending := n.state(kind, op.ID)
	if pending != nil {
		return fmt.Errorf("%s %s has an unfinished %s (intent %d) waiting for recovery: %w", kind, op.ID, pending.Event, pending.Seq, errdefs.ErrFailedPrecondition)
	}
	to, err := NetTarget(from, op.Event)
	if err != nil {
		return fmt.Errorf("%s %s: %w", kind, op.ID, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	start := time.Now()
	args := &Args{NetAttach: op.Attach, Network: op.Network}
	recs, err := n.d.Journal.Commit([]Record{{Kind: KindIntent, Object: kind, ObjectID: op.ID, Event: op.Event, From: from, To: to, Args: args}})
	if err != nil {
		return fmt.Errorf("record intent to %s %s %s: %w", op.Event, kind, op.ID, err)
	}
	intent := recs[0]
	n.crash(op.Event, stepAfterIntent)
	var done []string
	fail := func(cause error) error {
		for i := len(done) - 1; i >= 0; i-- {
			if undo := op.Undo[done[i]]; undo != nil {
				if uerr := undo(); uerr != nil {
					cause = fmt.Errorf("%w (and undoing %s: %w)", cause, done[i], uerr)
				}
			}
		}
		n.crash(op.Event, stepBeforeDone)
		if _, rerr := n.d.Journal.Commit([]Record{{Kind: KindFailed, Object: kind, ObjectID: op.ID, Event: op.Event, From: from, To: from, Intent: intent.Seq, Error: cause.Error()}}); rerr != nil {
			return fmt.Errorf("%w (and recording the failure: %w)", cause, rerr)
		}
		n.crash(op.Event, stepAfterDone)
		n.d.Logger.Warn("network transition failed", "object", kind, "id", op.ID, "event", op.Event, "intent", intent.Seq, "error", cause)
		return cause
	}
	for _, name := range netStepsOf(op.Event) {
		if do := op.Do[name]; do != nil {
			if err := do(); err != nil {
				done = append(done, name)
				return fail(fmt.Errorf("%s %s %s: %w", op.Event, kind, op.ID, err))
			}
		}
		done = append(done, name)
		n.crash(op.Event, "after-"+name)
	}
	var res *Result
	if op.Result != nil {
		res = &Result{NetAttach: op.Result()}
	}
	n.crash(op.Event, stepBeforeDone)
	recs, err = n.d.Journal.Commit([]Record{{Kind: KindDone, Object: kind, ObjectID: op.ID, Event: op.Event, From: from, To: to, Intent: intent.Seq, Result: res}})
	if err != nil {
		return fail(fmt.Errorf("%s %s %s: %w", op.Event, kind, op.ID, err))
	}
	n.crash(op.Event, stepAfterDone)
	n.d.Logger.Info("network transition", "object", kind, "id", op.ID, "event", op.Event, "seq", recs[0].Seq, "intent", intent.Seq, "duration", time.Since(start))
	return nil
}
