package statemachine

import (
	"errors"
	"strings"
	"testing"

	"github.com/cairn-run/cairn/internal/errdefs"
)

func TestTarget_EveryEventFromEveryState(t *testing.T) {
	states := []State{StateNone, StateCreated, StateRunning, StatePaused, StateStopped, StateRemoved}
	legal := map[Event]map[State]State{
		EventCreate:      {StateNone: StateCreated},
		EventStart:       {StateCreated: StateRunning, StateStopped: StateRunning},
		EventPause:       {StateRunning: StatePaused},
		EventUnpause:     {StatePaused: StateRunning},
		EventStop:        {StateRunning: StateStopped, StatePaused: StateStopped},
		EventExit:        {StateRunning: StateStopped, StatePaused: StateStopped},
		EventRestart:     {StateRunning: StateRunning, StateStopped: StateRunning, StateCreated: StateRunning},
		EventRemove:      {StateCreated: StateRemoved, StateStopped: StateRemoved},
		EventForceRemove: {StateCreated: StateRemoved, StateStopped: StateRemoved, StateRunning: StateRemoved, StatePaused: StateRemoved},
		EventKill:        {StateRunning: StateRunning},
		// A policy restart follows a recorded exit only; a new policy
		// leaves any created container's state as it is.
		EventPolicyRestart:    {StateStopped: StateRunning},
		EventCancelRestart:    {StateStopped: StateStopped},
		EventSetRestartPolicy: {StateCreated: StateCreated, StateRunning: StateRunning, StatePaused: StatePaused, StateStopped: StateStopped},
	}
	for event, sources := range legal {
		for _, from := range states {
			got, err := Target(from, event)
			want, ok := sources[from]
			switch {
			case ok && err != nil:
				t.Errorf("%s from %q: unexpected error %v", event, from, err)
			case ok && got != want:
				t.Errorf("%s from %q: got %q, want %q", event, from, got, want)
			case !ok && !errors.Is(err, errdefs.ErrFailedPrecondition):
				t.Errorf("%s from %q: got (%q, %v), want ErrFailedPrecondition", event, from, got, err)
			case !ok && got != from:
				t.Errorf("%s from %q: illegal event changed state to %q", event, from, got)
			}
		}
	}
}

func TestTarget_IllegalRemoveExplainsForce(t *testing.T) {
	_, err := Target(StateRunning, EventRemove)
	if err == nil || !strings.Contains(err.Error(), "force") {
		t.Fatalf("got %v, want a hint about force", err)
	}
}
