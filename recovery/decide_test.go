package recovery

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	sm "github.com/cairn-run/cairn/statemachine"
)

var (
	now     = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	proc    = &sm.Process{PID: 100, StartTime: 5000, ShimPID: 90, ShimStartTime: 4990}
	newProc = &sm.Process{PID: 200, StartTime: 6000, ShimPID: 190, ShimStartTime: 5990}
)

func container(state sm.State, pending *sm.Pending) sm.Container {
	c := sm.Container{ID: "c1", State: state, MountID: "m1", Pending: pending}
	if state.HasProcess() {
		c.Process = proc
	}
	return c
}

func pending(ev sm.Event, from, to sm.State) *sm.Pending {
	return &sm.Pending{Seq: 41, Event: ev, From: from, To: to}
}

// alive is a world where p runs with its shim.
func alive(p *sm.Process) World {
	return World{Process: p, ProcessStartTime: p.StartTime, ShimStartTime: p.ShimStartTime, Mounted: Yes, Now: now}
}

func code(n int) *sm.Exit { return sm.ExitCode(n, now) }

func TestDecide_EveryRowOfTheTable(t *testing.T) {
	frozen := alive(proc)
	frozen.Freezer = FreezerFrozen
	freezing := alive(proc)
	freezing.Freezer = FreezerFreezing
	freezerUnreadable := alive(proc)
	freezerUnreadable.Freezer = FreezerUnknown
	mountUnknown := World{Mounted: Unknown, Now: now}
	exitedMountUnknown := World{Process: proc, Exit: code(3), Mounted: Unknown, Now: now}
	reusedPID := alive(proc)
	reusedPID.ProcessStartTime = 7777 // same PID, another process
	reusedPID.ShimStartTime = 0
	exited := World{Process: proc, ShimStartTime: proc.ShimStartTime, Exit: code(3), Mounted: Yes, Now: now}
	killed := World{Process: proc, Exit: code(137), Mounted: Yes, Now: now}
	allGone := World{Process: proc, Mounted: Yes, Now: now}
	rebooted := World{Process: proc, Rebooted: true, Now: now}
	shimLost := alive(proc)
	shimLost.ShimStartTime = 0
	newRunning := alive(newProc)
	newExited := World{Process: newProc, Exit: code(0), Mounted: Yes, Now: now}
	autoRemove := container(sm.StateRunning, nil)
	autoRemove.AutoRemove = true
	exitIntent := container(sm.StateRunning, pending(sm.EventExit, sm.StateRunning, sm.StateStopped))
	exitIntent.Pending.Args = &sm.Args{Exit: code(42)}

	cases := []struct {
		name    string
		c       sm.Container
		w       World
		to      sm.State // with noRecord below: ignored
		actions []Action
		exit    string // "" none, "unknown", or the code
		reason  string // a part of the record's reason
		result  *sm.Process
	}{
		{"running and alive: reattach", container(sm.StateRunning, nil), alive(proc), sm.StateRunning, []Action{ActionReattach}, "", "reattached to pid 100", nil},
		{"paused and frozen: stays paused, never thawed", container(sm.StatePaused, nil), frozen, sm.StatePaused, []Action{ActionReattach}, "", "reattached", nil},
		{"running but frozen outside cairn: recorded as paused", container(sm.StateRunning, nil), frozen, sm.StatePaused, []Action{ActionReattach}, "", "freezer shows it paused", nil},
		{"running, shim lost, process alive: reattach, code will be unknown", container(sm.StateRunning, nil), shimLost, sm.StateRunning, []Action{ActionReattach}, "", "shim is gone", nil},
		{"running, PID reused by another process: the container exited", container(sm.StateRunning, nil), reusedPID, sm.StateStopped, []Action{ActionCleanupRun, ActionUnmount}, "unknown", "no exit record", nil},
		{"running, process gone, exit record: that code", container(sm.StateRunning, nil), exited, sm.StateStopped, []Action{ActionCleanupRun, ActionUnmount}, "3", "exited while cairnd was down", nil},
		{"paused, killed while down: 137", container(sm.StatePaused, nil), killed, sm.StateStopped, []Action{ActionCleanupRun, ActionUnmount}, "137", "exited", nil},
		{"running, shim and process gone, no record: unknown", container(sm.StateRunning, nil), allGone, sm.StateStopped, []Action{ActionCleanupRun, ActionUnmount}, "unknown", "both gone", nil},
		{"running, machine rebooted: unknown, says why", container(sm.StateRunning, nil), rebooted, sm.StateStopped, []Action{ActionCleanupRun}, "unknown", "rebooted", nil},
		{"auto-remove container exited while down: removed after", autoRemove, exited, sm.StateStopped, []Action{ActionCleanupRun, ActionUnmount, ActionAutoRemove}, "3", "exited", nil},
		{"INTENT create, layers complete: roll forward", container(sm.StateNone, pending(sm.EventCreate, sm.StateNone, sm.StateCreated)), World{LayersComplete: Yes, Now: now}, sm.StateCreated, []Action{ActionCompleteCreate}, "", "rolled forward", nil},
		{"INTENT create, layers partial: roll back", container(sm.StateNone, pending(sm.EventCreate, sm.StateNone, sm.StateCreated)), World{Now: now}, sm.StateNone, []Action{ActionRemoveLayers, ActionRemoveRuntime}, "", "rolled back", nil},
		{"INTENT remove: always rolled forward", container(sm.StateRunning, pending(sm.EventForceRemove, sm.StateRunning, sm.StateRemoved)), alive(proc), sm.StateRemoved, []Action{ActionRemoveRuntime, ActionRemoveLayers}, "", "rolled forward", nil},
		{"INTENT start, its process runs: roll forward", container(sm.StateCreated, pending(sm.EventStart, sm.StateCreated, sm.StateRunning)), newRunning, sm.StateRunning, []Action{ActionReattach}, "", "rolled forward", newProc},
		{"INTENT start, its process already exited: stopped with its code", container(sm.StateStopped, pending(sm.EventStart, sm.StateStopped, sm.StateRunning)), newExited, sm.StateStopped, []Action{ActionCleanupRun, ActionUnmount}, "0", "rolled back", nil},
		{"INTENT start, no process: roll back, unmount", container(sm.StateCreated, pending(sm.EventStart, sm.StateCreated, sm.StateRunning)), World{Mounted: Yes, Now: now}, sm.StateCreated, []Action{ActionUnmount}, "", "rolled back", nil},
		{"INTENT restart, new process runs: roll forward", container(sm.StateRunning, pending(sm.EventRestart, sm.StateRunning, sm.StateRunning)), newRunning, sm.StateRunning, []Action{ActionReattach}, "", "rolled forward", newProc},
		{"INTENT restart, old process still runs: roll back", container(sm.StateRunning, pending(sm.EventRestart, sm.StateRunning, sm.StateRunning)), alive(proc), sm.StateRunning, []Action{ActionReattach}, "", "rolled back", nil},
		{"INTENT restart, old process stopped, none started: stopped", container(sm.StateRunning, pending(sm.EventRestart, sm.StateRunning, sm.StateRunning)), World{Process: proc, Mounted: Yes, Now: now}, sm.StateStopped, []Action{ActionCleanupRun, ActionUnmount}, "unknown", "rolled back", nil},
		{"INTENT policy-restart, its process runs: roll forward", container(sm.StateStopped, pending(sm.EventPolicyRestart, sm.StateStopped, sm.StateRunning)), newRunning, sm.StateRunning, []Action{ActionReattach}, "", "rolled forward", newProc},
		{"INTENT policy-restart, its process already exited: stopped with its code", container(sm.StateStopped, pending(sm.EventPolicyRestart, sm.StateStopped, sm.StateRunning)), newExited, sm.StateStopped, []Action{ActionCleanupRun, ActionUnmount}, "0", "policy-restart", nil},
		{"INTENT policy-restart, no process: roll back, unmount", container(sm.StateStopped, pending(sm.EventPolicyRestart, sm.StateStopped, sm.StateRunning)), World{Mounted: Yes, Now: now}, sm.StateStopped, []Action{ActionUnmount}, "", "rolled back", nil},
		{"INTENT policy-restart, no process, mount unknown: nothing decided", container(sm.StateStopped, pending(sm.EventPolicyRestart, sm.StateStopped, sm.StateRunning)), mountUnknown, uncertain, nil, "", "", nil},
		{"INTENT stop, process still alive: roll back", container(sm.StateRunning, pending(sm.EventStop, sm.StateRunning, sm.StateStopped)), alive(proc), sm.StateRunning, []Action{ActionReattach}, "", "rolled back", nil},
		{"INTENT stop, process gone: roll forward with its code", container(sm.StateRunning, pending(sm.EventStop, sm.StateRunning, sm.StateStopped)), World{Process: proc, ShimStartTime: proc.ShimStartTime, Exit: code(143), Now: now}, sm.StateStopped, []Action{ActionCleanupRun}, "143", "rolled forward", nil},
		{"INTENT pause, frozen: roll forward", container(sm.StateRunning, pending(sm.EventPause, sm.StateRunning, sm.StatePaused)), frozen, sm.StatePaused, []Action{ActionReattach}, "", "rolled forward", nil},
		{"INTENT pause, freeze cut off half-way: finished, paused", container(sm.StateRunning, pending(sm.EventPause, sm.StateRunning, sm.StatePaused)), freezing, sm.StatePaused, []Action{ActionFinishFreeze, ActionReattach}, "", "finished a freeze", nil},
		{"INTENT pause, thawed: roll back", container(sm.StateRunning, pending(sm.EventPause, sm.StateRunning, sm.StatePaused)), alive(proc), sm.StateRunning, []Action{ActionReattach}, "", "rolled back", nil},
		{"INTENT unpause, still frozen: roll back, never thawed", container(sm.StatePaused, pending(sm.EventUnpause, sm.StatePaused, sm.StateRunning)), frozen, sm.StatePaused, []Action{ActionReattach}, "", "rolled back", nil},
		{"INTENT kill, process died: stopped", container(sm.StateRunning, pending(sm.EventKill, sm.StateRunning, sm.StateRunning)), killed, sm.StateStopped, []Action{ActionCleanupRun, ActionUnmount}, "137", "rolled back", nil},
		{"INTENT exit: roll forward with the code it carries", exitIntent, World{Process: proc, Mounted: Yes, Now: now}, sm.StateStopped, []Action{ActionCleanupRun, ActionUnmount}, "42", "rolled forward", nil},
		{"created, rootfs mounted: unmount", container(sm.StateCreated, nil), World{Mounted: Yes, Now: now}, sm.StateCreated, []Action{ActionUnmount}, "", "unmounted a stale rootfs", nil},
		{"stopped, run leftovers: clean up", container(sm.StateStopped, nil), World{RuntimeLeftovers: true, Now: now}, sm.StateStopped, []Action{ActionCleanupRun}, "", "runtime leftovers", nil},
		{"stopped and clean: nothing to do", container(sm.StateStopped, nil), World{Now: now}, noRecord, nil, "", "", nil},
		// Observations that failed are never taken for yes or no.
		{"INTENT create, layers unknown: nothing decided", container(sm.StateNone, pending(sm.EventCreate, sm.StateNone, sm.StateCreated)), World{LayersComplete: Unknown, Now: now}, uncertain, nil, "", "", nil},
		{"paused, freezer unreadable: stays paused, no guess", container(sm.StatePaused, nil), freezerUnreadable, sm.StatePaused, []Action{ActionReattach}, "", "could not be read", nil},
		{"running, freezer unreadable: stays running, no guess", container(sm.StateRunning, nil), freezerUnreadable, sm.StateRunning, []Action{ActionReattach}, "", "could not be read", nil},
		{"INTENT pause, freezer unreadable: nothing decided", container(sm.StateRunning, pending(sm.EventPause, sm.StateRunning, sm.StatePaused)), freezerUnreadable, uncertain, nil, "", "", nil},
		{"INTENT start, no process, mount unknown: nothing decided", container(sm.StateCreated, pending(sm.EventStart, sm.StateCreated, sm.StateRunning)), mountUnknown, uncertain, nil, "", "", nil},
		{"created, mount unknown: nothing to claim", container(sm.StateCreated, nil), mountUnknown, noRecord, nil, "", "", nil},
		{"running, exited, mount unknown: exit recorded, unmount tried", container(sm.StateRunning, nil), exitedMountUnknown, sm.StateStopped, []Action{ActionCleanupRun, ActionUnmount}, "3", "exited", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			plan := Decide(tc.c, tc.w)
			if !slices.Equal(plan.Actions, tc.actions) {
				t.Errorf("actions %v, want %v", plan.Actions, tc.actions)
			}
			if (plan.Uncertain != "") != (tc.to == uncertain) {
				t.Errorf("uncertain %q, want uncertain=%v", plan.Uncertain, tc.to == uncertain)
			}
			if tc.to == noRecord || tc.to == uncertain {
				if plan.Record != nil {
					t.Errorf("recorded %+v, want nothing", plan.Record)
				}
				return
			}
			rec := plan.Record
			if rec == nil {
				t.Fatal("no record")
			}
			if rec.Kind != sm.KindReconciled || rec.To != tc.to || rec.From != tc.c.State || rec.Container != "c1" {
				t.Errorf("record %s %s -> %s, want RECONCILED %s -> %s", rec.Kind, rec.From, rec.To, tc.c.State, tc.to)
			}
			if tc.c.Pending != nil && (rec.Intent != tc.c.Pending.Seq || rec.Event != tc.c.Pending.Event) {
				t.Errorf("record resolves intent %d (%s), want %d (%s)", rec.Intent, rec.Event, tc.c.Pending.Seq, tc.c.Pending.Event)
			}
			if !strings.Contains(rec.Error, tc.reason) {
				t.Errorf("reason %q lacks %q", rec.Error, tc.reason)
			}
			var exit *sm.Exit
			var got *sm.Process
			if rec.Result != nil {
				exit, got = rec.Result.Exit, rec.Result.Process
			}
			switch {
			case tc.exit == "" && exit != nil:
				t.Errorf("recorded exit %+v, want none", exit)
			case tc.exit == "unknown" && (exit == nil || exit.Code != nil || exit.Reason == "" || !plan.UnknownExit):
				t.Errorf("exit %+v (unknown=%v), want unknown with a reason", exit, plan.UnknownExit)
			case tc.exit != "" && tc.exit != "unknown" && (exit == nil || exit.Code == nil || strconv.Itoa(*exit.Code) != tc.exit || plan.UnknownExit):
				t.Errorf("exit %+v, want code %s", exit, tc.exit)
			}
			if (got == nil) != (tc.result == nil) || (got != nil && got.PID != tc.result.PID) {
				t.Errorf("recorded process %+v, want %+v", got, tc.result)
			}
		})
	}
}

// noRecord marks a row whose plan records nothing; uncertain one whose
// plan decides nothing because an observation failed.
const (
	noRecord  sm.State = "<no record>"
	uncertain sm.State = "<uncertain>"
)

func TestFactOf(t *testing.T) {
	if FactOf(true, nil) != Yes || FactOf(false, nil) != No || FactOf(true, errors.New("x")) != Unknown || FactOf(false, errors.New("x")) != Unknown {
		t.Fatal("FactOf maps wrongly")
	}
}
