package statemachine

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/cairn-run/cairn/internal/errdefs"
)

// A transition's side effects are data: stepsOf gives, for an event and
// the state it starts from, the named steps to run in order. One loop
// (carryOut) runs them after the intent is durable, hits the crash point
// "<event>.after-<step>" after each, undoes the completed ones in reverse
// when one fails, and records the outcome. Adding a side effect to a
// transition is adding a step; the crash-point list follows (CrashPoints).

// step is one side effect. do leaves nothing behind when it fails; undo
// reverses a do that succeeded (nil: nothing to reverse, or nothing can be).
type step struct {
	name string
	do   func(*Machine, *work) error
	undo func(*Machine, *work) error
}

// The steps. They are assigned in init because their functions lead back,
// through auto-remove, to stepsOf: a var initializer would be a cycle.
var (
	stepLayers  step // create
	stepMount   step // start, restart
	stepExec    step
	stepSignal  step // stop, restart: ask the process to end,
	stepExit    step // wait for it,
	stepRelease step // release its run
	stepKill    step // force-remove of a live container
	stepFreeze  step // pause
	stepThaw    step // unpause
	stepDeliver step // kill
	stepFiles   step // remove
	stepLimits  step // update of a live container
)

func init() {
	stepLayers = step{name: "layers", do: (*Machine).makeLayers, undo: (*Machine).removeLayers}
	stepMount = step{name: "mount", do: (*Machine).mountRootfs, undo: (*Machine).unmountRootfs}
	stepExec = step{name: "exec", do: (*Machine).execProcess}
	stepSignal = step{name: "signal", do: (*Machine).signalStop}
	stepExit = step{name: "exit", do: (*Machine).awaitExit}
	stepRelease = step{name: "release", do: (*Machine).releaseRun}
	stepKill = step{name: "kill", do: (*Machine).killProcess}
	stepFreeze = step{name: "freeze", do: (*Machine).freeze, undo: (*Machine).thaw}
	stepThaw = step{name: "thaw", do: (*Machine).thaw, undo: (*Machine).freeze}
	stepDeliver = step{name: "signal", do: (*Machine).deliverSignal}
	stepFiles = step{name: "files", do: (*Machine).removeFiles}
	stepLimits = step{name: "cgroup", do: (*Machine).writeLimits}
}

// stepsOf is the ordered list of side effects of event on a container in
// state from. It is pure; a legal event with no side effects has none.
func stepsOf(event Event, from State) []step {
	switch event {
	case EventCreate:
		return []step{stepLayers}
	case EventStart, EventPolicyRestart:
		return []step{stepMount, stepExec}
	case EventStop:
		return []step{stepSignal, stepExit, stepRelease}
	case EventRestart:
		if from.HasProcess() {
			return []step{stepSignal, stepExit, stepRelease, stepMount, stepExec}
		}
		return []step{stepMount, stepExec}
	case EventPause:
		return []step{stepFreeze}
	case EventUnpause:
		return []step{stepThaw}
	case EventKill:
		return []step{stepDeliver}
	case EventRemove:
		return []step{stepFiles}
	case EventForceRemove:
		if from.HasProcess() {
			return []step{stepKill, stepRelease, stepFiles}
		}
		return []step{stepFiles}
	case EventExit:
		return []step{stepRelease}
	case EventUpdate:
		if from.HasProcess() {
			return []step{stepLimits}
		}
		return nil
	}
	return nil
}

// halts reports whether event on a container in state from waits for its
// process to end, so that a kill or force-remove may preempt it.
func halts(event Event, from State) bool {
	for _, s := range stepsOf(event, from) {
		if s.name == stepExit.name || s.name == stepKill.name {
			return true
		}
	}
	return false
}

// work is what the steps of one transition share.
type work struct {
	// ctx is the caller's context without its cancellation: once the
	// intent is durable, the transition finishes even if the client left.
	ctx   context.Context
	c     Container
	event Event
	args  *Args
	// state is the state the container is in as far as the steps got: a
	// failure is recorded with it.
	state State
	// rootfs is where the mount step mounted the container's root.
	rootfs string
	res    Result
	run    *run
	// preempt delivers the signals of kills and force-removes that arrive
	// while the process is being halted; nil when nobody can preempt.
	preempt *preemption
	// writes are other stores' changes the steps made due, to commit with
	// the outcome record (the layer store's mount record of a remove).
	writes []Write
	// awaitAttach: the start's client attaches right after it.
	awaitAttach bool
}

func newWork(ctx context.Context, c Container, event Event, args *Args, p *preemption) *work {
	if args == nil {
		args = &Args{} // the record keeps no empty arguments; the steps read a value
	}
	w := &work{ctx: context.WithoutCancel(ctx), c: c, event: event, args: args, state: c.State, preempt: p}
	if event == EventExit {
		w.res.Exit, w.state = args.Exit, StateStopped
	}
	return w
}

