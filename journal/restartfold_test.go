package journal

import (
	"testing"
	"time"

	sm "github.com/cairn-run/cairn/statemachine"
)

// foldAll folds recs (numbered from 1) with Apply, as the journal does.
func foldAll(t *testing.T, recs []sm.Record) *sm.Container {
	t.Helper()
	var c *sm.Container
	for i, r := range recs {
		r.Seq = uint64(i + 1)
		if r.Intent != 0 {
			r.Intent = uint64(i) // the intent right before
		}
		next, err := Apply(c, r)
		if err != nil {
			t.Fatal(err)
		}
		c = next
	}
	return c
}

func TestApply_RestartPolicyFold(t *testing.T) {
	const id = "c"
	now := time.Now().UTC()
	proc := &sm.Process{PID: 1, StartTime: 2, StartedAt: now}
	exit := sm.ExitCode(1, now.Add(time.Second))
	always := &sm.RestartPolicy{Name: sm.RestartAlways}
	create := []sm.Record{
		{Kind: sm.KindIntent, Container: id, Event: sm.EventCreate, To: sm.StateCreated, Args: &sm.Args{Image: "i", Command: []string{"x"}, RestartPolicy: always}},
		{Kind: sm.KindDone, Container: id, Event: sm.EventCreate, To: sm.StateCreated, Intent: 1},
		{Kind: sm.KindIntent, Container: id, Event: sm.EventStart, From: sm.StateCreated, To: sm.StateRunning, Args: &sm.Args{ResetRestarts: true}},
		{Kind: sm.KindDone, Container: id, Event: sm.EventStart, From: sm.StateCreated, To: sm.StateRunning, Intent: 1, Result: &sm.Result{Process: proc}},
		{Kind: sm.KindIntent, Container: id, Event: sm.EventExit, From: sm.StateRunning, To: sm.StateStopped, Args: &sm.Args{Exit: exit}},
		{Kind: sm.KindDone, Container: id, Event: sm.EventExit, From: sm.StateRunning, To: sm.StateStopped, Intent: 1, Result: &sm.Result{Exit: exit}},
	}
	policyRestart := sm.Record{Kind: sm.KindIntent, Container: id, Event: sm.EventPolicyRestart, From: sm.StateStopped, To: sm.StateRunning,
		Args: &sm.Args{RestartCount: 4, RestartDelay: sm.Duration(800 * time.Millisecond)}}
	cases := []struct {
		name  string
		tail  []sm.Record
		count int
		delay time.Duration
		user  bool
	}{
		{"created with its policy", nil, 0, 0, false},
		{"policy restart done: count and delay from the intent", []sm.Record{policyRestart,
			{Kind: sm.KindDone, Container: id, Event: sm.EventPolicyRestart, From: sm.StateStopped, To: sm.StateRunning, Intent: 1, Result: &sm.Result{Process: proc}}}, 4, 800 * time.Millisecond, false},
		{"policy restart failed: counts nothing", []sm.Record{policyRestart,
			{Kind: sm.KindFailed, Container: id, Event: sm.EventPolicyRestart, From: sm.StateStopped, To: sm.StateStopped, Intent: 1, Error: "x"}}, 0, 0, false},
		{"policy restart rolled back by recovery: counts nothing", []sm.Record{policyRestart,
			{Kind: sm.KindReconciled, Container: id, Event: sm.EventPolicyRestart, From: sm.StateStopped, To: sm.StateStopped, Intent: 1}}, 0, 0, false},
		{"policy restart rolled forward by recovery: counts", []sm.Record{policyRestart,
			{Kind: sm.KindReconciled, Container: id, Event: sm.EventPolicyRestart, From: sm.StateStopped, To: sm.StateRunning, Intent: 1, Result: &sm.Result{Process: proc}}}, 4, 800 * time.Millisecond, false},
		{"its process ran and exited while cairnd was down: counts", []sm.Record{policyRestart,
			{Kind: sm.KindReconciled, Container: id, Event: sm.EventPolicyRestart, From: sm.StateStopped, To: sm.StateStopped, Intent: 1, Result: &sm.Result{Exit: exit}}}, 4, 800 * time.Millisecond, false},
		{"user start resets", []sm.Record{policyRestart,
			{Kind: sm.KindDone, Container: id, Event: sm.EventPolicyRestart, From: sm.StateStopped, To: sm.StateRunning, Intent: 1, Result: &sm.Result{Process: proc}},
			{Kind: sm.KindIntent, Container: id, Event: sm.EventStop, From: sm.StateRunning, To: sm.StateStopped, Args: &sm.Args{UserStop: true}},
			{Kind: sm.KindDone, Container: id, Event: sm.EventStop, From: sm.StateRunning, To: sm.StateStopped, Intent: 1, Result: &sm.Result{Exit: exit}},
			{Kind: sm.KindIntent, Container: id, Event: sm.EventStart, From: sm.StateStopped, To: sm.StateRunning, Args: &sm.Args{ResetRestarts: true}},
			{Kind: sm.KindDone, Container: id, Event: sm.EventStart, From: sm.StateStopped, To: sm.StateRunning, Intent: 1, Result: &sm.Result{Process: proc}}}, 0, 0, false},
		{"user stop marks", []sm.Record{
			{Kind: sm.KindIntent, Container: id, Event: sm.EventStart, From: sm.StateStopped, To: sm.StateRunning, Args: &sm.Args{ResetRestarts: true}},
			{Kind: sm.KindDone, Container: id, Event: sm.EventStart, From: sm.StateStopped, To: sm.StateRunning, Intent: 1, Result: &sm.Result{Process: proc}},
			{Kind: sm.KindIntent, Container: id, Event: sm.EventKill, From: sm.StateRunning, To: sm.StateRunning, Args: &sm.Args{Signal: "KILL", UserStop: true}},
			{Kind: sm.KindReconciled, Container: id, Event: sm.EventKill, From: sm.StateRunning, To: sm.StateStopped, Intent: 1, Result: &sm.Result{Exit: exit}}}, 0, 0, true},
		{"a policy restart (always, at daemon start) spends a user's stop", []sm.Record{
			{Kind: sm.KindIntent, Container: id, Event: sm.EventCancelRestart, From: sm.StateStopped, To: sm.StateStopped, Args: &sm.Args{UserStop: true}},
			{Kind: sm.KindDone, Container: id, Event: sm.EventCancelRestart, From: sm.StateStopped, To: sm.StateStopped, Intent: 1},
			policyRestart,
			{Kind: sm.KindDone, Container: id, Event: sm.EventPolicyRestart, From: sm.StateStopped, To: sm.StateRunning, Intent: 1, Result: &sm.Result{Process: proc}}}, 4, 800 * time.Millisecond, false},
		{"a stop by the daemon does not", []sm.Record{
			{Kind: sm.KindIntent, Container: id, Event: sm.EventStart, From: sm.StateStopped, To: sm.StateRunning, Args: &sm.Args{ResetRestarts: true}},
			{Kind: sm.KindDone, Container: id, Event: sm.EventStart, From: sm.StateStopped, To: sm.StateRunning, Intent: 1, Result: &sm.Result{Process: proc}},
			{Kind: sm.KindIntent, Container: id, Event: sm.EventStop, From: sm.StateRunning, To: sm.StateStopped, Args: &sm.Args{Timeout: 1}},
			{Kind: sm.KindDone, Container: id, Event: sm.EventStop, From: sm.StateRunning, To: sm.StateStopped, Intent: 1, Result: &sm.Result{Exit: exit}}}, 0, 0, false},
		{"a restart of a journal from before restart policies counts one", []sm.Record{
			{Kind: sm.KindIntent, Container: id, Event: sm.EventRestart, From: sm.StateStopped, To: sm.StateRunning, Args: &sm.Args{Timeout: 1}},
			{Kind: sm.KindDone, Container: id, Event: sm.EventRestart, From: sm.StateStopped, To: sm.StateRunning, Intent: 1, Result: &sm.Result{Process: proc}}}, 1, 0, false},
	}
	for _, tc := range cases {
		c := foldAll(t, append(append([]sm.Record{}, create...), tc.tail...))
		if c.RestartPolicy != *always || c.RestartCount != tc.count || time.Duration(c.RestartDelay) != tc.delay || c.UserStopped != tc.user {
			t.Errorf("%s: policy %v count %d delay %v user-stopped %v; want count %d delay %v user-stopped %v",
				tc.name, c.RestartPolicy, c.RestartCount, time.Duration(c.RestartDelay), c.UserStopped, tc.count, tc.delay, tc.user)
		}
	}
	// A new policy, journaled, replaces the old one.
	set := sm.Record{Kind: sm.KindIntent, Container: id, Event: sm.EventSetRestartPolicy, From: sm.StateStopped, To: sm.StateStopped, Args: &sm.Args{RestartPolicy: &sm.RestartPolicy{Name: sm.RestartOnFailure, MaxRetries: 2}}}
	c := foldAll(t, append(append([]sm.Record{}, create...), set, sm.Record{Kind: sm.KindDone, Container: id, Event: sm.EventSetRestartPolicy, From: sm.StateStopped, To: sm.StateStopped, Intent: 1}))
	if c.RestartPolicy.String() != "on-failure:2" || c.State != sm.StateStopped {
		t.Fatalf("after set-restart-policy: %+v", c)
	}
}
