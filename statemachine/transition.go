package statemachine

import (
	"context"
	"fmt"
	"time"
)

// transition is one run of the protocol: an INTENT made durable, then
// exactly one of done or fail.
type transition struct {
	m      *Machine
	before Container // the view the intent was recorded on
	intent Record
	start  time.Time
}

// then is a transition to run right after another one succeeds: its intent
// is recorded in the same commit as the other's outcome, so a create and
// the start of `run`, or a stop and its auto-remove, cost one fsync less.
type then struct {
	event Event
	args  *Args
	// optional: a failure is logged and the container left as the failed
	// transition leaves it; the caller still gets the outcome before it
	// (an auto-remove that fails does not fail the stop).
	optional bool
	// after, if set, runs once it is done, while the container is still
	// held (Run opens the log there, before an exit can be recorded).
	after func(Container)
	// awaitAttach: a start whose client attaches right after it (see
	// RunSpec.AwaitAttach).
	awaitAttach bool
}

// perform runs one lifecycle verb on container id: it takes the
// container's slot (waiting no longer than ctx allows), checks that nothing
// is pending and the rule allows event, records the intent, runs the
// event's steps and records the outcome. next, if set, gives the
// transitions to chain after a success (see then).
func (m *Machine) perform(ctx context.Context, id string, event Event, args *Args, next func(Container) []then) (Container, error) {
	unlock, err := m.lock(ctx, id)
	if err != nil {
		return Container{}, err
	}
	defer unlock()
	c, err := m.current(id)
	if err != nil {
		return c, err
	}
	var chain []then
	if next != nil {
		chain = next(c)
	}
	return m.transit(ctx, c, event, args, nil, chain...)
}

// transit runs event on c, whose slot the caller holds, and then the
// chained transitions. claims are writes to commit with the intent (the
// mount record of a create).
func (m *Machine) transit(ctx context.Context, c Container, event Event, args *Args, claims []Write, chain ...then) (Container, error) {
	var ends []func()
	defer func() {
		for _, end := range ends {
			end()
		}
	}()
	preemptible := func(ev Event, from State) *preemption {
		if !halts(ev, from) {
			return nil
		}
		p, end := m.startHalting(c.ID)
		ends = append(ends, end)
		return p
	}
	// Preemptible from before the intent is visible, so a kill that sees
	// the stop pending always finds it.
	p := preemptible(event, c.State)
	t, err := m.begin(c, event, args, claims...)
	if err != nil {
		return c, err
	}
	w := newWork(ctx, c, event, args, p)
	var step then // how the transition running now was chained
	for {
		if err := m.runSteps(t, w); err != nil {
			if step.optional {
				m.log.Error("chained transition failed", "container", c.ID, "event", step.event, "error", err)
				cur, _ := m.d.Journal.Container(c.ID)
				return cur, nil
			}
			return w.c, err
		}
		if len(chain) == 0 || !legal(t.intent.To, chain[0].event) {
			done, err := t.done(w.result(), w.writes...)
			if err == nil && step.after != nil {
				step.after(done)
			}
			return done, err
		}
		next := chain[0]
		chain = chain[1:]
		p := preemptible(next.event, t.intent.To)
		t2, from, err := t.doneThen(w.result(), w.writes, next.event, next.args)
		if err != nil {
			return w.c, err
		}
		if step.after != nil {
			step.after(from)
		}
		t, step = t2, next
		w = newWork(ctx, from, next.event, next.args, p)
		w.awaitAttach = next.awaitAttach
	}
}

func legal(from State, event Event) bool {
	_, err := Target(from, event)
	return err == nil
}

// begin checks the rule and records the intent, with claims in the same
// commit. Nothing has been touched when it returns an error.
func (m *Machine) begin(c Container, event Event, args *Args, claims ...Write) (*transition, error) {
	to, err := Target(c.State, event)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	recs, err := m.d.Journal.Commit([]Record{{Kind: KindIntent, Container: c.ID, Event: event, From: c.State, To: to, Args: args}}, claims...)
	if err != nil {
		return nil, fmt.Errorf("record intent to %s %s: %w", event, c.ID, err)
	}
	m.crash(event, stepAfterIntent)
	return &transition{m: m, before: c, intent: recs[0], start: start}, nil
}