// result is what the steps produced, or nil when nothing.
func (w *work) result() *Result {
	if w.event == EventUpdate {
		w.res.Resources = w.args.Resources // rolled forward, live or not
	}
	if w.res.Process == nil && w.res.Exit == nil && w.res.Resources == nil {
		return nil
	}
	r := w.res
	return &r
}

// runSteps runs the steps of t's event. When one fails it undoes the
// completed ones in reverse, records the failure and returns it; the
// caller records a success.
func (m *Machine) runSteps(t *transition, w *work) error {
	steps := stepsOf(w.event, w.c.State)
	for i, s := range steps {
		if err := s.do(m, w); err != nil {
			for j := i - 1; j >= 0; j-- {
				if undo := steps[j].undo; undo != nil {
					if uerr := undo(m, w); uerr != nil {
						err = fmt.Errorf("%w (and undoing %s: %w)", err, steps[j].name, uerr)
					}
				}
			}
			return t.fail(w.state, w.result(), err, w.writes...)
		}
		m.crash(w.event, "after-"+s.name)
	}
	return nil
}

// makeLayers builds the init and writable layers of the mount the
// create's intent claimed.
func (m *Machine) makeLayers(w *work) error {
	a := w.args
	if err := m.d.Layers.BuildMount(w.ctx, a.MountID, a.Hostname); err != nil {
		if rerr := m.removeLayers(w); rerr != nil {
			err = fmt.Errorf("%w (and undoing: %w)", err, rerr)
		}
		return fmt.Errorf("create layers of %s: %w", w.c.ID, err)
	}
	return nil
}

// removeLayers deletes the mount's directories; its record goes with the
// record of the outcome.
func (m *Machine) removeLayers(w *work) error {
	return m.discardMount(w, w.args.MountID)
}

func (m *Machine) discardMount(w *work, mountID string) error {
	if err := m.d.Layers.DiscardMount(mountID); err != nil {
		return err // the record stays, so the mount can be found and removed later
	}
	release, err := m.d.Layers.ReleaseMount(mountID)
	if err != nil {
		return err
	}
	w.writes = append(w.writes, release)
	return nil
}

func (m *Machine) mountRootfs(w *work) error {
	rootfs, err := m.d.Mounter.Mount(w.c.MountID)
	if err != nil {
		return fmt.Errorf("mount rootfs of %s: %w", w.c.ID, err)
	}
	w.rootfs = rootfs
	return nil
}

func (m *Machine) unmountRootfs(w *work) error { return m.d.Mounter.Unmount(w.c.MountID) }

// execProcess starts the container's process on its mounted rootfs and
// watches it for its exit.
func (m *Machine) execProcess(w *work) error {
	c := w.c
	spec := RunSpec{ID: c.ID, Rootfs: w.rootfs, Args: c.Command, Env: c.Env, Hostname: c.Hostname,
		TTY: c.TTY, OpenStdin: c.OpenStdin, StdinOnce: c.StdinOnce, AwaitAttach: w.awaitAttach,
		LogMaxSize: c.LogMaxSize, LogMaxFiles: c.LogMaxFiles, Mounts: c.Mounts}
	if c.Config != nil {
		spec.Cwd, spec.User = c.Config.WorkingDir, c.Config.User
		spec.Resources, spec.Security = c.Config.Resources.Clone(), c.Config.Security.Clone()
	}
	p, err := m.d.Runner.Start(w.ctx, spec)
	if err != nil {
		return fmt.Errorf("start %s: %w", c.ID, err)
	}
	m.watch(c.ID, p)
	w.res.Process = &p
	w.state = StateRunning
	return nil
}

// signalStop asks the process to end: it thaws a paused container first
// (a frozen process cannot act on a signal) and sends its stop signal,
// the image's StopSignal or SIGTERM.
func (m *Machine) signalStop(w *work) error {
	w.run = m.runOf(w.c)
	if err := m.thawForSignal(w); err != nil {
		return err
	}
	return m.signal(w.c, stopSignal(w.c))
}

// stopSignal is the signal stop sends first.
func stopSignal(c Container) syscall.Signal {
	if c.Config != nil && c.Config.StopSignal != "" {
		if sig, err := ParseSignal(c.Config.StopSignal); err == nil {
			return sig
		}
	}
	return syscall.SIGTERM
}

func (m *Machine) thawForSignal(w *work) error {
	if w.c.State != StatePaused {
		return nil
	}
	if err := m.d.Freezer.Resume(w.c.ID, *w.c.Process); err != nil {
		return fmt.Errorf("thaw %s before signalling it: %w", w.c.ID, err)
	}
	return nil
}

// awaitExit waits out the grace period for the process to end, sends
// SIGKILL after it, and takes the exit. Signals handed over by preempting
// kills are delivered at once.
func (m *Machine) awaitExit(w *work) error {
	grace := time.NewTimer(time.Duration(w.args.Timeout))
	defer grace.Stop()
	return m.waitRun(w, grace.C)
}

// killProcess ends the process at once: thaw, SIGKILL, the exit.
func (m *Machine) killProcess(w *work) error {
	w.run = m.runOf(w.c)
	if err := m.thawForSignal(w); err != nil {
		return err
	}
	if err := m.signal(w.c, syscall.SIGKILL); err != nil {
		return err
	}
	return m.waitRun(w, nil)
}

