package recovery

import (
	"fmt"
	"time"

	sm "github.com/cairn-run/cairn/statemachine"
)

// ExecShim is what the container's shim said about an exec session.
type ExecShim int8

const (
	// ExecShimGone: there is no shim to ask (the container's run is over,
	// or its shim was killed).
	ExecShimGone ExecShim = iota
	// ExecShimHas: the shim has the session (running, or exited and not
	// released yet).
	ExecShimHas
	// ExecShimLacks: the shim answered that it has no such session.
	ExecShimLacks
	// ExecShimUnknown: the shim could not be asked; nothing is decided.
	ExecShimUnknown
)

// ExecWorld is what recovery observed of one exec session.
type ExecWorld struct {
	Shim ExecShim
	// Process is the session's process as the shim reports it (ExecShimHas).
	Process *sm.Process
	// ProcessAlive: the process of the session (the view's, else the
	// shim's) lives, by PID and start time.
	ProcessAlive bool
	// Exit is how the session ended: the shim's answer, or its exit record.
	Exit *sm.Exit
	Now  time.Time
}

// ExecAction is one side effect of an exec session's plan.
type ExecAction string

const (
	// ExecActionReattach watches the session for its exit again.
	ExecActionReattach ExecAction = "reattach-exec"
	// ExecActionRelease tells the shim (or the disk) that the session's exit
	// is journaled: its exit record goes.
	ExecActionRelease ExecAction = "release-exec"
)

// ExecPlan is what recovery does about one exec session: the record, then
// the actions (both come after it: neither may precede the proof).
type ExecPlan struct {
	Actions     []ExecAction
	Record      *sm.Record
	UnknownExit bool
	Uncertain   string
}

// DecideExec is recovery's decision table for exec sessions: the journal's
// view of a session and what the machine shows give what to do. It is pure.
//
//	journal says          world shows                                   decision
//	INTENT exec-exit      anything                                      roll forward: exited with the intent's exit; release
//	INTENT exec           the shim has it, running                      roll forward to running; reattach
//	INTENT exec           it exited (the shim says, or its record)      roll forward to exited with that code; release
//	INTENT exec           the shim lacks it, or is gone with no record  roll back: it never started
//	running               the shim has it running, or its process lives reattach (no shim: its code will be unknown)
//	running               it exited (the shim says, or its record)      exited with that code; release
//	running               no shim, no record, the process gone          exited, code unknown, with the reason
//	exited                its exit record is still there                release
//	anything              the shim could not be asked                   nothing decided (Uncertain)
func DecideExec(x sm.Exec, w ExecWorld) ExecPlan {
	if w.Shim == ExecShimUnknown && !(x.Pending != nil && x.Pending.Event == sm.EventExecExit) {
		return ExecPlan{Uncertain: "could not ask the container's shim about the session"}
	}
	if x.Pending != nil {
		switch x.Pending.Event {
		case sm.EventExecExit:
			exit := sm.Exit{Reason: "the exit of the session", FinishedAt: w.Now}
			if a := x.Pending.Args; a != nil && a.Exit != nil {
				exit = *a.Exit
			}
			return ExecPlan{
				Actions:     []ExecAction{ExecActionRelease},
				Record:      execReconciled(x, sm.EventExecExit, sm.StateExited, &sm.Result{Exit: &exit}, "unfinished exec-exit rolled forward"),
				UnknownExit: exit.Code == nil,
			}
		case sm.EventExec:
			return decideExecStart(x, w)
		}
	}
	switch x.State {
	case sm.StateRunning:
		return decideExecRunning(x, w)
	case sm.StateExited:
		if w.Exit != nil {
			return ExecPlan{Actions: []ExecAction{ExecActionRelease},
				Record: execReconciled(x, EventCleanup, sm.StateExited, nil, "removed the exit record of a session whose exit is journaled")}
		}
	}
	return ExecPlan{}
}

func decideExecStart(x sm.Exec, w ExecWorld) ExecPlan {
	switch {
	case w.Shim == ExecShimHas && w.Exit == nil && w.Process != nil:
		p := *w.Process
		return ExecPlan{Actions: []ExecAction{ExecActionReattach},
			Record: execReconciled(x, sm.EventExec, sm.StateRunning, &sm.Result{Process: &p},
				fmt.Sprintf("unfinished exec rolled forward: the shim runs it as pid %d", p.PID))}
	case w.Exit != nil:
		res := &sm.Result{Exit: w.Exit}
		if w.Process != nil {
			p := *w.Process
			res.Process = &p
		}
		return ExecPlan{Actions: []ExecAction{ExecActionRelease},
			Record:      execReconciled(x, sm.EventExec, sm.StateExited, res, "unfinished exec rolled forward: it ran and exited while cairnd was down"),
			UnknownExit: w.Exit.Code == nil}
	}
	reason := "unfinished exec rolled back: the container's shim never started it"
	if w.Shim == ExecShimGone {
		reason = "unfinished exec rolled back: the container's shim is gone and left no record of it"
	}
	return ExecPlan{Record: execReconciled(x, sm.EventExec, sm.StateNone, nil, reason)}
}

func decideExecRunning(x sm.Exec, w ExecWorld) ExecPlan {
	if w.Exit != nil {
		return ExecPlan{Actions: []ExecAction{ExecActionRelease},
			Record:      execReconciled(x, sm.EventExecExit, sm.StateExited, &sm.Result{Exit: w.Exit}, "exited while cairnd was down"),
			UnknownExit: w.Exit.Code == nil}
	}
	if w.Shim == ExecShimHas || w.ProcessAlive {
		pid := 0
		if x.Process != nil {
			pid = x.Process.PID
		}
		reason := fmt.Sprintf("reattached to exec pid %d", pid)
		if w.Shim != ExecShimHas {
			reason += "; the container's shim is gone, so its exit code will be unknown"
		}
		return ExecPlan{Actions: []ExecAction{ExecActionReattach}, Record: execReconciled(x, EventReattach, sm.StateRunning, nil, reason)}
	}
	lost := "the container's shim and the session's process were both gone when cairnd started, and no exit record was left: the exit code is unknown"
	if w.Shim == ExecShimLacks {
		lost = "the container's shim has no such session and left no exit record of it: the exit code is unknown"
	}
	exit := sm.Exit{Reason: lost, FinishedAt: w.Now}
	return ExecPlan{Record: execReconciled(x, sm.EventExecExit, sm.StateExited, &sm.Result{Exit: &exit}, lost), UnknownExit: true}
}

// execReconciled builds the record of a decision about x; it resolves the
// pending intent, if any.
func execReconciled(x sm.Exec, event sm.Event, to sm.State, res *sm.Result, reason string) *sm.Record {
	rec := sm.ExecRecord(sm.KindReconciled, x.Container, x.ID, event, x.State, to)
	rec.Result, rec.Error = res, reason
	if x.Pending != nil {
		rec.Intent = x.Pending.Seq
		rec.Event = x.Pending.Event
	}
	return &rec
}
