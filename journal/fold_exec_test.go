package journal

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	sm "github.com/cairn-run/cairn/statemachine"
)

// runningContainer appends the create and start of container id.
func runningContainer(t testing.TB, j *Journal, id string) {
	t.Helper()
	transition(t, j, id, sm.EventCreate, sm.StateNone, sm.StateCreated, createArgs(""), nil)
	transition(t, j, id, sm.EventStart, sm.StateCreated, sm.StateRunning, nil, &sm.Result{Process: &sm.Process{PID: 10, StartTime: 1, ShimPID: 9, ShimStartTime: 2}})
}

// execTransition appends an exec session's INTENT and its outcome.
func execTransition(t testing.TB, j *Journal, container, id string, ev sm.Event, from, to sm.State, kind sm.Kind, args *sm.Args, res *sm.Result) {
	t.Helper()
	intent := sm.ExecRecord(sm.KindIntent, container, id, ev, from, to)
	intent.Args = args
	got := mustAppend(t, j, intent)
	out := sm.ExecRecord(kind, container, id, ev, from, to)
	if kind == sm.KindFailed {
		out.To = from
	}
	out.Intent, out.Result = got.Seq, res
	mustAppend(t, j, out)
}

func TestApplyExec_Table(t *testing.T) {
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	running := &sm.Exec{ID: "e1", Container: "c1", State: sm.StateRunning, Seq: 3, Process: &sm.Process{PID: 5}}
	pendingExit := &sm.Exec{ID: "e1", Container: "c1", State: sm.StateRunning, Seq: 4, Process: &sm.Process{PID: 5},
		Pending: &sm.Pending{Seq: 4, Event: sm.EventExecExit, From: sm.StateRunning, To: sm.StateExited}}
	rec := func(kind sm.Kind, ev sm.Event, from, to sm.State) sm.Record {
		r := sm.ExecRecord(kind, "c1", "e1", ev, from, to)
		r.Seq, r.Time = 9, at
		return r
	}
	for _, tc := range []struct {
		name  string
		prev  *sm.Exec
		rec   sm.Record
		want  func(*sm.Exec) bool
		wrong bool
	}{
		{name: "intent starts a view", rec: func() sm.Record {
			r := rec(sm.KindIntent, sm.EventExec, sm.StateNone, sm.StateRunning)
			r.Args = &sm.Args{Command: []string{"id"}, User: "nobody", TTY: true}
			return r
		}(), want: func(x *sm.Exec) bool {
			return x.State == sm.StateNone && x.Pending != nil && x.User == "nobody" && x.TTY && x.CreatedAt.Equal(at)
		}},
		{name: "intent without args", rec: rec(sm.KindIntent, sm.EventExec, sm.StateNone, sm.StateRunning), wrong: true},
		{name: "second start", prev: running, rec: func() sm.Record {
			r := rec(sm.KindIntent, sm.EventExec, sm.StateNone, sm.StateRunning)
			r.Args = &sm.Args{}
			return r
		}(), wrong: true},
		{name: "exit intent", prev: running, rec: rec(sm.KindIntent, sm.EventExecExit, sm.StateRunning, sm.StateExited),
			want: func(x *sm.Exec) bool { return x.Pending != nil && x.State == sm.StateRunning }},
		{name: "exit done", prev: pendingExit, rec: func() sm.Record {
			r := rec(sm.KindDone, sm.EventExecExit, sm.StateRunning, sm.StateExited)
			r.Intent, r.Result = 4, &sm.Result{Exit: sm.ExitCode(3, at)}
			return r
		}(), want: func(x *sm.Exec) bool {
			return x.State == sm.StateExited && x.Process == nil && *x.Exit.Code == 3 && x.FinishedAt.Equal(at) && x.Pending == nil
		}},
		{name: "done of another intent", prev: pendingExit, rec: func() sm.Record {
			r := rec(sm.KindDone, sm.EventExecExit, sm.StateRunning, sm.StateExited)
			r.Intent = 3
			return r
		}(), wrong: true},
		{name: "unknown session", rec: rec(sm.KindDone, sm.EventExecExit, sm.StateRunning, sm.StateExited), wrong: true},
		{name: "record of a container", prev: running, rec: sm.Record{Kind: sm.KindIntent, Container: "c1", Event: sm.EventExecExit}, wrong: true},
		{name: "exec id differs", prev: running, rec: func() sm.Record {
			r := rec(sm.KindIntent, sm.EventExecExit, sm.StateRunning, sm.StateExited)
			r.Exec = "e2"
			return r
		}(), wrong: true},
		{name: "rolled back", prev: &sm.Exec{ID: "e1", Container: "c1", Pending: &sm.Pending{Seq: 2, Event: sm.EventExec}}, rec: func() sm.Record {
			r := rec(sm.KindReconciled, sm.EventExec, sm.StateNone, sm.StateNone)
			r.Intent = 2
			return r
		}(), want: func(x *sm.Exec) bool { return x == nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before sm.Exec
			if tc.prev != nil {
				before = tc.prev.Clone()
			}
			got, err := ApplyExec(tc.prev, tc.rec)
			if tc.wrong {
				if !errors.Is(err, ErrInconsistent) {
					t.Fatalf("got %+v %v, want ErrInconsistent", got, err)
				}
				return
			}
			if err != nil || !tc.want(got) {
				t.Fatalf("got %+v %v", got, err)
			}
			if tc.prev != nil && !reflect.DeepEqual(before, *tc.prev) {
				t.Fatal("ApplyExec changed prev")
			}
		})
	}
}

