package journal

import (
	"fmt"
	"time"

	"github.com/cairn-run/cairn/internal/imageref"
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
	applyRestart(&next, prev.Pending, rec)
	if next.State == sm.StateNone || next.State == sm.StateRemoved {
		return nil, nil
	}
	return &next, nil
}

func created(rec sm.Record) *sm.Container {
	a := rec.Args
	c := sm.Container{
		ID: rec.Container, Name: a.Name, Image: a.Image, Command: a.Command, Env: a.Env,
		Hostname: a.Hostname, MountID: a.MountID, AutoRemove: a.AutoRemove, ImageID: a.ImageID, Config: a.Config, Mounts: a.Mounts,
		TTY: a.TTY, OpenStdin: a.OpenStdin, StdinOnce: a.StdinOnce, LogMaxSize: a.LogMaxSize, LogMaxFiles: a.LogMaxFiles,
		RestartPolicy: derefPolicy(a.RestartPolicy),
		State:         sm.StateNone,
		Pending:       &sm.Pending{Seq: rec.Seq, Event: rec.Event, From: rec.From, To: rec.To, Args: rec.Args},
		Seq:           rec.Seq,
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
	if r := rec.Result.Resources; r != nil {
		// A copy of the config: prev shares the old one.
		var cfg sm.ContainerConfig
		if c.Config != nil {
			cfg = c.Config.Clone()
		}
		cfg.Resources = r.Clone()
		c.Config = &cfg
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
	}
}

// applyRestart folds what a finished intent p says about restarts. A
// user's stop or kill (its intent says UserStop) marks the container
// user-stopped; a stop cairnd made at shutdown does not. A user's start or
// restart (ResetRestarts) that started a process clears the mark and
// starts counting again, as Docker's does; a restart recorded before
// restart policies existed (no ResetRestarts) counts one, as it always
// did, so old journals fold as they did. A policy restart that started a
// process takes its count and delay from its intent, so one that never ran
// counts nothing, and clears a user's stop it overrode (always at daemon
// start). A new policy replaces the old. FAILED changes none of it.
func applyRestart(c *sm.Container, p *sm.Pending, rec sm.Record) {
	if p == nil || rec.Kind == sm.KindFailed || rec.Exec != "" || rec.Object != sm.ObjectContainer {
		return
	}
	a := p.Args
	if a == nil {
		a = &sm.Args{}
	}
	started := rec.Result != nil && rec.Result.Process != nil
	ran := started || rec.Result != nil && rec.Result.Exit != nil
	switch p.Event {
	case sm.EventStop, sm.EventKill, sm.EventCancelRestart:
		if a.UserStop {
			c.UserStopped = true
		}
	case sm.EventStart, sm.EventRestart:
		switch {
		case a.ResetRestarts && ran:
			c.UserStopped, c.RestartCount, c.RestartDelay = false, 0, 0
		case !a.ResetRestarts && started && p.Event == sm.EventRestart && rec.From != sm.StateCreated:
			c.RestartCount++ // a journal written before restart policies
		}
	case sm.EventPolicyRestart:
		if ran {
			// Running again by its policy (always, at daemon start, after
			// a user's stop): that stop is spent.
			c.RestartCount, c.RestartDelay, c.UserStopped = a.RestartCount, a.RestartDelay, false
		}
	case sm.EventSetRestartPolicy:
		if rec.Kind == sm.KindDone {
			c.RestartPolicy = derefPolicy(a.RestartPolicy)
		}
	}
}

func derefPolicy(p *sm.RestartPolicy) sm.RestartPolicy {
	if p == nil {
		return sm.RestartPolicy{}
	}
	return *p
}

// folds are the fold of each kind of object that has one, applied to the
// batch being committed or replayed: containers, exec sessions
// (fold_exec.go) and images. A kind that gains journaled objects adds its
// fold here.
var folds = map[sm.ObjectKind]func(b *batchView, rec sm.Record) error{
	sm.ObjectContainer: (*batchView).foldContainer,
	sm.ObjectExec:      (*batchView).foldExec,
	sm.ObjectImage:     (*batchView).foldImage,
	sm.ObjectNetAttach: (*batchView).foldNetAttach,
	sm.ObjectNetwork:   (*batchView).foldNetwork,
	sm.ObjectVolume:    (*batchView).foldVolume,
}

// ApplyVolume is the volume fold: it folds one record of a volume into the
// view of that volume. prev is nil when the journal has no view of it; a
// nil result means there is none after the record (removed, or a create
// that failed or was rolled back). It is pure and never modifies prev.
func ApplyVolume(prev *sm.VolumeView, rec sm.Record) (*sm.VolumeView, error) {
	rec = rec.Normalized()
	if err := validateVolume(prev, rec); err != nil {
		return nil, fmt.Errorf("record %d (%s %s of %s): %w", rec.Seq, rec.Kind, rec.Event, rec.Key(), err)
	}
	var next sm.VolumeView
	if prev != nil {
		next = prev.Clone()
	} else {
		next = sm.VolumeView{Name: rec.ObjectID, State: sm.StateNone}
	}
	next.Seq = rec.Seq
	if rec.Kind == sm.KindIntent {
		p := sm.Pending{Seq: rec.Seq, Event: rec.Event, From: rec.From, To: rec.To}
		if rec.Args != nil {
			a := *rec.Args
			p.Args = &a
		}
		next.Pending = &p
		next = next.Clone()
		return &next, nil
	}
	created := next.State == sm.StateNone && rec.To == sm.StatePresent
	if created && next.Pending != nil && next.Pending.Args != nil && next.Pending.Args.Volume != nil {
		next.Labels = next.Pending.Args.Volume.Labels
		next.Anonymous = next.Pending.Args.Volume.Anonymous
	}
	next.Pending = nil
	next.State = rec.To
	if next.State != sm.StatePresent {
		return nil, nil // removed, or never created
	}
	if created {
		next.CreatedAt = rec.Time
	}
	next = next.Clone()
	return &next, nil
}

// validateVolume checks that rec, a volume's record, can follow prev.
func validateVolume(prev *sm.VolumeView, rec sm.Record) error {
	if err := validateObject(rec, sm.ObjectVolume); err != nil {
		return err
	}
	switch {
	case sm.ValidateVolumeName(rec.ObjectID) != nil:
		return fmt.Errorf("volume name %.80q is not a volume name: %w", rec.ObjectID, ErrInconsistent)
	case rec.Container != "" || rec.Exec != "":
		return fmt.Errorf("a volume's record names container %.80q: %w", rec.Container, ErrInconsistent)
	case !sm.IsVolumeEvent(rec.Event):
		return fmt.Errorf("%q is not a volume event: %w", rec.Event, ErrInconsistent)
	}
	pending := uint64(0)
	if prev != nil && prev.Pending != nil {
		pending = prev.Pending.Seq
	}
	switch rec.Kind {
	case sm.KindIntent:
		if pending != 0 {
			return fmt.Errorf("intent %d is still pending: %w", pending, ErrInconsistent)
		}
		from := sm.StateNone
		if prev != nil {
			from = prev.State
		}
		if rec.From != from {
			return fmt.Errorf("intent from %q, but the volume is %q: %w", rec.From, from, ErrInconsistent)
		}
	case sm.KindDone, sm.KindFailed:
		if pending == 0 || pending != rec.Intent {
			return fmt.Errorf("finishes intent %d, which is not pending: %w", rec.Intent, ErrInconsistent)
		}
	case sm.KindReconciled:
		if pending == 0 || rec.Intent != pending {
			return fmt.Errorf("reconciles intent %d, but intent %d is pending: %w", rec.Intent, pending, ErrInconsistent)
		}
	default:
		return fmt.Errorf("unknown record kind %q: %w", rec.Kind, ErrInconsistent)
	}
	return nil
}

// ApplyImage is the image fold: it folds one record of an image into the
// view of that image. prev is nil when the journal has no view of it; a
// nil result means the image has none after the record (deleted, or a
// first load that failed). It is pure and never modifies prev.
func ApplyImage(prev *sm.ImageView, rec sm.Record) (*sm.ImageView, error) {
	rec = rec.Normalized()
	if err := validateImage(prev, rec); err != nil {
		return nil, fmt.Errorf("record %d (%s %s of %s): %w", rec.Seq, rec.Kind, rec.Event, rec.Key(), err)
	}
	var next sm.ImageView
	if prev != nil {
		next = prev.Clone()
	} else {
		next = sm.ImageView{ID: rec.ObjectID, State: sm.StateNone}
	}
	next.Seq = rec.Seq
	if rec.Kind == sm.KindIntent {
		p := sm.Pending{Seq: rec.Seq, Event: rec.Event, From: rec.From, To: rec.To}
		if rec.Args != nil {
			a := *rec.Args
			p.Args = &a
		}
		next.Pending = &p
		next = next.Clone()
		return &next, nil
	}
	next.Pending = nil
	next.State = rec.To
	if next.State != sm.StatePresent {
		return nil, nil // deleted, or never registered
	}
	if next.CreatedAt.IsZero() {
		next.CreatedAt = rec.Time
	}
	return &next, nil
}

// validateImage checks that rec, an image's record, can follow prev.
func validateImage(prev *sm.ImageView, rec sm.Record) error {
	if err := validateObject(rec, sm.ObjectImage); err != nil {
		return err
	}
	switch {
	case !imageref.IsID(rec.ObjectID):
		return fmt.Errorf("image id %.80q is not sha256:<64 hex>: %w", rec.ObjectID, ErrInconsistent)
	case rec.Container != "" || rec.Exec != "":
		return fmt.Errorf("an image's record names container %.80q: %w", rec.Container, ErrInconsistent)
	case !sm.IsImageEvent(rec.Event):
		return fmt.Errorf("%q is not an image event: %w", rec.Event, ErrInconsistent)
	}
	pending := uint64(0)
	if prev != nil && prev.Pending != nil {
		pending = prev.Pending.Seq
	}
	switch rec.Kind {
	case sm.KindIntent:
		if pending != 0 {
			return fmt.Errorf("intent %d is still pending: %w", pending, ErrInconsistent)
		}
	case sm.KindDone, sm.KindFailed:
		if pending == 0 || pending != rec.Intent {
			return fmt.Errorf("finishes intent %d, which is not pending: %w", rec.Intent, ErrInconsistent)
		}
	case sm.KindReconciled:
		if rec.Intent != pending {
			return fmt.Errorf("reconciles intent %d, but intent %d is pending: %w", rec.Intent, pending, ErrInconsistent)
		}
	default:
		return fmt.Errorf("unknown record kind %q: %w", rec.Kind, ErrInconsistent)
	}
	return nil
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
