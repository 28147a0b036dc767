package journal

import (
	"fmt"
	"time"

	sm "github.com/cairn-run/cairn/statemachine"
)

// Apply folds one record into the view of its container. prev is nil when
// the journal knows no such container; a nil result means the container is
// gone from the view (removed, or its create failed). Apply is pure: it
// validates before it builds, and never modifies prev.
func Apply(prev *sm.Container, rec sm.Record) (*sm.Container, error) {
	if err := validate(prev, rec); err != nil {
		return nil, fmt.Errorf("record %d (%s %s of %s): %w", rec.Seq, rec.Kind, rec.Event, rec.Container, err)
	}
	if rec.Kind == sm.KindIntent && rec.Event == sm.EventCreate {
		return created(rec), nil
	}
	if prev == nil {
		return nil, nil // a reconciliation of leftovers; validate allowed it
	}
	next := prev.Clone()
	next.Seq = rec.Seq
	if rec.Kind == sm.KindIntent {
		next.Pending = &sm.Pending{Seq: rec.Seq, Event: rec.Event, From: rec.From, To: rec.To, Args: rec.Args}
		return &next, nil
	}
	next.Pending = nil
	if next.State == sm.StateNone && rec.Event == sm.EventCreate && rec.To == sm.StateCreated {
		next.CreatedAt = rec.Time
	}
	next.State = rec.To
	applyResult(&next, rec)
	if next.State == sm.StateNone || next.State == sm.StateRemoved {
		return nil, nil
	}
	return &next, nil
}

func created(rec sm.Record) *sm.Container {
	a := rec.Args
	c := sm.Container{
		ID: rec.Container, Name: a.Name, Image: a.Image, Command: a.Command, Env: a.Env,
		Hostname: a.Hostname, MountID: a.MountID, AutoRemove: a.AutoRemove,
		State:   sm.StateNone,
		Pending: &sm.Pending{Seq: rec.Seq, Event: rec.Event, From: rec.From, To: rec.To, Args: rec.Args},
		Seq:     rec.Seq,
	}
	c = c.Clone()
	return &c
}

// applyResult records what the side effects produced: an exit ends the
// current process, a new process starts a run.
func applyResult(c *sm.Container, rec sm.Record) {
	if rec.Result == nil {
		return
	}
	if e := rec.Result.Exit; e != nil {
		exit := *e
		if e.Code != nil {
			code := *e.Code
			exit.Code = &code
		}
		c.Exit = &exit
		c.Process = nil
		c.FinishedAt = e.FinishedAt
	}
	if p := rec.Result.Process; p != nil {
		proc := *p
		c.Process = &proc
		c.Exit = nil
		c.StartedAt = p.StartedAt
		c.FinishedAt = time.Time{}
		if rec.Event == sm.EventRestart && rec.From != sm.StateCreated {
			c.RestartCount++
		}
	}
}
