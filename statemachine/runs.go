package statemachine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/cairn-run/cairn/internal/errdefs"
)

// run is one live process of a container, watched until it exits.
type run struct {
	proc Process
	done chan struct{} // closed once exit is set
	exit Exit
}

func sameProcess(a, b *Process) bool {
	return a != nil && b != nil && a.PID == b.PID && a.StartTime == b.StartTime
}

// watch starts waiting for the exit of process p of container id. When it
// comes, the exit is recorded unless a stop, restart or remove already did.
func (m *Machine) watch(id string, p Process) *run {
	r := &run{proc: p, done: make(chan struct{})}
	m.mu.Lock()
	m.runs[id] = r
	m.mu.Unlock()
	m.watchers.Add(1)
	go func() {
		defer m.watchers.Done()
		exit, err := m.d.Runner.Wait(m.ctx, id, p)
		if err != nil {
			if m.ctx.Err() == nil {
				m.log.Error("waiting for container exit", "container", id, "pid", p.PID, "error", err)
			}
			return
		}
		r.exit = exit
		close(r.done)
		m.recordExit(id, r)
	}()
	return r
}

// runOf returns the watched run of c's current process, watching it now if
// nobody does (a process started by an earlier daemon).
func (m *Machine) runOf(c Container) *run {
	m.mu.Lock()
	r, ok := m.runs[c.ID]
	m.mu.Unlock()
	if ok && sameProcess(&r.proc, c.Process) {
		return r
	}
	return m.watch(c.ID, *c.Process)
}

func (m *Machine) dropRun(id string, r *run) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.runs[id] == r {
		delete(m.runs, id)
	}
}

// Reattach watches the process of every running or paused container in
// the view, e.g. after a daemon restart.
func (m *Machine) Reattach(containers []Container) {
	for _, c := range containers {
		if c.State.HasProcess() && c.Process != nil && c.Pending == nil {
			m.runOf(c)
		}
	}
}

// recordExit records an exit observed by a watcher, unless the container
// has moved on.
func (m *Machine) recordExit(id string, r *run) {
	unlock := m.lock(id)
	defer unlock()
	c, ok := m.d.Journal.Container(id)
	if !ok || c.Pending != nil || !c.State.HasProcess() || !sameProcess(c.Process, &r.proc) {
		return
	}
	exit := r.exit
	t, err := m.begin(c, EventExit, &Args{Exit: &exit})
	if err != nil {
		m.log.Error("recording exit", "container", id, "error", err)
		return
	}
	m.releaseRun(c)
	m.dropRun(id, r)
	c, err = t.done(&Result{Exit: &exit})
	if err != nil {
		m.log.Error("recording exit", "container", id, "error", err)
		return
	}
	m.autoRemove(c)
}

// releaseRun frees what a finished run held: its runtime state and the
// rootfs mount. The writable layer stays. Failures are logged, not fatal:
// the process is gone either way, and both steps are retried by the next
// start or remove.
func (m *Machine) releaseRun(c Container) {
	// Independent, so done side by side: both are on the path of every exit.
	var wg sync.WaitGroup
	if c.Process != nil {
		wg.Go(func() {
			if err := m.d.Janitor.Cleanup(c.ID, *c.Process); err != nil {
				m.log.Warn("cleanup after exit", "container", c.ID, "error", err)
			}
		})
	}
	if err := m.d.Mounter.Unmount(c.MountID); err != nil {
		m.log.Warn("unmount after exit", "container", c.ID, "error", err)
	}
	wg.Wait()
}

// warm lets the runner prepare for a start that is about to be journaled.
func (m *Machine) warm() {
	if w, ok := m.d.Runner.(Warmer); ok {
		w.Warm()
	}
}

// launch mounts the rootfs and starts the process, undoing the mount if the
// start fails. event names the transition, for its crash points.
func (m *Machine) launch(ctx context.Context, c Container, event Event) (Process, error) {
	rootfs, err := m.d.Mounter.Mount(c.MountID)
	if err != nil {
		return Process{}, fmt.Errorf("mount rootfs of %s: %w", c.ID, err)
	}
	m.crash(event, stepAfterMount)
	p, err := m.d.Runner.Start(ctx, RunSpec{ID: c.ID, Rootfs: rootfs, Args: c.Command, Env: c.Env, Hostname: c.Hostname})
	if err != nil {
		if uerr := m.d.Mounter.Unmount(c.MountID); uerr != nil {
			err = fmt.Errorf("%w (and unmounting: %w)", err, uerr)
		}
		return Process{}, fmt.Errorf("start %s: %w", c.ID, err)
	}
	m.crash(event, stepAfterExec)
	return p, nil
}

// halt ends the process of a running or paused container: thaw, signal sig,
// wait up to grace, SIGKILL, wait. Then it releases the run. event names the
// transition, for its crash points.
func (m *Machine) halt(c Container, event Event, sig syscall.Signal, grace time.Duration) (Exit, error) {
	r := m.runOf(c)
	if c.State == StatePaused {
		if err := m.d.Freezer.Resume(c.ID); err != nil {
			return Exit{}, fmt.Errorf("thaw %s before stopping: %w", c.ID, err)
		}
	}
	if err := m.signal(c, sig); err != nil {
		return Exit{}, err
	}
	m.crash(event, stepAfterSignal)
	select {
	case <-r.done:
	case <-time.After(grace):
		if sig != syscall.SIGKILL {
			if err := m.signal(c, syscall.SIGKILL); err != nil {
				return Exit{}, err
			}
		}
		select {
		case <-r.done:
		case <-time.After(m.d.KillWait):
			return Exit{}, fmt.Errorf("container %s (pid %d) still alive %v after SIGKILL", c.ID, c.Process.PID, m.d.KillWait)
		}
	}
	m.releaseRun(c)
	m.dropRun(c.ID, r)
	return r.exit, nil
}

// signal delivers sig; a process that is already gone is not an error.
func (m *Machine) signal(c Container, sig syscall.Signal) error {
	err := m.d.Runner.Signal(c.ID, *c.Process, sig)
	if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		return fmt.Errorf("signal %s %v: %w", c.ID, sig, err)
	}
	return nil
}

// autoRemove removes a stopped container created with auto-remove.
func (m *Machine) autoRemove(c Container) {
	if !c.AutoRemove || c.State != StateStopped {
		return
	}
	if _, err := m.remove(context.WithoutCancel(m.ctx), c, false); err != nil {
		m.log.Error("auto-remove", "container", c.ID, "error", err)
	}
}
