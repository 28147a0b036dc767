package statemachine

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/looplab/fsm"

	"github.com/cairn-run/cairn/internal/errdefs"
)

// Exec sessions are journaled objects of their own (kind "exec"), inside a
// container: a record names the exec id (ObjectID and Exec) and the
// container. Their protocol is the containers' one, smaller:
//
//	event      from     to       steps
//	exec       —        running  start   (the shim runs the process; FAILED if it cannot)
//	exec-exit  running  exited   release (the shim forgets the session and its exit record)
//
// An exec starts only in a running container, holding a share of the
// container's slot: starts run side by side, but never while a transition
// (a pause, a stop) holds the container. Its exit is observed by a watcher
// that asks the shim (the only one who can know it) and recorded by an
// exec-exit; the container's release step (every end of a run) waits for
// the exits of its sessions, which its end has killed, so none is left
// running in the journal. The journal removes a container's sessions with
// it.

// StateExited is the state of an exec session that has ended. (Exec
// sessions use StateNone, while their start is journaled, and
// StateRunning too.)
const StateExited State = "exited"

// Exec session events.
const (
	EventExec     Event = "exec"
	EventExecExit Event = "exec-exit"
)

// execLifecycle is the exec sessions' rule table.
var execLifecycle = fsm.Events{
	{Name: string(EventExec), Src: []string{string(StateNone)}, Dst: string(StateRunning)},
	{Name: string(EventExecExit), Src: []string{string(StateRunning)}, Dst: string(StateExited)},
}

// ExecTarget is Target for exec sessions.
func ExecTarget(from State, event Event) (State, error) {
	f := fsm.NewFSM(string(from), execLifecycle, nil)
	if !f.Can(string(event)) {
		return from, fmt.Errorf("cannot %s an exec session that is %q: %w", event, from, errdefs.ErrFailedPrecondition)
	}
	if err := f.Event(context.Background(), string(event)); err != nil {
		return from, fmt.Errorf("%s from %s: %w", event, from, err)
	}
	return State(f.Current()), nil
}

// execStep is one side effect of an exec session's transition.
type execStep struct {
	name string
	do   func(*Machine, *execWork) error
}

var (
	stepExecStart   execStep
	stepExecRelease execStep
)

func init() {
	stepExecStart = execStep{name: "start", do: (*Machine).startExec}
	stepExecRelease = execStep{name: "release", do: (*Machine).releaseExec}
}

// execStepsOf is the ordered list of side effects of an exec session's
// event; it is pure.
func execStepsOf(event Event) []execStep {
	switch event {
	case EventExec:
		return []execStep{stepExecStart}
	case EventExecExit:
		return []execStep{stepExecRelease}
	}
	return nil
}

// execEvents are the exec sessions' events, in the order CrashPoints lists
// them.
var execEvents = []Event{EventExec, EventExecExit}

