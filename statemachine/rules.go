package statemachine

import (
	"context"
	"fmt"

	"github.com/looplab/fsm"

	"github.com/cairn-run/cairn/internal/errdefs"
)

// lifecycle is Docker's rule table. The fsm is only used as a rule table:
// persistence and side effects happen in the driver.
var lifecycle = fsm.Events{
	{Name: string(EventCreate), Src: []string{string(StateNone)}, Dst: string(StateCreated)},
	{Name: string(EventStart), Src: []string{string(StateCreated), string(StateStopped)}, Dst: string(StateRunning)},
	{Name: string(EventPause), Src: []string{string(StateRunning)}, Dst: string(StatePaused)},
	{Name: string(EventUnpause), Src: []string{string(StatePaused)}, Dst: string(StateRunning)},
	{Name: string(EventStop), Src: []string{string(StateRunning), string(StatePaused)}, Dst: string(StateStopped)},
	{Name: string(EventExit), Src: []string{string(StateRunning), string(StatePaused)}, Dst: string(StateStopped)},
	{Name: string(EventRestart), Src: []string{string(StateRunning), string(StateStopped), string(StateCreated)}, Dst: string(StateRunning)},
	{Name: string(EventRemove), Src: []string{string(StateCreated), string(StateStopped)}, Dst: string(StateRemoved)},
	{Name: string(EventForceRemove), Src: []string{string(StateCreated), string(StateStopped), string(StateRunning), string(StatePaused)}, Dst: string(StateRemoved)},
	{Name: string(EventKill), Src: []string{string(StateRunning)}, Dst: string(StateRunning)},
	{Name: string(EventUpdate), Src: []string{string(StateCreated)}, Dst: string(StateCreated)},
	{Name: string(EventUpdate), Src: []string{string(StateRunning)}, Dst: string(StateRunning)},
	{Name: string(EventUpdate), Src: []string{string(StatePaused)}, Dst: string(StatePaused)},
	{Name: string(EventUpdate), Src: []string{string(StateStopped)}, Dst: string(StateStopped)},
	// A policy restart follows an exit, so it starts from stopped only.
	{Name: string(EventPolicyRestart), Src: []string{string(StateStopped)}, Dst: string(StateRunning)},
	{Name: string(EventCancelRestart), Src: []string{string(StateStopped)}, Dst: string(StateStopped)},
	// A new restart policy leaves the state as it is, in every state.
	{Name: string(EventSetRestartPolicy), Src: []string{string(StateCreated)}, Dst: string(StateCreated)},
	{Name: string(EventSetRestartPolicy), Src: []string{string(StateRunning)}, Dst: string(StateRunning)},
	{Name: string(EventSetRestartPolicy), Src: []string{string(StatePaused)}, Dst: string(StatePaused)},
	{Name: string(EventSetRestartPolicy), Src: []string{string(StateStopped)}, Dst: string(StateStopped)},
}

// Target returns the state event leads to from state from, or an error
// wrapping errdefs.ErrFailedPrecondition when the rules forbid it.
func Target(from State, event Event) (State, error) {
	f := fsm.NewFSM(string(from), lifecycle, nil)
	if !f.Can(string(event)) {
		return from, illegal(from, event)
	}
	if err := f.Event(context.Background(), string(event)); err != nil && !isSelfTransition(err) {
		return from, fmt.Errorf("%s from %s: %w", event, from, err)
	}
	return State(f.Current()), nil
}

// isSelfTransition: fsm reports a legal Src==Dst event (kill) as an error.
func isSelfTransition(err error) bool {
	_, ok := err.(fsm.NoTransitionError)
	return ok
}

func illegal(from State, event Event) error {
	state := string(from)
	if from == StateNone {
		state = "being created"
	}
	hint := ""
	switch {
	case event == EventRemove && from.HasProcess():
		hint = " (stop it first or remove with force)"
	case event == EventKill && from == StatePaused:
		hint = " (unpause it first)"
	}
	return fmt.Errorf("cannot %s a container that is %s%s: %w", event, state, hint, errdefs.ErrFailedPrecondition)
}
