package statemachine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/cairn-run/cairn/internal/errdefs"
)

// DefaultStopTimeout is the grace period between SIGTERM and SIGKILL.
const DefaultStopTimeout = 10 * time.Second

// CreateRequest describes a new container.
type CreateRequest struct {
	Name       string
	Image      string
	Command    []string
	Env        []string
	AutoRemove bool
}

// Create records and builds a new container: its init and writable layers.
func (m *Machine) Create(ctx context.Context, req CreateRequest) (Container, error) {
	if err := ValidateCreate(req); err != nil {
		return Container{}, err
	}
	if err := m.d.Layers.ImageExists(req.Image); err != nil {
		return Container{}, err
	}
	m.warm() // a create is usually followed by a start
	release, err := m.reserveName(req.Name)
	if err != nil {
		return Container{}, err
	}
	defer release()
	id, mountID := newID(), newID()
	unlock := m.lock(id)
	defer unlock()
	args := &Args{Name: req.Name, Image: req.Image, Command: req.Command, Env: req.Env,
		MountID: mountID, Hostname: id[:12], AutoRemove: req.AutoRemove}
	t, err := m.begin(Container{ID: id, State: StateNone}, EventCreate, args)
	if err != nil {
		return Container{}, err
	}
	if err := m.d.Layers.CreateMount(context.WithoutCancel(ctx), mountID, req.Image, args.Hostname); err != nil {
		if rerr := m.d.Layers.RemoveMount(mountID); rerr != nil {
			err = fmt.Errorf("%w (and undoing: %w)", err, rerr)
		}
		return Container{}, t.fail(StateNone, nil, fmt.Errorf("create layers of %s: %w", id, err))
	}
	m.crash(EventCreate, stepAfterLayers)
	return t.done(nil)
}

