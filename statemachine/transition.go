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

// perform runs one lifecycle verb on container id: it takes the
// container's slot (waiting no longer than ctx allows), checks that nothing
// is pending and the rule allows event, records the intent, runs the
// event's steps and records the outcome. then, if set, runs under the same
// hold after a successful outcome (auto-remove after a stop).
func (m *Machine) perform(ctx context.Context, id string, event Event, args *Args, then func(Container)) (Container, error) {
	unlock, err := m.lock(ctx, id)
	if err != nil {
		return Container{}, err
	}
	defer unlock()
	c, err := m.current(id)
	if err != nil {
		return c, err
	}
	c, err = m.transit(ctx, c, event, args)
	if err == nil && then != nil {
		then(c)
	}
	return c, err
}

// transit runs event on c, whose slot the caller holds.
func (m *Machine) transit(ctx context.Context, c Container, event Event, args *Args) (Container, error) {
	var p *preemption
	if halts(event, c.State) {
		var end func()
		p, end = m.startHalting(c.ID)
		defer end()
	}
	t, err := m.begin(c, event, args)
	if err != nil {
		return c, err
	}
	if args == nil {
		args = &Args{} // the record keeps no empty arguments; the steps read a value
	}
	w := &work{ctx: context.WithoutCancel(ctx), c: c, event: event, args: args, state: c.State, preempt: p}
	return m.carryOut(t, w)
}

// begin checks the rule and records the intent. Nothing has been touched
// when it returns an error.
func (m *Machine) begin(c Container, event Event, args *Args) (*transition, error) {
	to, err := Target(c.State, event)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	intent, err := m.d.Journal.Append(Record{Kind: KindIntent, Container: c.ID, Event: event, From: c.State, To: to, Args: args})
	if err != nil {
		return nil, fmt.Errorf("record intent to %s %s: %w", event, c.ID, err)
	}
	m.crash(event, stepAfterIntent)
	return &transition{m: m, before: c, intent: intent, start: start}, nil
}

// done records that the side effects happened and returns the new view;
// for a container gone from the view (removed), its last view with the
// outcome applied.
func (t *transition) done(res *Result) (Container, error) {
	rec, err := t.finish(KindDone, t.intent.To, res, "")
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
	t.m.notify(rec.Container)
	return last, nil
}

// fail records that the transition was abandoned, leaving the container in
// state to (its old state, unless a side effect could not be undone), and
// returns cause.
func (t *transition) fail(to State, res *Result, cause error) error {
	rec, err := t.finish(KindFailed, to, res, cause.Error())
	if err != nil {
		return fmt.Errorf("%w (and recording the failure: %w)", cause, err)
	}
	if _, ok := t.m.d.Journal.Container(rec.Container); !ok {
		t.m.drop(rec.Container) // a create rolled back: nothing to remember
	}
	t.m.notify(rec.Container)
	return cause
}

func (t *transition) finish(kind Kind, to State, res *Result, cause string) (Record, error) {
	i := t.intent
	t.m.crash(i.Event, stepBeforeDone)
	rec, err := t.m.d.Journal.Append(Record{Kind: kind, Container: i.Container, Event: i.Event, From: i.From, To: to, Intent: i.Seq, Result: res, Error: cause})
	if err != nil {
		return rec, fmt.Errorf("record %s of %s %s: %w", kind, i.Event, i.Container, err)
	}
	t.m.crash(i.Event, stepAfterDone)
	d := time.Since(t.start)
	if t.m.d.Observer != nil {
		t.m.d.Observer.Transition(i.Event, kind, d)
	}
	attrs := []any{"container", i.Container, "event", i.Event, "seq", rec.Seq, "intent", i.Seq, "from", i.From, "to", to, "duration", d}
	if kind == KindFailed {
		t.m.log.Warn("transition failed", append(attrs, "error", cause)...)
	} else {
		t.m.log.Info("transition", attrs...)
	}
	return rec, nil
}
