package recovery

import (
	"fmt"
	"strings"
	"time"

	sm "github.com/cairn-run/cairn/statemachine"
)

// World is what recovery observed of one container. Gathering it has no
// side effects.
type World struct {
	// Process is the process the decision is about: the view's, or for an
	// unfinished start or restart the one found on disk; nil when there is
	// none.
	Process *sm.Process
	// ProcessStartTime and ShimStartTime are the start times of the live
	// processes that now have Process's PID and shim PID (/proc/<pid>/stat
	// field 22), 0 when there is none. Only an equal start time identifies
	// the process: PIDs are reused.
	ProcessStartTime uint64
	ShimStartTime    uint64
	// Exit is the shim's exit record of Process, if it wrote one.
	Exit *sm.Exit
	// Freezer is the state of the container's freezer cgroup.
	Freezer Freezer
	// Mounted: the container's rootfs overlay is mounted on the host.
	Mounted Fact
	// LayersComplete: the init and writable layers of a create exist.
	LayersComplete Fact
	// RuntimeLeftovers: cgroup, libcontainer state or shim files of a run
	// that is over are still on the machine.
	RuntimeLeftovers bool
	// Rebooted: the machine booted since the journal's last start.
	Rebooted bool
	// Now is when the observation was made.
	Now time.Time
}

// Fact is an observation that may have failed: recovery acts on Yes and No,
// and never takes Unknown for either.
type Fact int8

const (
	No Fact = iota
	Yes
	Unknown
)

// FactOf turns an observation and its error into a Fact.
func FactOf(v bool, err error) Fact {
	switch {
	case err != nil:
		return Unknown
	case v:
		return Yes
	}
	return No
}

// Freezer is the state of a container's freezer cgroup.
type Freezer string

const (
	FreezerAbsent   Freezer = ""         // no cgroup
	FreezerThawed   Freezer = "THAWED"   // running
	FreezerFrozen   Freezer = "FROZEN"   // paused
	FreezerFreezing Freezer = "FREEZING" // a freeze was cut off half-way
	FreezerUnknown  Freezer = "unknown"  // it could not be read
)

// Action is one side effect of a plan.
type Action string

const (
	// ActionReattach watches the process for its exit again.
	ActionReattach Action = "reattach"
	// ActionCleanupRun removes what a finished run left: cgroups,
	// libcontainer state, the shim's files; the log stays.
	ActionCleanupRun Action = "cleanup-run"
	// ActionUnmount unmounts the rootfs of a container that has no process.
	ActionUnmount Action = "unmount"
	// ActionFinishFreeze completes a freeze that was cut off half-way.
	ActionFinishFreeze Action = "finish-freeze"
	// ActionCompleteCreate finishes the init and writable layers.
	ActionCompleteCreate Action = "complete-create"
	// ActionRemoveLayers deletes the init and writable layers.
	ActionRemoveLayers Action = "remove-layers"
	// ActionRemoveRuntime kills what still runs and deletes every runtime
	// file of the container, its log included.
	ActionRemoveRuntime Action = "remove-runtime"
	// ActionAutoRemove removes, through the lifecycle driver, a stopped
	// container created with auto-remove.
	ActionAutoRemove Action = "auto-remove"
	// ActionApplyLimits writes an unfinished update's limits to the live
	// container's cgroup; ActionRestoreLimits writes the limits the view
	// had before it.
	ActionApplyLimits   Action = "apply-limits"
	ActionRestoreLimits Action = "restore-limits"
)

// afterRecord tells the actions that follow the plan's record from those
// that precede it. Cleaning up a finished run deletes the shim's exit
// record, the only evidence of the exit code until the journal holds it, so
// cleanup, unmounting and reattaching come after the record; a crash in
// between leaves leftovers that the next start's idle rows remove. Making
// or deleting layers comes first: a record must not claim a create or a
// remove that did not happen.
func (a Action) afterRecord() bool {
	switch a {
	case ActionCleanupRun, ActionUnmount, ActionReattach, ActionAutoRemove:
		return true
	}
	return false
}

