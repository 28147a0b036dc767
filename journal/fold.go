package journal

import (
	"fmt"
	"time"

	sm "github.com/cairn-run/cairn/statemachine"
)

// Apply is the container fold: it folds one record of a container into the
// view of that container. prev is nil when the journal knows no such
// container; a nil result means the container is gone from the view
// (removed, or its create failed). Apply is pure: it validates before it
// builds, and never modifies prev. It refuses a record of another kind of
// object (ErrInconsistent).
func Apply(prev *sm.Container, rec sm.Record) (*sm.Container, error) {
	rec = rec.Normalized()
	if err := validateObject(rec, sm.ObjectContainer); err != nil {
		return nil, fmt.Errorf("record %d (%s %s of %s): %w", rec.Seq, rec.Kind, rec.Event, rec.Key(), err)
	}
	if err := validate(prev, rec); err != nil {
		return nil, fmt.Errorf("record %d (%s %s of %s): %w", rec.Seq, rec.Kind, rec.Event, rec.Container, err)
	}
	if rec.Kind == sm.KindIntent && rec.Event == sm.EventCreate {
		return created(rec), nil
	}
	if prev == nil {
		return nil, nil // a reconciliation of leftovers; validate allowed it
	}
	// A shallow copy: Apply replaces the pointer fields it changes and never
	// writes through the ones it shares with prev (command, env, args), so
	// prev stays as it was. Views handed out of the journal are Clones.
	next := *prev
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
		TTY: a.TTY, OpenStdin: a.OpenStdin, StdinOnce: a.StdinOnce, LogMaxSize: a.LogMaxSize, LogMaxFiles: a.LogMaxFiles,
		State:   sm.StateNone,
		Pending: &sm.Pending{Seq: rec.Seq, Event: rec.Event, From: rec.From, To: rec.To, Args: rec.Args},
		Seq:     rec.Seq,
	}
	c = c.Clone()
	return &c
}

// applyResult records what the side effects produced: an exit ends the
// current process, a new process starts a run. The process and exit of an
// exec session (rec.Exec set) are the exec's, never the container's own.
func applyResult(c *sm.Container, rec sm.Record) {
	if rec.Result == nil || rec.Exec != "" || rec.Object != sm.ObjectContainer {
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

// folds are the fold of each kind of object that has one, applied to the
// batch being committed or replayed: containers and exec sessions
// (fold_exec.go); a kind that gains journaled objects adds its fold here.
var folds = map[sm.ObjectKind]func(b *batchView, rec sm.Record) error{
	sm.ObjectContainer: (*batchView).foldContainer,
	sm.ObjectExec:      (*batchView).foldExec,
}

// validateObject checks that rec (normalized) names an object of kind want
// coherently.
func validateObject(rec sm.Record, want sm.ObjectKind) error {
	switch {
	case !rec.Object.Known():
		return fmt.Errorf("unknown object kind %q: %w", rec.Object, ErrInconsistent)
	case rec.Object != want:
		return fmt.Errorf("a record of a %s is not a %s's: %w", rec.Object, want, ErrInconsistent)
	case rec.ObjectID == "":
		return fmt.Errorf("no object id: %w", ErrInconsistent)
	case rec.Object == sm.ObjectContainer && rec.ObjectID != rec.Container:
		return fmt.Errorf("container record of object %q concerns container %q: %w", rec.ObjectID, rec.Container, ErrInconsistent)
	case rec.Object == sm.ObjectExec && (rec.Exec != rec.ObjectID || rec.Container == ""):
		return fmt.Errorf("exec record of object %q names exec %q in container %q: %w", rec.ObjectID, rec.Exec, rec.Container, ErrInconsistent)
	}
	return nil
}
