package statemachine

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cairn-run/cairn/internal/errdefs"
	"github.com/cairn-run/cairn/resources"
)

// Deps are the adapters the driver works through.
type Deps struct {
	Journal Journal
	Runner  Runner
	Freezer Freezer
	Janitor Janitor
	Layers  Layers
	Mounter Mounter
	// Volumes, if set, prepares the volumes and binds of creates; without
	// it a create with mounts is refused.
	Volumes  ContainerVolumes
	Observer Observer     // optional
	Logger   *slog.Logger // optional
	// KillWait bounds the wait for a process to die after SIGKILL. Default 30s.
	KillWait time.Duration
	// CrashPoint, if set, is called at every named step of the transition
	// protocol (see crashpoints.go); crash drills make it kill the daemon.
	CrashPoint func(name string)
	// Execs and ExecViews run and show exec sessions (see exec.go);
	// without them an exec is refused.
	Execs     ExecRunner
	ExecViews ExecViews
	// Defaults are the daemon-wide limits a create resolves.
	Defaults resources.Defaults
	// CheckSecurity, if set, refuses security options the runtime cannot
	// apply (a seccomp profile it cannot parse); called at create.
	CheckSecurity func(resources.Security) error
}

// Machine drives container transitions. Transitions of one container are
// serialised; different containers proceed in parallel.
type Machine struct {
	d   Deps
	log *slog.Logger

	// ctx ends the exit watchers when the daemon shuts down; the shims keep
	// the exits for the next daemon.
	ctx      context.Context
	cancel   context.CancelFunc
	watchers sync.WaitGroup

	mu         sync.Mutex
	slots      map[string]*slot
	runs       map[string]*run
	changed    map[string]chan struct{}
	reserved   map[string]bool
	tombstones map[string]Container
	tombOrder  []string
	execRuns   map[string]*execRun
	// restarts are the policy restarts scheduled, by container.
	restarts map[string]*restartTimer
}

// maxTombstones bounds the memory of removed containers kept so that a
// waiter can still learn how a removed container exited.
const maxTombstones = 1024

// New returns a driver over deps.
func New(d Deps) *Machine {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.KillWait == 0 {
		d.KillWait = 30 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Machine{
		d: d, log: d.Logger, ctx: ctx, cancel: cancel,
		slots:      map[string]*slot{},
		runs:       map[string]*run{},
		changed:    map[string]chan struct{}{},
		reserved:   map[string]bool{},
		tombstones: map[string]Container{},
		execRuns:   map[string]*execRun{},
		restarts:   map[string]*restartTimer{},
	}
}

// Close stops watching exits. Containers keep running: their shims hold
// their exits for the next daemon.
func (m *Machine) Close() {
	m.cancel()
	m.watchers.Wait()
}

// Changes returns a channel that is closed at the next finished transition
// of container id. Take it before reading the view, so no change is missed.
func (m *Machine) Changes(id string) <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	ch, ok := m.changed[id]
	if !ok {
		ch = make(chan struct{})
		m.changed[id] = ch
	}
	return ch
}

func (m *Machine) notify(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if ch, ok := m.changed[id]; ok {
		close(ch)
		delete(m.changed, id)
	}
}

// drop forgets a container that never was (a create rolled back).
func (m *Machine) drop(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.slots, id)
	delete(m.runs, id)
}

// forget drops what the driver kept in memory about a removed container,
// keeping its last view as a tombstone.
func (m *Machine) forget(last Container) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.slots, last.ID)
	delete(m.runs, last.ID)
	if t, ok := m.restarts[last.ID]; ok {
		close(t.cancel)
		delete(m.restarts, last.ID)
	}
	last.State = StateRemoved
	m.tombstones[last.ID] = last
	m.tombOrder = append(m.tombOrder, last.ID)
	if len(m.tombOrder) > maxTombstones {
		delete(m.tombstones, m.tombOrder[0])
		m.tombOrder = m.tombOrder[1:]
	}
}

func (m *Machine) tombstone(id string) (Container, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	last, ok := m.tombstones[id]
	return last, ok
}

// current returns the view of a container that exists and has no
// transition pending.
func (m *Machine) current(id string) (Container, error) {
	c, ok := m.d.Journal.Container(id)
	if !ok || c.State == StateNone {
		return Container{}, fmt.Errorf("no such container: %s: %w", id, errdefs.ErrNotFound)
	}
	if c.Pending != nil {
		return c, fmt.Errorf("container %s has an unfinished %s (intent %d) waiting for recovery: %w",
			id, c.Pending.Event, c.Pending.Seq, errdefs.ErrFailedPrecondition)
	}
	return c, nil
}

// Settle waits until no transition holds container id. A stop or exit and
// the auto-remove that follows it happen under one hold, so after Settle a
// stopped auto-remove container is either gone or its removal failed.
func (m *Machine) Settle(id string) {
	if unlock, err := m.lock(context.Background(), id); err == nil {
		unlock()
	}
}

// Wait blocks until container id has run and is not running any more
// (stopped or removed), and returns its last view. Like Docker's, a wait
// on a container that was never started blocks until it has run.
func (m *Machine) Wait(ctx context.Context, id string) (Container, error) {
	for {
		changed := m.Changes(id)
		c, ok := m.d.Journal.Container(id)
		if !ok {
			if last, gone := m.tombstone(id); gone {
				return last, nil
			}
			// A removal may have just left the view without its
			// tombstone yet: it is kept before the removal lets go.
			m.Settle(id)
			if last, gone := m.tombstone(id); gone {
				return last, nil
			}
			return Container{}, fmt.Errorf("no such container: %s: %w", id, errdefs.ErrNotFound)
		}
		if c.State == StateStopped && c.Pending == nil {
			return c, nil
		}
		select {
		case <-ctx.Done():
			return c, ctx.Err()
		case <-changed:
		}
	}
}
