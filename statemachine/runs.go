package statemachine

import (
	"errors"
	"fmt"
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

// Waiting for an exit is retried when it fails: a shim that hiccups must not
// leave a container that nobody can stop (its halt waits for this run). The
// delay doubles from waitRetryFirst up to waitRetryMax; after
// waitAttempts failures, or at once for an error that no retry can cure,
// the exit is recorded as unknown, with the reason.
const (
	waitRetryFirst = 10 * time.Millisecond
	waitRetryMax   = 2 * time.Second
	waitAttempts   = 12
)

// watch starts waiting for the exit of process p of container id. When it
// comes, the exit is recorded unless a stop, restart or remove already did.
func (m *Machine) watch(id string, p Process) *run {
	r := &run{proc: p, done: make(chan struct{})}
	m.mu.Lock()
	m.runs[id] = r
	m.mu.Unlock()
	m.watchers.Go(func() {
		exit, ok := m.waitExit(id, p)
		if !ok {
			return // the daemon is stopping: the next one reattaches
		}
		r.exit = exit
		close(r.done)
		m.recordExit(id, r)
	})
	return r
}

// waitExit asks the runner for p's exit until it answers or the daemon
// stops (ok false).
func (m *Machine) waitExit(id string, p Process) (exit Exit, ok bool) {
	delay := waitRetryFirst
	for attempt := 1; ; attempt++ {
		exit, err := m.d.Runner.Wait(m.ctx, id, p)
		if err == nil {
			return exit, true
		}
		if m.ctx.Err() != nil {
			return Exit{}, false
		}
		if attempt >= waitAttempts || permanentWaitError(err) {
			m.log.Error("giving up waiting for container exit", "container", id, "pid", p.PID, "attempts", attempt, "error", err)
			return Exit{Reason: fmt.Sprintf("cairnd could not learn how the process ended (%d attempts): %v", attempt, err), FinishedAt: time.Now().UTC()}, true
		}
		m.log.Warn("waiting for container exit failed; retrying", "container", id, "pid", p.PID, "attempt", attempt, "retry_in", delay, "error", err)
		select {
		case <-m.ctx.Done():
			return Exit{}, false
		case <-time.After(delay):
		}
		delay = min(2*delay, waitRetryMax)
	}
}

// permanentWaitError: the request itself is wrong, so asking again cannot
// help.
func permanentWaitError(err error) bool {
	return errors.Is(err, errdefs.ErrInvalidArgument)
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

// dropRunOf stops tracking the run of c's process, which has ended.
func (m *Machine) dropRunOf(c Container) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r, ok := m.runs[c.ID]; ok && sameProcess(&r.proc, c.Process) {
		delete(m.runs, c.ID)
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
// has moved on, and auto-removes the container if it asked for that (the
// exit's outcome and the removal's intent share one commit).
func (m *Machine) recordExit(id string, r *run) {
	unlock, err := m.lock(m.ctx, id)
	if err != nil {
		return // the daemon is stopping: the next one finds the exit
	}
	defer unlock()
	c, ok := m.d.Journal.Container(id)
	if !ok || c.Pending != nil || !c.State.HasProcess() || !sameProcess(c.Process, &r.proc) {
		return
	}
	exit := r.exit
	after, err := m.transit(m.ctx, c, EventExit, &Args{Exit: &exit}, nil, m.autoRemoveAfter(c)...)
	if err != nil {
		m.log.Error("recording exit", "container", id, "error", err)
		return
	}
	m.scheduleRestart(after, false, false)
}

// warm lets the runner prepare for a start that is about to be journaled.
func (m *Machine) warm() {
	if w, ok := m.d.Runner.(Warmer); ok {
		w.Warm()
	}
}