// waitRun waits for w's run to end. When graceOver fires, SIGKILL is sent;
// once SIGKILL is sent (now, if graceOver is nil), the process has
// KillWait to go.
func (m *Machine) waitRun(w *work, graceOver <-chan time.Time) error {
	var requests chan preemptRequest
	if w.preempt != nil {
		requests = w.preempt.requests
	}
	var killWait <-chan time.Time
	killed := func() {
		graceOver, killWait = nil, time.After(m.d.KillWait)
	}
	if graceOver == nil {
		killed()
	}
	for {
		select {
		case <-w.run.done:
			exit := w.run.exit
			w.res.Exit, w.state = &exit, StateStopped
			return nil
		case <-graceOver:
			if err := m.signal(w.c, syscall.SIGKILL); err != nil {
				return err
			}
			killed()
		case req := <-requests:
			err := m.signal(w.c, req.sig)
			req.delivered <- err
			if err == nil && req.sig == syscall.SIGKILL && killWait == nil {
				killed()
			}
			m.log.Info("signal delivered during a halt", "container", w.c.ID, "event", w.event, "signal", SignalName(req.sig), "error", err)
		case <-killWait:
			return fmt.Errorf("container %s (pid %d) still alive %v after SIGKILL", w.c.ID, w.c.Process.PID, m.d.KillWait)
		}
	}
}

// releaseRun frees what a finished run held: its runtime state and the
// rootfs mount. The writable layer stays. Failures are logged, not fatal:
// the process is gone either way, and both are retried by the next start,
// remove or recovery.
func (m *Machine) releaseRun(w *work) error {
	c := w.c
	// The run's end ended its exec sessions: their exits are recorded
	// first, so a remove that follows finds none running.
	m.settleExecs(c.ID)
	done := make(chan struct{})
	if c.Process != nil {
		// Independent of the unmount, so done side by side: both are on
		// the path of every exit.
		go func() {
			defer close(done)
			if err := m.d.Janitor.Cleanup(c.ID, *c.Process); err != nil {
				m.log.Warn("cleanup after exit", "container", c.ID, "error", err)
			}
		}()
	} else {
		close(done)
	}
	if err := m.d.Mounter.Unmount(c.MountID); err != nil {
		m.log.Warn("unmount after exit", "container", c.ID, "error", err)
	}
	<-done
	m.dropRunOf(c)
	return nil
}

func (m *Machine) freeze(w *work) error {
	return flip(w, "pause", m.d.Freezer.Pause, m.d.Freezer.Resume)
}

func (m *Machine) thaw(w *work) error {
	return flip(w, "unpause", m.d.Freezer.Resume, m.d.Freezer.Pause)
}

// flip sets the freezer with do; a failed do may have left it half-way
// (FREEZING), so back is tried to restore it.
func flip(w *work, verb string, do, back func(string, Process) error) error {
	if err := do(w.c.ID, *w.c.Process); err != nil {
		err = fmt.Errorf("%s %s: %w", verb, w.c.ID, err)
		if berr := back(w.c.ID, *w.c.Process); berr != nil {
			err = fmt.Errorf("%w (and undoing: %w)", err, berr)
		}
		return err
	}
	return nil
}

// deliverSignal is kill: the signal reaches the process or the kill fails.
func (m *Machine) deliverSignal(w *work) error {
	sig, err := ParseSignal(w.args.Signal)
	if err != nil {
		return err
	}
	if err := m.d.Runner.Signal(w.c.ID, *w.c.Process, sig); err != nil {
		if errors.Is(err, errdefs.ErrNotFound) {
			// It exited a moment ago; its exit is on the way.
			err = fmt.Errorf("container %s is not running any more: %w", w.c.ID, errdefs.ErrFailedPrecondition)
		}
		return fmt.Errorf("signal %s: %w", w.c.ID, err)
	}
	return nil
}

// removeFiles deletes a container's layers and runtime files; the two are
// independent, so they are removed side by side.
func (m *Machine) removeFiles(w *work) error {
	c := w.c
	layersErr := make(chan error, 1)
	go func() {
		if err := m.discardMount(w, c.MountID); err != nil {
			layersErr <- fmt.Errorf("remove layers of %s: %w", c.ID, err)
			return
		}
		layersErr <- nil
	}()
	var runtimeErr error
	if err := m.d.Janitor.Remove(c.ID); err != nil {
		runtimeErr = fmt.Errorf("remove runtime files of %s: %w", c.ID, err)
	}
	return errors.Join(<-layersErr, runtimeErr)
}

// signal delivers sig; a process that is already gone is not an error.
func (m *Machine) signal(c Container, sig syscall.Signal) error {
	err := m.d.Runner.Signal(c.ID, *c.Process, sig)
	if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		return fmt.Errorf("signal %s %v: %w", c.ID, SignalName(sig), err)
	}
	return nil
}