// Exec is the materialised view of one exec session: the fold of its
// journal records.
type Exec struct {
	ID        string   `json:"id"`
	Container string   `json:"container"`
	Command   []string `json:"command"`
	Env       []string `json:"env,omitempty"`
	User      string   `json:"user,omitempty"`
	Workdir   string   `json:"workdir,omitempty"`
	TTY       bool     `json:"tty,omitempty"`
	Stdin     bool     `json:"stdin,omitempty"`

	State   State    `json:"state"`
	Pending *Pending `json:"pending,omitempty"`
	// Process is the session's process while it runs (its ShimPID and
	// ShimStartTime are the container's shim).
	Process *Process `json:"process,omitempty"`
	Exit    *Exit    `json:"exit,omitempty"`

	CreatedAt  time.Time `json:"created_at"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	Seq        uint64    `json:"seq"`
}

// Clone returns a deep copy.
func (x Exec) Clone() Exec {
	x.Command = slices.Clone(x.Command)
	x.Env = slices.Clone(x.Env)
	if x.Pending != nil {
		p := *x.Pending
		if p.Args != nil {
			a := *p.Args
			a.Command = slices.Clone(a.Command)
			a.Env = slices.Clone(a.Env)
			if a.Exit != nil {
				e := a.Exit.clone()
				a.Exit = &e
			}
			p.Args = &a
		}
		x.Pending = &p
	}
	if x.Process != nil {
		p := *x.Process
		x.Process = &p
	}
	if x.Exit != nil {
		e := x.Exit.clone()
		x.Exit = &e
	}
	return x
}

func (e Exit) clone() Exit {
	if e.Code != nil {
		code := *e.Code
		e.Code = &code
	}
	return e
}

// ExecRecord is a record of exec session id of container.
func ExecRecord(kind Kind, container, id string, event Event, from, to State) Record {
	return Record{Kind: kind, Object: ObjectExec, ObjectID: id, Container: container, Exec: id, Event: event, From: from, To: to}
}

// ExecRequest describes an exec session to start.
type ExecRequest struct {
	Container string
	Command   []string
	Env       []string
	// User is resolved in the container ("name", "uid", "name:group", ...);
	// empty is root.
	User string
	// Workdir is absolute; empty is /.
	Workdir string
	TTY     bool
	// Stdin: the client's input reaches the session.
	Stdin bool
	// Detach: nobody attaches; the session's stdio is /dev/null.
	Detach     bool
	Rows, Cols uint16
}

// Limits of an exec request's user and working directory.
const (
	MaxUserBytes    = 256
	MaxWorkdirBytes = 4096
)

// ValidateExec refuses an exec request that could never work.
func ValidateExec(req ExecRequest) error {
	if len(req.Command) == 0 || req.Command[0] == "" {
		return fmt.Errorf("no command given: %w", errdefs.ErrInvalidArgument)
	}
	if err := checkArgSizes(req.Command, req.Env); err != nil {
		return err
	}
	if err := checkCommandAndEnv(req.Command, req.Env); err != nil {
		return err
	}
	if len(req.User) > MaxUserBytes || strings.ContainsAny(req.User, "\x00\n") || strings.Count(req.User, ":") > 1 {
		return fmt.Errorf("invalid user %s: want name, uid, name:group or uid:gid: %w", errdefs.Quote(req.User), errdefs.ErrInvalidArgument)
	}
	if req.Workdir != "" && (!strings.HasPrefix(req.Workdir, "/") || len(req.Workdir) > MaxWorkdirBytes || strings.ContainsRune(req.Workdir, 0)) {
		return fmt.Errorf("invalid working directory %s: want an absolute path: %w", errdefs.Quote(req.Workdir), errdefs.ErrInvalidArgument)
	}
	if req.Detach && req.Stdin {
		return fmt.Errorf("a detached exec session takes no input: %w", errdefs.ErrInvalidArgument)
	}
	return nil
}

// execAllowed says whether an exec may start in c.
func execAllowed(c Container) error {
	switch c.State {
	case StateRunning:
		return nil
	case StatePaused:
		return fmt.Errorf("cannot exec in container %s: it is paused (unpause it first): %w", c.ID, errdefs.ErrFailedPrecondition)
	}
	state := string(c.State)
	if c.State == StateNone {
		state = "being created"
	}
	return fmt.Errorf("cannot exec in container %s: it is %s, not running: %w", c.ID, state, errdefs.ErrFailedPrecondition)
}

// execRun is a watched exec session.
type execRun struct {
	container string
	recorded  chan struct{} // closed once its exit is journaled (or the watch gave up)
}

// execWork is what the steps of one exec transition share.
type execWork struct {
	ctx  context.Context
	x    Exec
	c    Container
	spec ExecSpec
	res  Result
	io   ExecIO
	exit *Exit
}

// Exec starts an exec session in a running container and returns its view
// once it runs, with its stdio unless req.Detach. The intent is journaled
// before the shim is asked; the exit is recorded by a watcher. A bad
// request, a container that is not running and an unknown user change
// nothing.
func (m *Machine) Exec(ctx context.Context, req ExecRequest) (Exec, ExecIO, error) {
	if m.d.Execs == nil || m.d.ExecViews == nil {
		return Exec{}, nil, fmt.Errorf("exec sessions are not supported by this daemon: %w", errdefs.ErrFailedPrecondition)
	}
	if err := ValidateExec(req); err != nil {
		return Exec{}, nil, err
	}
	if c, err := m.current(req.Container); err != nil {
		return Exec{}, nil, err
	} else if err := execAllowed(c); err != nil {
		return Exec{}, nil, err
	}
	unlock, err := m.lockShared(ctx, req.Container)
	if err != nil {
		return Exec{}, nil, err
	}
	defer unlock()
	c, err := m.current(req.Container)
	if err != nil {
		return Exec{}, nil, err
	}
	if err := execAllowed(c); err != nil {
		return Exec{}, nil, err
	}
	if req.User == "" && c.Config != nil {
		req.User = c.Config.User // as Docker: the container's user by default
	}
	user, err := m.d.Execs.ResolveUser(ctx, c.ID, req.User)
	if err != nil {
		return Exec{}, nil, err
	}
	id := newID()
	args := &Args{Command: req.Command, Env: req.Env, User: req.User, Workdir: req.Workdir, TTY: req.TTY, OpenStdin: req.Stdin}
	intent := ExecRecord(KindIntent, c.ID, id, EventExec, StateNone, StateRunning)
	intent.Args = args
	started := time.Now()
	recs, err := m.d.Journal.Commit([]Record{intent})
	if err != nil {
		return Exec{}, nil, fmt.Errorf("record intent to exec in %s: %w", c.ID, err)
	}
	m.crash(EventExec, stepAfterIntent)
	w := &execWork{ctx: context.WithoutCancel(ctx), x: Exec{ID: id, Container: c.ID}, c: c, spec: ExecSpec{
		ID: id, Args: req.Command, Env: req.Env, Workdir: req.Workdir, User: user, TTY: req.TTY, Stdin: req.Stdin,
		Attach: !req.Detach, Rows: req.Rows, Cols: req.Cols,
	}}
	if err := m.runExecSteps(recs[0], w, started); err != nil {
		return Exec{}, nil, err
	}
	x, ok := m.d.ExecViews.Exec(id)
	if !ok {
		x = Exec{ID: id, Container: c.ID, State: StateRunning}
	}
	m.watchExec(x)
	m.notify(execKey(id))
	return x, w.io, nil
}

// runExecSteps runs the steps of the exec transition whose intent is
// recorded, and records its outcome: DONE, or FAILED after a failed step.
func (m *Machine) runExecSteps(intent Record, w *execWork, began time.Time) error {
	to := intent.To
	for _, s := range execStepsOf(intent.Event) {
		if err := s.do(m, w); err != nil {
			to = intent.From
			if intent.Event == EventExecExit {
				to = intent.To // an exit happened whatever its release did
			}
			if intent.Event == EventExec {
				return m.finishExec(intent, KindFailed, to, nil, err, began)
			}
			m.log.Warn("exec step failed", "exec", w.x.ID, "step", s.name, "error", err)
		}
		m.crash(intent.Event, "after-"+s.name)
	}
	res := w.res
	if err := m.finishExec(intent, KindDone, to, &res, nil, began); err != nil {
		if w.io != nil {
			_ = w.io.Close() // the session runs on; recovery records it
		}
		return err
	}
	return nil
}

// finishExec records the outcome of an exec transition and returns cause
// (for a failure) or the journal's error.
func (m *Machine) finishExec(intent Record, kind Kind, to State, res *Result, cause error, began time.Time) error {
	m.crash(intent.Event, stepBeforeDone)
	rec := ExecRecord(kind, intent.Container, intent.ObjectID, intent.Event, intent.From, to)
	rec.Intent = intent.Seq
	if res != nil && (res.Process != nil || res.Exit != nil) {
		rec.Result = res
	}
	if cause != nil {
		rec.Error = cause.Error()
	}
	recs, err := m.d.Journal.Commit([]Record{rec})
	if err != nil {
		err = fmt.Errorf("record %s of %s %s: %w", kind, intent.Event, intent.ObjectID, err)
		if cause != nil {
			return fmt.Errorf("%w (and %w)", cause, err)
		}
		return err
	}
	m.crash(intent.Event, stepAfterDone)
	d := time.Since(began)
	if m.d.Observer != nil {
		m.d.Observer.Transition(intent.Event, kind, d)
	}
	attrs := []any{"container", intent.Container, "exec", intent.ObjectID, "event", intent.Event, "seq", recs[0].Seq, "intent", intent.Seq, "to", to, "duration", d}
	if cause != nil {
		m.log.Warn("exec transition failed", append(attrs, "error", cause)...)
	} else {
		m.log.Info("exec transition", attrs...)
	}
	m.notify(execKey(intent.ObjectID))
	return cause
}

// startExec asks the container's shim to run the session.
func (m *Machine) startExec(w *execWork) error {
	p, io, err := m.d.Execs.Exec(w.ctx, w.c.ID, *w.c.Process, w.spec)
	if err != nil {
		return err // it names the container
	}
	p.ShimPID, p.ShimStartTime = w.c.Process.ShimPID, w.c.Process.ShimStartTime
	w.res.Process, w.io = &p, io
	return nil
}

// releaseExec tells the shim the session's exit is journaled.
func (m *Machine) releaseExec(w *execWork) error {
	return m.d.Execs.ReleaseExec(w.ctx, w.x.Container, w.x.ID)
}

func execKey(id string) string { return ObjectKey(ObjectExec, id) }

// watchExec waits for the exit of session x, unless it is watched already.
func (m *Machine) watchExec(x Exec) {
	if x.Process == nil {
		return
	}
	m.mu.Lock()
	if _, ok := m.execRuns[x.ID]; ok {
		m.mu.Unlock()
		return
	}
	r := &execRun{container: x.Container, recorded: make(chan struct{})}
	m.execRuns[x.ID] = r
	m.mu.Unlock()
	m.watchers.Go(func() {
		defer func() {
			m.mu.Lock()
			delete(m.execRuns, x.ID)
			m.mu.Unlock()
			close(r.recorded)
		}()
		exit, ok := m.waitExecExit(x)
		if !ok {
			return
		}
		m.recordExecExit(x, exit)
	})
}

// waitExecExit asks the runner for session x's exit until it answers or
// the daemon stops (ok false).
func (m *Machine) waitExecExit(x Exec) (Exit, bool) {
	var container Process
	if c, ok := m.d.Journal.Container(x.Container); ok && c.Process != nil {
		container = *c.Process
	} else {
		container = Process{ShimPID: x.Process.ShimPID, ShimStartTime: x.Process.ShimStartTime}
	}
	delay := waitRetryFirst
	for attempt := 1; ; attempt++ {
		exit, err := m.d.Execs.WaitExec(m.ctx, x.Container, container, x.ID, *x.Process)
		if err == nil {
			return exit, true
		}
		if m.ctx.Err() != nil {
			return Exit{}, false
		}
		if attempt >= waitAttempts || permanentWaitError(err) {
			m.log.Error("giving up waiting for an exec session's exit", "exec", x.ID, "attempts", attempt, "error", err)
			return Exit{Reason: fmt.Sprintf("cairnd could not learn how the exec session ended (%d attempts): %v", attempt, err), FinishedAt: time.Now().UTC()}, true
		}
		select {
		case <-m.ctx.Done():
			return Exit{}, false
		case <-time.After(delay):
		}
		delay = min(2*delay, waitRetryMax)
	}
}

// recordExecExit journals session x's exit (exec-exit), unless it was
// recorded already or the session is gone with its container.
func (m *Machine) recordExecExit(x Exec, exit Exit) {
	cur, ok := m.d.ExecViews.Exec(x.ID)
	if !ok || cur.State != StateRunning || cur.Pending != nil {
		return
	}
	intent := ExecRecord(KindIntent, x.Container, x.ID, EventExecExit, StateRunning, StateExited)
	intent.Args = &Args{Exit: &exit}
	began := time.Now()
	recs, err := m.d.Journal.Commit([]Record{intent})
	if err != nil {
		m.log.Warn("recording an exec session's exit", "exec", x.ID, "error", err)
		return
	}
	m.crash(EventExecExit, stepAfterIntent)
	w := &execWork{ctx: m.ctx, x: cur, exit: &exit, res: Result{Exit: &exit}}
	if err := m.runExecSteps(recs[0], w, began); err != nil {
		m.log.Error("recording an exec session's exit", "exec", x.ID, "error", err)
	}
}

// execSettleWait bounds how long a run's release waits for the exits of
// its exec sessions to be recorded.
const execSettleWait = 10 * time.Second

// settleExecs waits until the watched exec sessions of container id have
// their exits recorded (the container's run is over, so they are dead).
func (m *Machine) settleExecs(id string) {
	m.mu.Lock()
	var runs []*execRun
	for _, r := range m.execRuns {
		if r.container == id {
			runs = append(runs, r)
		}
	}
	m.mu.Unlock()
	deadline := time.After(execSettleWait)
	for _, r := range runs {
		select {
		case <-r.recorded:
		case <-deadline:
			m.log.Warn("exec sessions of a finished run are still unrecorded", "container", id)
			return
		}
	}
}

// ReattachExecs watches the running exec sessions in the view, e.g. after
// a daemon restart.
func (m *Machine) ReattachExecs(execs []Exec) {
	for _, x := range execs {
		if x.State == StateRunning && x.Pending == nil && x.Process != nil {
			m.watchExec(x)
		}
	}
}

// WaitExec blocks until exec session id has exited and its exit is
// journaled, and returns its view. A session removed with its container
// meanwhile is errdefs.ErrNotFound.
func (m *Machine) WaitExec(ctx context.Context, id string) (Exec, error) {
	if m.d.ExecViews == nil {
		return Exec{}, fmt.Errorf("no such exec session: %s: %w", id, errdefs.ErrNotFound)
	}
	for {
		changed := m.Changes(execKey(id))
		x, ok := m.d.ExecViews.Exec(id)
		if !ok {
			return Exec{}, fmt.Errorf("no such exec session: %s (removed with its container?): %w", id, errdefs.ErrNotFound)
		}
		if x.State == StateExited && x.Pending == nil {
			return x, nil
		}
		select {
		case <-ctx.Done():
			return x, ctx.Err()
		case <-changed:
		}
	}
}