// done records that the side effects happened, with writes in the same
// commit, and returns the new view; for a container gone from the view
// (removed), its last view with the outcome applied.
func (t *transition) done(res *Result, writes ...Write) (Container, error) {
	rec, err := t.finish(KindDone, t.intent.To, res, "", writes)
	if err != nil {
		return Container{}, err
	}
	if c, ok := t.m.d.Journal.Container(rec.Container); ok {
		t.m.notify(rec.Container)
		return c, nil
	}
	last := t.before.Clone()
	last.State = rec.To
	if res != nil && res.Exit != nil {
		exit := *res.Exit
		last.Exit, last.Process, last.FinishedAt = &exit, nil, exit.FinishedAt
	}
	// Kept before waiters are woken, so none finds the container gone
	// without its last view.
	t.m.forget(last)
	t.m.removeAnonymousVolumes(last, t.intent.Args)
	t.m.notify(rec.Container)
	return last, nil
}

// removeAnonymousVolumes removes the anonymous volumes of a removed
// container when its remove asked for it (rm -v) or it was auto-removed
// (Docker's --rm does the same). A failure is logged: the volume stays,
// unused, for volume prune.
func (m *Machine) removeAnonymousVolumes(last Container, args *Args) {
	names := AnonymousVolumes(last.Mounts)
	if m.d.Volumes == nil || len(names) == 0 || !last.AutoRemove && (args == nil || !args.RemoveVolumes) {
		return
	}
	if err := m.d.Volumes.RemoveAnonymous(context.WithoutCancel(m.ctx), names); err != nil {
		m.log.Error("removing the anonymous volumes of a removed container", "container", last.ID, "volumes", names, "error", err)
	}
}

// doneThen records t's outcome and the intent of next in one commit, and
// returns the transition of next with the view it starts from.
func (t *transition) doneThen(res *Result, writes []Write, next Event, args *Args) (*transition, Container, error) {
	i := t.intent
	nextTo, err := Target(i.To, next)
	if err != nil {
		return nil, Container{}, err
	}
	t.m.crash(i.Event, stepBeforeDone)
	start := time.Now()
	recs, err := t.m.d.Journal.Commit([]Record{
		{Kind: KindDone, Container: i.Container, Event: i.Event, From: i.From, To: i.To, Intent: i.Seq, Result: res},
		{Kind: KindIntent, Container: i.Container, Event: next, From: i.To, To: nextTo, Args: args},
	}, writes...)
	if err != nil {
		return nil, Container{}, fmt.Errorf("record %s of %s %s and the intent to %s: %w", KindDone, i.Event, i.Container, next, err)
	}
	t.m.crash(i.Event, stepAfterDone)
	t.recorded(recs[0], "")
	t.m.crash(next, stepAfterIntent)
	c, _ := t.m.d.Journal.Container(i.Container)
	c.Pending = nil // the view the next intent was recorded on
	t.m.notify(i.Container)
	return &transition{m: t.m, before: c, intent: recs[1], start: start}, c, nil
}

// fail records that the transition was abandoned, leaving the container in
// state to (its old state, unless a side effect could not be undone), with
// writes (of the undo) in the same commit, and returns cause.
func (t *transition) fail(to State, res *Result, cause error, writes ...Write) error {
	rec, err := t.finish(KindFailed, to, res, cause.Error(), writes)
	if err != nil {
		return fmt.Errorf("%w (and recording the failure: %w)", cause, err)
	}
	if _, ok := t.m.d.Journal.Container(rec.Container); !ok {
		t.m.drop(rec.Container) // a create rolled back: nothing to remember
	}
	t.m.notify(rec.Container)
	return cause
}

func (t *transition) finish(kind Kind, to State, res *Result, cause string, writes []Write) (Record, error) {
	i := t.intent
	t.m.crash(i.Event, stepBeforeDone)
	recs, err := t.m.d.Journal.Commit([]Record{{Kind: kind, Container: i.Container, Event: i.Event, From: i.From, To: to, Intent: i.Seq, Result: res, Error: cause}}, writes...)
	if err != nil {
		return Record{}, fmt.Errorf("record %s of %s %s: %w", kind, i.Event, i.Container, err)
	}
	t.m.crash(i.Event, stepAfterDone)
	t.recorded(recs[0], cause)
	return recs[0], nil
}

// recorded logs and observes a finished transition.
func (t *transition) recorded(rec Record, cause string) {
	i := t.intent
	d := time.Since(t.start)
	if t.m.d.Observer != nil {
		t.m.d.Observer.Transition(i.Event, rec.Kind, d)
	}
	attrs := []any{"container", i.Container, "event", i.Event, "seq", rec.Seq, "intent", i.Seq, "from", i.From, "to", rec.To, "duration", d}
	if rec.Kind == KindFailed {
		t.m.log.Warn("transition failed", append(attrs, "error", cause)...)
	} else {
		t.m.log.Info("transition", attrs...)
	}
}