// Events of RECONCILED records that resolve no intent.
const (
	EventReattach  sm.Event = "reattach"
	EventCleanup   sm.Event = "cleanup"
	EventLeftovers sm.Event = "leftovers"
)

// Plan is what recovery does about one container: the actions, in order,
// then the record that proves them.
type Plan struct {
	Actions []Action
	// Process is the process the actions are about.
	Process *sm.Process
	// Record is the RECONCILED record to append once the actions are done;
	// nil when there is nothing to record.
	Record *sm.Record
	// UnknownExit: the record carries an exit whose code nobody can know.
	UnknownExit bool
	// Uncertain says why nothing is decided: an observation the decision
	// needs could not be made. The container keeps its journal state (and
	// any unfinished intent) for the next start to decide.
	Uncertain string
	// Fallback is carried out instead when an action before the record
	// fails (an update's limits that the cgroup refuses are rolled back);
	// nil: the intent stays for the next start.
	Fallback *Plan
}

// Decide is recovery's decision table: the journal's view of a container
// and what the machine shows give what to do. It is pure.
//
//	journal says                 world shows                          decision
//	running / paused             process alive                        reattach; state from the freezer (never thawed)
//	running / paused             process gone, exit record            exit with that code; clean up the run, unmount
//	running / paused             process and shim gone, no record     exit code unknown, with the reason
//	INTENT create                layers complete / partial or absent  roll forward to created / roll back (remove layers)
//	INTENT remove                anything                             roll forward: kill, remove runtime and layers
//	INTENT start, restart,       a process of this start alive        roll forward to running (reattach)
//	  policy-restart
//	INTENT start, restart, p-r   that process exited                  roll forward to stopped, with its exit
//	INTENT start, restart, p-r   no process                           roll back to the old state, clean up
//
// A policy restart rolled forward counts (the fold takes its count from
// the intent); one rolled back does not, and the restart policy decides
// again once recovery is done (Runner.Restarts), so it is neither lost
// nor done twice.
//
//	INTENT other (stop, pause…)  as for running / paused above        resolved to what the world shows
//	created / stopped            rootfs mounted / run leftovers       unmount / clean up
//	anything                     a fact the decision needs unknown    nothing decided (Plan.Uncertain)
func Decide(c sm.Container, world World) Plan {
	w := facts{World: world}
	if p := world.Process; p != nil {
		w.alive = world.ProcessStartTime != 0 && world.ProcessStartTime == p.StartTime
		w.shimAlive = world.ShimStartTime != 0 && world.ShimStartTime == p.ShimStartTime
	}
	if c.Pending != nil {
		switch c.Pending.Event {
		case sm.EventCreate:
			return decideCreate(c, w)
		case sm.EventRemove, sm.EventForceRemove:
			return decideRemove(c)
		}
	}
	var plan Plan
	switch {
	case w.alive:
		plan = decideLive(c, w)
	case w.Process != nil && (c.State.HasProcess() || startPending(c)):
		plan = decideExited(c, w)
	default:
		plan = decideIdle(c, w)
	}
	if c.Pending != nil && c.Pending.Event == sm.EventUpdate {
		return DecideUpdate(c, plan, w.alive)
	}
	return plan
}