func TestFoldExec_LivesInARunningContainerAndGoesWithIt(t *testing.T) {
	j := openTemp(t)
	runningContainer(t, j, "c1")
	at := time.Now().UTC()
	execTransition(t, j, "c1", "e1", sm.EventExec, sm.StateNone, sm.StateRunning, sm.KindDone, &sm.Args{Command: []string{"sh"}},
		&sm.Result{Process: &sm.Process{PID: 20, StartTime: 3, StartedAt: at}})
	execTransition(t, j, "c1", "e2", sm.EventExec, sm.StateNone, sm.StateRunning, sm.KindFailed, &sm.Args{Command: []string{"nosuch"}}, nil)
	if x, ok := j.Exec("e1"); !ok || x.State != sm.StateRunning || x.Process.PID != 20 || !x.StartedAt.Equal(at) {
		t.Fatalf("e1 = %+v %v", x, ok)
	}
	if _, ok := j.Exec("e2"); ok {
		t.Fatal("a failed start left a view")
	}
	bad := sm.ExecRecord(sm.KindIntent, "nosuchcontainer", "e3", sm.EventExec, sm.StateNone, sm.StateRunning)
	bad.Args = &sm.Args{Command: []string{"sh"}}
	if _, err := j.Append(bad); !errors.Is(err, ErrInconsistent) {
		t.Fatalf("exec in an unknown container: %v", err)
	}
	if got := j.Execs("c1"); len(got) != 1 || got[0].ID != "e1" {
		t.Fatalf("Execs(c1) = %+v", got)
	}
	if id, err := j.ResolveExec("e1"); err != nil || id != "e1" {
		t.Fatalf("ResolveExec: %q %v", id, err)
	}
	// Reopened, the views are the fold of the journal.
	path := j.Path()
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if x, ok := j.Exec("e1"); !ok || x.Process.PID != 20 {
		t.Fatalf("after reopen e1 = %+v %v", x, ok)
	}
	// Removing the container removes its sessions.
	transition(t, j, "c1", sm.EventForceRemove, sm.StateRunning, sm.StateRemoved, nil, nil)
	if _, ok := j.Exec("e1"); ok || len(j.Execs("")) != 0 {
		t.Fatal("a removed container's exec session stayed")
	}
	if err := j.Verify(); err != nil {
		t.Fatal(err)
	}
}

func TestFoldExec_KeepsTheNewestExitedSessions(t *testing.T) {
	j, err := Open(filepath.Join(t.TempDir(), "cairn.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	runningContainer(t, j, "c1")
	now := time.Now().UTC()
	for i := range maxExitedExecs + 5 {
		id := fmt.Sprintf("e%03d", i)
		execTransition(t, j, "c1", id, sm.EventExec, sm.StateNone, sm.StateRunning, sm.KindDone, &sm.Args{Command: []string{"true"}},
			&sm.Result{Process: &sm.Process{PID: 100 + i}})
		execTransition(t, j, "c1", id, sm.EventExecExit, sm.StateRunning, sm.StateExited, sm.KindDone, &sm.Args{Exit: sm.ExitCode(0, now)},
			&sm.Result{Exit: sm.ExitCode(0, now)})
	}
	execs := j.Execs("c1")
	if len(execs) != maxExitedExecs {
		t.Fatalf("%d sessions kept, want %d", len(execs), maxExitedExecs)
	}
	if _, ok := j.Exec("e000"); ok {
		t.Error("the oldest session was kept")
	}
	if _, ok := j.Exec(fmt.Sprintf("e%03d", maxExitedExecs+4)); !ok {
		t.Error("the newest session was dropped")
	}
	if err := j.Verify(); err != nil {
		t.Fatal(err)
	}
}
