package statemachine

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/cairn-run/cairn/internal/errdefs"
)

func TestExecTarget_RuleTable(t *testing.T) {
	for _, tc := range []struct {
		from  State
		event Event
		to    State
		ok    bool
	}{
		{StateNone, EventExec, StateRunning, true},
		{StateRunning, EventExecExit, StateExited, true},
		{StateRunning, EventExec, StateRunning, false},
		{StateExited, EventExecExit, StateExited, false},
		{StateExited, EventExec, StateExited, false},
		{StateNone, EventExecExit, StateNone, false},
		{StateRunning, EventStart, StateRunning, false},
	} {
		to, err := ExecTarget(tc.from, tc.event)
		if tc.ok != (err == nil) || to != tc.to {
			t.Errorf("%s from %q: %q %v", tc.event, tc.from, to, err)
		}
		if err != nil && !errors.Is(err, errdefs.ErrFailedPrecondition) {
			t.Errorf("%s from %q: %v is not FailedPrecondition", tc.event, tc.from, err)
		}
	}
}

func TestValidateExec(t *testing.T) {
	ok := ExecRequest{Container: "c", Command: []string{"sh"}}
	with := func(f func(*ExecRequest)) ExecRequest { r := ok; f(&r); return r }
	for name, tc := range map[string]struct {
		req  ExecRequest
		want bool
	}{
		"a command":             {ok, true},
		"user and workdir":      {with(func(r *ExecRequest) { r.User, r.Workdir = "nobody:nogroup", "/tmp" }), true},
		"no command":            {with(func(r *ExecRequest) { r.Command = nil }), false},
		"an empty command":      {with(func(r *ExecRequest) { r.Command = []string{""} }), false},
		"a relative workdir":    {with(func(r *ExecRequest) { r.Workdir = "tmp" }), false},
		"a NUL in the workdir":  {with(func(r *ExecRequest) { r.Workdir = "/t\x00" }), false},
		"two colons in a user":  {with(func(r *ExecRequest) { r.User = "a:b:c" }), false},
		"a newline in a user":   {with(func(r *ExecRequest) { r.User = "a\nb" }), false},
		"an overlong user":      {with(func(r *ExecRequest) { r.User = strings.Repeat("u", MaxUserBytes+1) }), false},
		"detached with stdin":   {with(func(r *ExecRequest) { r.Detach, r.Stdin = true, true }), false},
		"an env entry with NUL": {with(func(r *ExecRequest) { r.Env = []string{"A=\x00"} }), false},
	} {
		err := ValidateExec(tc.req)
		if tc.want != (err == nil) {
			t.Errorf("%s: %v", name, err)
		}
		if err != nil && !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: %v is not InvalidArgument", name, err)
		}
	}
}

func TestExecAllowed_OnlyInARunningContainer(t *testing.T) {
	for st, want := range map[State]bool{StateRunning: true, StatePaused: false, StateStopped: false, StateCreated: false, StateNone: false} {
		err := execAllowed(Container{ID: "c", State: st})
		if want != (err == nil) || (err != nil && !errors.Is(err, errdefs.ErrFailedPrecondition)) {
			t.Errorf("%q: %v", st, err)
		}
	}
}

func TestExecCrashPoints_FollowTheSteps(t *testing.T) {
	want := []string{"exec.after-intent", "exec.after-start", "exec.before-done", "exec.after-done",
		"exec-exit.after-intent", "exec-exit.after-release", "exec-exit.before-done", "exec-exit.after-done"}
	if got := ExecCrashPoints(); !slices.Equal(got, want) {
		t.Fatalf("%v", got)
	}
	all := CrashPoints()
	for _, p := range want {
		if !slices.Contains(all, p) {
			t.Errorf("%s is not in CrashPoints", p)
		}
	}
}