// DecideUpdate finishes an update cut off by a crash, on top of the plan
// for what the world shows (the process may have exited meanwhile). It is
// pure.
//
//	process   decision
//	alive     write the intent's limits again (idempotent), roll forward;
//	          if the cgroup refuses them, write the old ones back and roll back
//	gone      roll forward: the limits apply at the next start
//	(any)     a plan that decides nothing stays undecided
func DecideUpdate(c sm.Container, plan Plan, alive bool) Plan {
	if plan.Uncertain != "" || plan.Record == nil || c.Pending.Args == nil || c.Pending.Args.Resources == nil {
		return plan
	}
	back := plan
	backRec := *plan.Record
	backRec.Error = strings.Replace(backRec.Error, "rolled forward", "rolled back", 1)
	if backRec.Result != nil {
		r := *backRec.Result
		r.Resources = nil
		backRec.Result = &r
	}
	back.Record = &backRec

	fwd := plan
	rec := *plan.Record
	res := sm.Result{}
	if rec.Result != nil {
		res = *rec.Result
	}
	limits := c.Pending.Args.Resources.Clone()
	res.Resources = &limits
	rec.Result = &res
	fwd.Record = &rec
	if !alive {
		return fwd
	}
	fwd.Actions = append([]Action{ActionApplyLimits}, plan.Actions...)
	back.Actions = append([]Action{ActionRestoreLimits}, plan.Actions...)
	back.Record.Error += "; the cgroup refused the new limits, the old ones were written back"
	fwd.Fallback = &back
	return fwd
}

// facts is World with the process identities checked.
type facts struct {
	World
	alive, shimAlive bool
}

func startPending(c sm.Container) bool {
	if c.Pending == nil {
		return false
	}
	switch c.Pending.Event {
	case sm.EventStart, sm.EventRestart, sm.EventPolicyRestart:
		return true
	}
	return false
}

// reconciled builds the record of a decision; it resolves the pending
// intent, if any.
func reconciled(c sm.Container, event sm.Event, to sm.State, res *sm.Result, reason string) *sm.Record {
	rec := &sm.Record{Kind: sm.KindReconciled, Container: c.ID, Event: event, From: c.State, To: to, Result: res, Error: reason}
	if c.Pending != nil {
		rec.Intent = c.Pending.Seq
		rec.Event = c.Pending.Event
	}
	return rec
}

// resolution says how a pending intent ended up, for the reason text. A
// restart only went forward if it started a new process.
func resolution(c sm.Container, to sm.State, newProcess bool) string {
	if c.Pending == nil {
		return ""
	}
	forward := to == c.Pending.To
	if c.Pending.Event == sm.EventRestart && to == sm.StateRunning {
		forward = newProcess
	}
	if forward {
		return fmt.Sprintf("unfinished %s rolled forward: ", c.Pending.Event)
	}
	return fmt.Sprintf("unfinished %s rolled back: ", c.Pending.Event)
}

func decideCreate(c sm.Container, w facts) Plan {
	switch w.LayersComplete {
	case Unknown:
		return Plan{Uncertain: "could not tell whether the layers of the unfinished create are complete"}
	case Yes:
		return Plan{
			Actions: []Action{ActionCompleteCreate},
			Record:  reconciled(c, sm.EventCreate, sm.StateCreated, nil, "unfinished create rolled forward: its layers are complete"),
		}
	}
	return Plan{
		Actions: []Action{ActionRemoveLayers, ActionRemoveRuntime},
		Record:  reconciled(c, sm.EventCreate, sm.StateNone, nil, "unfinished create rolled back: its layers were partial or absent"),
	}
}

// decideRemove always finishes a remove: half a writable layer cannot be
// given back.
func decideRemove(c sm.Container) Plan {
	return Plan{
		Actions: []Action{ActionRemoveRuntime, ActionRemoveLayers},
		Process: c.Process,
		Record:  reconciled(c, c.Pending.Event, sm.StateRemoved, nil, "unfinished remove rolled forward"),
	}
}

