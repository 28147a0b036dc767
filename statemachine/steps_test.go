package statemachine

import (
	"slices"
	"strings"
	"testing"
)

func names(steps []step) string {
	var out []string
	for _, s := range steps {
		out = append(out, s.name)
	}
	return strings.Join(out, ",")
}

func TestStepsOf_EveryLegalTransition(t *testing.T) {
	want := map[Event]map[State]string{
		EventCreate:      {StateNone: "layers"},
		EventStart:       {StateCreated: "mount,exec", StateStopped: "mount,exec"},
		EventStop:        {StateRunning: "signal,exit,release", StatePaused: "signal,exit,release"},
		EventPause:       {StateRunning: "freeze"},
		EventUnpause:     {StatePaused: "thaw"},
		EventRestart:     {StateRunning: "signal,exit,release,mount,exec", StatePaused: "signal,exit,release,mount,exec", StateStopped: "mount,exec", StateCreated: "mount,exec"},
		EventKill:        {StateRunning: "signal"},
		EventRemove:      {StateCreated: "files", StateStopped: "files"},
		EventForceRemove: {StateCreated: "files", StateStopped: "files", StateRunning: "kill,release,files", StatePaused: "kill,release,files"},
		EventExit:        {StateRunning: "release", StatePaused: "release"},
		EventUpdate:      {StateRunning: "cgroup", StatePaused: "cgroup", StateCreated: "", StateStopped: ""},
		// A policy restart starts the stopped container as a start does;
		// a new policy is only a record.
		EventPolicyRestart:    {StateStopped: "mount,exec"},
		EventCancelRestart:    {StateStopped: ""},
		EventSetRestartPolicy: {StateCreated: "", StateRunning: "", StatePaused: "", StateStopped: ""},
	}
	for _, ev := range events {
		for _, from := range states {
			if _, err := Target(from, ev); err != nil {
				continue
			}
			w, ok := want[ev][from]
			if !ok {
				t.Errorf("%s from %q is legal but has no expected steps in this test", ev, from)
				continue
			}
			if got := names(stepsOf(ev, from)); got != w {
				t.Errorf("%s from %q: steps %s, want %s", ev, from, got, w)
			}
		}
	}
}

func TestHalts_OnlyTransitionsThatWaitForAnExit(t *testing.T) {
	cases := []struct {
		ev   Event
		from State
		want bool
	}{
		{EventStop, StateRunning, true}, {EventStop, StatePaused, true},
		{EventRestart, StateRunning, true}, {EventRestart, StateStopped, false},
		{EventForceRemove, StatePaused, true}, {EventForceRemove, StateStopped, false},
		{EventStart, StateCreated, false}, {EventKill, StateRunning, false}, {EventExit, StateRunning, false},
	}
	for _, tc := range cases {
		if got := halts(tc.ev, tc.from); got != tc.want {
			t.Errorf("halts(%s, %s) = %v, want %v", tc.ev, tc.from, got, tc.want)
		}
	}
}

func TestCrashPoints_FollowTheStepsAndKeepTheNamesOfBefore(t *testing.T) {
	points := CrashPoints()
	// The names drills and operators used before steps became data.
	for _, old := range []string{
		"create.after-layers", "start.after-mount", "start.after-exec", "restart.after-signal", "restart.after-mount",
		"restart.after-exec", "stop.after-signal", "pause.after-freeze", "force-remove.after-kill",
		"force-remove.after-files", "remove.after-files", "exit.after-intent", "exit.before-done", "kill.after-done",
	} {
		if !slices.Contains(points, old) {
			t.Errorf("crash point %s is gone", old)
		}
	}
	for _, p := range points {
		if strings.Count(p, ".") != 1 {
			t.Errorf("crash point %q is not <event>.<point>", p)
		}
	}
	sorted := slices.Clone(points)
	slices.Sort(sorted)
	if len(slices.Compact(sorted)) != len(points) {
		t.Errorf("duplicate crash points in %v", points)
	}
}
