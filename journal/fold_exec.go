package journal

import (
	"cmp"
	"fmt"
	"slices"

	sm "github.com/cairn-run/cairn/statemachine"
)

// maxExitedExecs bounds the exited exec sessions a container's view keeps:
// past it, the fold drops the oldest (their records stay in the journal
// until the container's history is compacted). A container exec'd into
// every second would otherwise grow its views for ever.
const maxExitedExecs = 100

// ApplyExec is the exec session fold: it folds one record of a session
// into its view, like Apply for containers. prev is nil when the journal
// knows no such session; a nil result means it is gone (its start failed
// or was rolled back). It is pure and never modifies prev.
func ApplyExec(prev *sm.Exec, rec sm.Record) (*sm.Exec, error) {
	rec = rec.Normalized()
	if err := validateObject(rec, sm.ObjectExec); err != nil {
		return nil, fmt.Errorf("record %d (%s %s of %s): %w", rec.Seq, rec.Kind, rec.Event, rec.Key(), err)
	}
	if err := validateExec(prev, rec); err != nil {
		return nil, fmt.Errorf("record %d (%s %s of %s): %w", rec.Seq, rec.Kind, rec.Event, rec.Key(), err)
	}
	if rec.Kind == sm.KindIntent && rec.Event == sm.EventExec {
		a := rec.Args
		x := sm.Exec{
			ID: rec.ObjectID, Container: rec.Container, Command: a.Command, Env: a.Env,
			User: a.User, Workdir: a.Workdir, TTY: a.TTY, Stdin: a.OpenStdin,
			State:     sm.StateNone,
			Pending:   &sm.Pending{Seq: rec.Seq, Event: rec.Event, From: rec.From, To: rec.To, Args: rec.Args},
			CreatedAt: rec.Time,
			Seq:       rec.Seq,
		}
		x = x.Clone()
		return &x, nil
	}
	if prev == nil {
		return nil, nil // a reconciliation of leftovers; validateExec allowed it
	}
	next := *prev
	next.Seq = rec.Seq
	if rec.Kind == sm.KindIntent {
		next.Pending = &sm.Pending{Seq: rec.Seq, Event: rec.Event, From: rec.From, To: rec.To, Args: rec.Args}
		return &next, nil
	}
	next.Pending = nil
	next.State = rec.To
	if res := rec.Result; res != nil {
		if p := res.Process; p != nil {
			proc := *p
			next.Process, next.StartedAt = &proc, p.StartedAt
		}
		if e := res.Exit; e != nil {
			exit := *e
			if e.Code != nil {
				code := *e.Code
				exit.Code = &code
			}
			next.Exit, next.Process, next.FinishedAt = &exit, nil, e.FinishedAt
		}
	}
	if next.State == sm.StateNone || next.State == sm.StateRemoved {
		return nil, nil
	}
	return &next, nil
}

func validateExec(prev *sm.Exec, rec sm.Record) error {
	switch rec.Kind {
	case sm.KindIntent:
		if rec.Event == sm.EventExec {
			if prev != nil {
				return fmt.Errorf("exec session exists already: %w", ErrInconsistent)
			}
			if rec.Args == nil {
				return fmt.Errorf("exec without arguments: %w", ErrInconsistent)
			}
			return nil
		}
		if prev == nil {
			return fmt.Errorf("unknown exec session: %w", ErrInconsistent)
		}
		if prev.Pending != nil {
			return fmt.Errorf("intent %d is still pending: %w", prev.Pending.Seq, ErrInconsistent)
		}
	case sm.KindDone, sm.KindFailed:
		if prev == nil {
			return fmt.Errorf("unknown exec session: %w", ErrInconsistent)
		}
		if prev.Pending == nil || prev.Pending.Seq != rec.Intent {
			return fmt.Errorf("finishes intent %d, which is not pending: %w", rec.Intent, ErrInconsistent)
		}
	case sm.KindReconciled:
		if prev == nil {
			if rec.To != sm.StateNone && rec.To != sm.StateRemoved {
				return fmt.Errorf("unknown exec session: %w", ErrInconsistent)
			}
			return nil
		}
		pending := uint64(0)
		if prev.Pending != nil {
			pending = prev.Pending.Seq
		}
		if rec.Intent != pending {
			return fmt.Errorf("reconciles intent %d, but intent %d is pending: %w", rec.Intent, pending, ErrInconsistent)
		}
	default:
		return fmt.Errorf("unknown record kind %q: %w", rec.Kind, ErrInconsistent)
	}
	return nil
}

func (b *batchView) exec(id string) *sm.Exec {
	if x, ok := b.execs[id]; ok {
		return x
	}
	if b.parent != nil {
		return b.parent.exec(id)
	}
	return b.j.execs[id]
}

// execsOf lists the exec sessions of container in the view.
func (b *batchView) execsOf(container string) []*sm.Exec {
	seen := map[string]bool{}
	var out []*sm.Exec
	for v := b; v != nil; v = v.parent {
		for id, x := range v.execs {
			if !seen[id] {
				seen[id] = true
				if x != nil && x.Container == container {
					out = append(out, x)
				}
			}
		}
	}
	for id, x := range b.j.execs {
		if !seen[id] && x.Container == container {
			out = append(out, x)
		}
	}
	return out
}

// foldExec applies an exec session's record to the batch view. A session
// starts only in a container the view knows, goes when its container goes
// (see dropExecsOf), and its container keeps at most maxExitedExecs exited
// ones.
func (b *batchView) foldExec(rec sm.Record) error {
	prev := b.exec(rec.ObjectID)
	if rec.Kind == sm.KindIntent && rec.Event == sm.EventExec {
		if c := b.container(rec.Container); c == nil || c.State == sm.StateNone {
			return fmt.Errorf("record %d (%s %s of %s): exec in unknown container %s: %w", rec.Seq, rec.Kind, rec.Event, rec.Key(), rec.Container, ErrInconsistent)
		}
	}
	if prev != nil && prev.Container != rec.Container {
		return fmt.Errorf("record %d (%s %s of %s): the session is in container %s, not %s: %w", rec.Seq, rec.Kind, rec.Event, rec.Key(), prev.Container, rec.Container, ErrInconsistent)
	}
	next, err := ApplyExec(prev, rec)
	if err != nil {
		return err
	}
	if prev == nil && next == nil {
		return nil
	}
	b.execs[rec.ObjectID] = next
	if next != nil && next.State == sm.StateExited && next.Pending == nil {
		b.pruneExecs(next.Container)
	}
	return nil
}

// pruneExecs drops the oldest exited sessions of container beyond
// maxExitedExecs.
func (b *batchView) pruneExecs(container string) {
	var exited []*sm.Exec
	for _, x := range b.execsOf(container) {
		if x.State == sm.StateExited && x.Pending == nil {
			exited = append(exited, x)
		}
	}
	if len(exited) <= maxExitedExecs {
		return
	}
	slices.SortFunc(exited, func(a, c *sm.Exec) int { return cmp.Compare(a.Seq, c.Seq) })
	for _, x := range exited[:len(exited)-maxExitedExecs] {
		b.execs[x.ID] = nil
	}
}

// dropExecsOf removes the sessions of a container that is gone.
func (b *batchView) dropExecsOf(container string) {
	for _, x := range b.execsOf(container) {
		b.execs[x.ID] = nil
	}
}