func decideLive(c sm.Container, w facts) Plan {
	to := sm.StateRunning
	actions := []Action{ActionReattach}
	switch w.Freezer {
	case FreezerFrozen, FreezerFreezing:
		to = sm.StatePaused
	case FreezerUnknown:
		if c.Pending != nil {
			return Plan{Uncertain: fmt.Sprintf("could not read the freezer of pid %d to resolve the unfinished %s", w.Process.PID, c.Pending.Event)}
		}
		to = c.State // the journal's word stands: no guess either way
	}
	if w.Freezer == FreezerFreezing {
		// Part of the processes are frozen: thawing would undo a pause the
		// journal may promise, so the freeze is finished instead.
		actions = []Action{ActionFinishFreeze, ActionReattach}
	}
	var res *sm.Result
	reason := fmt.Sprintf("reattached to pid %d", w.Process.PID)
	newProcess := c.Process == nil || c.Process.PID != w.Process.PID || c.Process.StartTime != w.Process.StartTime
	if newProcess {
		p := *w.Process
		res = &sm.Result{Process: &p}
		reason = fmt.Sprintf("found pid %d running", w.Process.PID)
	}
	if c.Pending == nil && to != c.State {
		reason += fmt.Sprintf("; the freezer shows it %s", to)
	}
	if w.Freezer == FreezerUnknown {
		reason += "; its freezer could not be read, so it stays " + string(to)
	}
	if !w.shimAlive {
		reason += "; its shim is gone, so its exit code will be unknown"
	}
	if w.Mounted == No {
		reason += "; its rootfs is not mounted on the host"
	}
	if w.Freezer == FreezerFreezing {
		reason += "; finished a freeze that was cut off half-way"
	}
	return Plan{
		Actions: actions,
		Process: w.Process,
		Record:  reconciled(c, EventReattach, to, res, resolution(c, to, newProcess)+reason),
	}
}

func decideExited(c sm.Container, w facts) Plan {
	exit, unknown := exitOf(c, w)
	actions := []Action{ActionCleanupRun}
	if w.Mounted != No {
		// Unknown too: unmounting the rootfs of a process that is gone is
		// safe, and Unmount does nothing when nothing is mounted.
		actions = append(actions, ActionUnmount)
	}
	if c.AutoRemove {
		actions = append(actions, ActionAutoRemove)
	}
	reason := "exited while cairnd was down"
	if unknown {
		reason = exit.Reason
	}
	return Plan{
		Actions:     actions,
		Process:     w.Process,
		Record:      reconciled(c, sm.EventExit, sm.StateStopped, &sm.Result{Exit: &exit}, resolution(c, sm.StateStopped, false)+reason),
		UnknownExit: unknown,
	}
}

// exitOf is the exit to record for a process that is gone: the one an
// unfinished exit intent carries, else the shim's record, else unknown.
func exitOf(c sm.Container, w facts) (sm.Exit, bool) {
	if c.Pending != nil && c.Pending.Event == sm.EventExit && c.Pending.Args != nil && c.Pending.Args.Exit != nil {
		return *c.Pending.Args.Exit, c.Pending.Args.Exit.Code == nil
	}
	if w.Exit != nil {
		return *w.Exit, w.Exit.Code == nil
	}
	lost := "the shim and the container process were both gone when cairnd started, and no exit record was left: the exit code is unknown"
	if w.Rebooted {
		lost = "the machine rebooted while the container ran: the exit code is unknown"
	}
	return sm.Exit{Reason: lost, FinishedAt: w.Now}, true
}

func decideIdle(c sm.Container, w facts) Plan {
	to := c.State
	if c.Pending != nil {
		to = c.Pending.From
	}
	if c.Pending != nil && w.Mounted == Unknown {
		return Plan{Uncertain: fmt.Sprintf("could not tell whether the rootfs is mounted to roll back the unfinished %s", c.Pending.Event)}
	}
	var actions []Action
	var done []string
	if w.RuntimeLeftovers || w.shimAlive {
		actions = append(actions, ActionCleanupRun)
		done = append(done, "removed the runtime leftovers of a finished run")
	}
	if w.Mounted == Yes {
		actions = append(actions, ActionUnmount)
		done = append(done, "unmounted a stale rootfs")
	}
	if c.Pending == nil && len(actions) == 0 {
		return Plan{}
	}
	reason := resolution(c, to, false) + "no process was started"
	if c.Pending == nil {
		reason = ""
	}
	for _, d := range done {
		if reason != "" {
			reason += "; "
		}
		reason += d
	}
	return Plan{Actions: actions, Process: w.Process, Record: reconciled(c, EventCleanup, to, nil, reason)}
}
