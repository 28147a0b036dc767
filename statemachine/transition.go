package statemachine

import (
	"fmt"
	"time"
)

// transition is one run of the protocol: an INTENT made durable, then
// exactly one of done or fail.
type transition struct {
	m      *Machine
	intent Record
	start  time.Time
}

// perform runs one lifecycle verb on container id: it takes the
// container's lock, checks that nothing is pending and the rule allows
// event, records the intent, then lets effects perform the side effects and
// finish the transition.
func (m *Machine) perform(id string, event Event, args *Args, effects func(Container, *transition) (Container, error)) (Container, error) {
	unlock := m.lock(id)
	defer unlock()
	c, err := m.current(id)
	if err != nil {
		return c, err
	}
	t, err := m.begin(c, event, args)
	if err != nil {
		return c, err
	}
	return effects(c, t)
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
	return &transition{m: m, intent: intent, start: start}, nil
}

// done records that the side effects happened and returns the new view.
func (t *transition) done(res *Result) (Container, error) {
	rec, err := t.finish(KindDone, t.intent.To, res, "")
	if err != nil {
		return Container{}, err
	}
	c, _ := t.m.d.Journal.Container(rec.Container)
	return c, nil
}

// fail records that the transition was abandoned, leaving the container in
// state to (its old state, unless a side effect could not be undone), and
// returns cause.
func (t *transition) fail(to State, res *Result, cause error) error {
	if _, err := t.finish(KindFailed, to, res, cause.Error()); err != nil {
		return fmt.Errorf("%w (and recording the failure: %w)", cause, err)
	}
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
	t.m.notify(i.Container)
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
