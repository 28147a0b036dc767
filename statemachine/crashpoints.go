package statemachine

import "slices"

// Crash drills stop the daemon dead at named points of the transition
// protocol, to prove that recovery finds its way from each of them. A name
// is "<event>.<point>":
//
//	<event>.after-intent   the intent is durable, no side effect done yet
//	<event>.after-<step>   the step of stepsOf(event, ...) is done, the next not begun
//	<event>.before-done    the side effects are done, the outcome not recorded
//	<event>.after-done     the outcome is recorded, the caller not answered
//
// The list follows from the step lists, so it cannot drift from the code.

const (
	stepAfterIntent = "after-intent"
	stepBeforeDone  = "before-done"
	stepAfterDone   = "after-done"
)

// events is every event, in the order CrashPoints lists them.
var events = []Event{EventCreate, EventStart, EventStop, EventPause, EventUnpause, EventRestart, EventKill, EventRemove, EventForceRemove, EventExit, EventUpdate, EventPolicyRestart, EventCancelRestart, EventSetRestartPolicy}

// states is every state an event can start from.
var states = []State{StateNone, StateCreated, StateRunning, StatePaused, StateStopped}

// CrashPoints lists every crash point the driver can reach.
func CrashPoints() []string {
	var names []string
	for _, ev := range events {
		names = append(names, string(ev)+"."+stepAfterIntent)
		for _, from := range states {
			if _, err := Target(from, ev); err != nil {
				continue
			}
			for _, s := range stepsOf(ev, from) {
				if name := string(ev) + ".after-" + s.name; !slices.Contains(names, name) {
					names = append(names, name)
				}
			}
		}
		names = append(names, string(ev)+"."+stepBeforeDone, string(ev)+"."+stepAfterDone)
	}
	return append(names, ExecCrashPoints()...)
}

// ExecCrashPoints lists the crash points of exec sessions' transitions
// (part of CrashPoints).
func ExecCrashPoints() []string {
	var names []string
	for _, ev := range execEvents {
		names = append(names, string(ev)+"."+stepAfterIntent)
		for _, s := range execStepsOf(ev) {
			names = append(names, string(ev)+".after-"+s.name)
		}
		names = append(names, string(ev)+"."+stepBeforeDone, string(ev)+"."+stepAfterDone)
	}
	return names
}

func (m *Machine) crash(event Event, point string) {
	if m.d.CrashPoint != nil {
		m.d.CrashPoint(string(event) + "." + point)
	}
}
