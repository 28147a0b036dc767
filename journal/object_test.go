package journal

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	sm "github.com/cairn-run/cairn/statemachine"
)

func TestRecord_SchemaOneJSONIsAContainerRecord(t *testing.T) {
	v1 := []byte(`{"seq":0,"kind":"DONE","time":"2026-12-01T21:31:27.9Z","container":"abc","event":"start","from":"created","to":"running","intent":7,"result":{"process":{"pid":42,"start_time":1,"shim_pid":2,"shim_start_time":3,"started_at":"2026-12-01T21:31:27.9Z"}}}`)
	rec, err := decodeRecord(seqKey(8), v1)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Object != sm.ObjectContainer || rec.ObjectID != "abc" || rec.Exec != "" || rec.Key() != "container/abc" || rec.Seq != 8 || rec.Result.Process.PID != 42 {
		t.Fatalf("schema 1 record read as %+v", rec)
	}
	// A new container record names its kind, and leaves out the object id
	// that equals its container.
	data, err := encodeRecord(sm.Record{Kind: sm.KindDone, Container: "abc", Event: sm.EventStart})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte(`"object":"container"`)) || bytes.Contains(data, []byte("object_id")) {
		t.Fatalf("stored form %s", data)
	}
	back, err := decodeRecord(seqKey(1), data)
	if err != nil || back.ObjectID != "abc" {
		t.Fatalf("round trip: %+v %v", back, err)
	}
}

func TestAppend_RecordOfAKindWithoutAFoldIsRefused(t *testing.T) {
	j := openTemp(t)
	transition(t, j, "c1", sm.EventCreate, sm.StateNone, sm.StateCreated, createArgs("web"), nil)
	before := j.LastSeq()
	cases := map[string]sm.Record{
		"image":           {Kind: sm.KindIntent, Object: sm.ObjectImage, ObjectID: "busybox", Container: "c1", Event: sm.EventCreate, Args: createArgs("")},
		"volume":          {Kind: sm.KindIntent, Object: sm.ObjectVolume, ObjectID: "v", Container: "c1", Event: sm.EventCreate, Args: createArgs("")},
		"unknown kind":    {Kind: sm.KindIntent, Object: "bogus", ObjectID: "x", Container: "c1", Event: sm.EventStart},
		"other object id": {Kind: sm.KindIntent, Object: sm.ObjectContainer, ObjectID: "c2", Container: "c1", Event: sm.EventStart, From: sm.StateCreated, To: sm.StateRunning},
		"sandbox":         {Kind: sm.KindReconciled, Object: sm.ObjectSandbox, ObjectID: "s", Container: "c1", To: sm.StateRemoved},
		"netattach":       {Kind: sm.KindDone, Object: sm.ObjectNetAttach, ObjectID: "n", Container: "c1"},
	}
	for name, rec := range cases {
		if _, err := j.Append(rec); !errors.Is(err, ErrInconsistent) {
			t.Errorf("%s: got %v, want ErrInconsistent", name, err)
		}
	}
	if j.LastSeq() != before {
		t.Fatalf("refused records advanced the journal from %d to %d", before, j.LastSeq())
	}
	if err := j.Verify(); err != nil {
		t.Fatal(err)
	}
}

func TestApply_AnExecsProcessAndExitAreNeverTheContainers(t *testing.T) {
	started := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	prev := &sm.Container{ID: "c1", State: sm.StateRunning, Seq: 5, StartedAt: started,
		Process: &sm.Process{PID: 42, StartTime: 7, StartedAt: started},
		Pending: &sm.Pending{Seq: 6, Event: sm.EventPause, From: sm.StateRunning, To: sm.StatePaused}}
	later := started.Add(time.Minute)
	execResult := &sm.Result{Process: &sm.Process{PID: 99, StartedAt: later}, Exit: sm.ExitCode(1, later)}

	// A container record about an exec session inside it.
	next, err := Apply(prev, sm.Record{Seq: 7, Kind: sm.KindDone, Container: "c1", Exec: "e1", Event: sm.EventPause,
		From: sm.StateRunning, To: sm.StatePaused, Intent: 6, Result: execResult})
	if err != nil {
		t.Fatal(err)
	}
	if next.Process == nil || next.Process.PID != 42 || next.Exit != nil || !next.StartedAt.Equal(started) || !next.FinishedAt.IsZero() {
		t.Fatalf("the exec's result became the container's: process %+v exit %+v", next.Process, next.Exit)
	}
	// The same result on the container's own record is the container's.
	own, err := Apply(prev, sm.Record{Seq: 7, Kind: sm.KindDone, Container: "c1", Event: sm.EventPause,
		From: sm.StateRunning, To: sm.StatePaused, Intent: 6, Result: &sm.Result{Process: execResult.Process}})
	if err != nil || own.Process.PID != 99 {
		t.Fatalf("control: %+v %v", own, err)
	}
	// A record of the exec itself is refused by the container fold.
	_, err = Apply(prev, sm.Record{Seq: 7, Kind: sm.KindDone, Object: sm.ObjectExec, ObjectID: "e1", Exec: "e1", Container: "c1",
		Event: sm.EventPause, To: sm.StatePaused, Intent: 6, Result: execResult})
	if !errors.Is(err, ErrInconsistent) || !strings.Contains(err.Error(), "exec") {
		t.Fatalf("exec record folded into its container: %v", err)
	}
	if prev.Process.PID != 42 || prev.Pending == nil {
		t.Fatal("Apply modified prev")
	}
}