// reserveName holds a name from the check until the create intent that
// claims it is durable, so two concurrent creates cannot both pass.
func (m *Machine) reserveName(name string) (func(), error) {
	if name == "" {
		return func() {}, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, taken := m.d.Journal.IDByName(name); taken || m.reserved[name] {
		return nil, fmt.Errorf("container name %q is already in use: %w", name, errdefs.ErrAlreadyExists)
	}
	m.reserved[name] = true
	return func() {
		m.mu.Lock()
		delete(m.reserved, name)
		m.mu.Unlock()
	}, nil
}

// Start runs a created or stopped container.
func (m *Machine) Start(ctx context.Context, id string) (Container, error) {
	m.warm()
	return m.perform(id, EventStart, nil, func(c Container, t *transition) (Container, error) {
		return m.start(ctx, c, t)
	})
}

func (m *Machine) start(ctx context.Context, c Container, t *transition) (Container, error) {
	p, err := m.launch(context.WithoutCancel(ctx), c, EventStart)
	if err != nil {
		return c, t.fail(c.State, nil, err)
	}
	m.watch(c.ID, p)
	return t.done(&Result{Process: &p})
}

// Stop ends a running or paused container: SIGTERM, then SIGKILL after the
// timeout. The writable layer stays.
func (m *Machine) Stop(ctx context.Context, id string, timeout time.Duration) (Container, error) {
	return m.perform(id, EventStop, &Args{Timeout: Duration(timeout)}, func(c Container, t *transition) (Container, error) {
		exit, err := m.halt(c, EventStop, syscall.SIGTERM, timeout)
		if err != nil {
			return c, t.fail(c.State, nil, err)
		}
		c, err = t.done(&Result{Exit: &exit})
		if err == nil {
			m.autoRemove(c)
		}
		return c, err
	})
}

// Kill sends a signal to a running container's process.
func (m *Machine) Kill(ctx context.Context, id string, sig syscall.Signal) (Container, error) {
	return m.perform(id, EventKill, &Args{Signal: SignalName(sig)}, func(c Container, t *transition) (Container, error) {
		if err := m.d.Runner.Signal(id, *c.Process, sig); err != nil {
			if errors.Is(err, errdefs.ErrNotFound) {
				// It exited a moment ago; its exit is on the way.
				err = fmt.Errorf("container %s is not running any more: %w", id, errdefs.ErrFailedPrecondition)
			}
			return c, t.fail(c.State, nil, fmt.Errorf("signal %s: %w", id, err))
		}
		return t.done(nil)
	})
}

// Pause freezes every process of a running container.
func (m *Machine) Pause(ctx context.Context, id string) (Container, error) {
	return m.freeze(id, EventPause, m.d.Freezer.Pause, m.d.Freezer.Resume)
}

// Unpause thaws a paused container.
func (m *Machine) Unpause(ctx context.Context, id string) (Container, error) {
	return m.freeze(id, EventUnpause, m.d.Freezer.Resume, m.d.Freezer.Pause)
}

func (m *Machine) freeze(id string, event Event, do, undo func(string) error) (Container, error) {
	return m.perform(id, event, nil, func(c Container, t *transition) (Container, error) {
		err := do(id)
		m.crash(event, stepAfterFreeze)
		if err != nil {
			err = fmt.Errorf("%s %s: %w", event, id, err)
			if uerr := undo(id); uerr != nil {
				err = fmt.Errorf("%w (and undoing: %w)", err, uerr)
			}
			return c, t.fail(c.State, nil, err)
		}
		return t.done(nil)
	})
}

// Restart stops a running container (as Stop does) and starts it again,
// keeping its writable layer. A created or stopped container is started.
func (m *Machine) Restart(ctx context.Context, id string, timeout time.Duration) (Container, error) {
	m.warm()
	return m.perform(id, EventRestart, &Args{Timeout: Duration(timeout)}, func(c Container, t *transition) (Container, error) {
		return m.restart(ctx, c, t, timeout)
	})
}

func (m *Machine) restart(ctx context.Context, c Container, t *transition, timeout time.Duration) (Container, error) {
	res := &Result{}
	stoppedIn := c.State
	if c.State.HasProcess() {
		exit, err := m.halt(c, EventRestart, syscall.SIGTERM, timeout)
		if err != nil {
			return c, t.fail(c.State, nil, err)
		}
		res.Exit, stoppedIn = &exit, StateStopped
	}
	p, err := m.launch(context.WithoutCancel(ctx), c, EventRestart)
	if err != nil {
		if res.Exit == nil {
			res = nil
		}
		return c, t.fail(stoppedIn, res, err)
	}
	m.watch(c.ID, p)
	res.Process = &p
	return t.done(res)
}

// Remove deletes a container and its layers. A running or paused container
// needs force and is killed first.
func (m *Machine) Remove(ctx context.Context, id string, force bool) (Container, error) {
	unlock := m.lock(id)
	defer unlock()
	c, err := m.current(id)
	if err != nil {
		return c, err
	}
	return m.remove(ctx, c, force)
}

// remove runs the remove transition; the caller holds the container's lock.
func (m *Machine) remove(ctx context.Context, c Container, force bool) (Container, error) {
	event := EventRemove
	if force {
		event = EventForceRemove
	}
	t, err := m.begin(c, event, nil)
	if err != nil {
		return c, err
	}
	var res *Result
	state := c.State
	if c.State.HasProcess() {
		exit, err := m.halt(c, event, syscall.SIGKILL, 0)
		if err != nil {
			return c, t.fail(c.State, nil, err)
		}
		m.crash(event, stepAfterKill)
		res, state = &Result{Exit: &exit}, StateStopped
		c.Exit = &exit
	}
	if err := m.removeFiles(c); err != nil {
		return c, t.fail(state, res, err)
	}
	m.crash(event, stepAfterFiles)
	if _, err := t.done(res); err != nil {
		return c, err
	}
	m.forget(c)
	c.State = StateRemoved
	return c, nil
}

// removeFiles deletes a container's layers and runtime files; the two are
// independent, so they are removed side by side.
func (m *Machine) removeFiles(c Container) error {
	var layersErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := m.d.Layers.RemoveMount(c.MountID); err != nil {
			layersErr = fmt.Errorf("remove layers of %s: %w", c.ID, err)
		}
	})
	var runtimeErr error
	if err := m.d.Janitor.Remove(c.ID); err != nil {
		runtimeErr = fmt.Errorf("remove runtime files of %s: %w", c.ID, err)
	}
	wg.Wait()
	return errors.Join(layersErr, runtimeErr)
}

func newID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b)
}
