package statemachine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"syscall"
	"time"

	"github.com/cairn-run/cairn/internal/errdefs"
	"github.com/cairn-run/cairn/resources"
)

// DefaultStopTimeout is the grace period between SIGTERM and SIGKILL.
const DefaultStopTimeout = 10 * time.Second

// CreateRequest describes a new container. Command, Env, Entrypoint,
// WorkingDir and User override and merge with the image's config
// (MergeConfig): with no command the image's Entrypoint and Cmd run.
type CreateRequest struct {
	Name    string
	Image   string
	Command []string
	Env     []string
	// Entrypoint, when set, replaces the image's (empty: none), and the
	// image's Cmd is then not used.
	Entrypoint *[]string
	WorkingDir string
	User       string
	AutoRemove bool
	// Network is the container's network mode, ports and name service
	// options (nil: no network but loopback).
	Network *NetworkSettings
	// Hostname overrides the default (the id's first 12 characters).
	Hostname string
	// Stdio and log of the init: see Container.
	TTY, OpenStdin, StdinOnce bool
	LogMaxSize                int64
	LogMaxFiles               int
	// Resources are the limits asked for; a zero PidsLimit takes the
	// daemon's default (Deps.Defaults).
	Resources resources.Resources
	Security  resources.Security
	// Mounts are volumes (made if missing), binds and tmpfs mounts; the
	// image's VOLUMEs that no mount covers get anonymous volumes.
	Mounts []Mount
	// RestartPolicy says whether cairnd starts the container again after
	// it exits (see DecideRestart); the zero value is "no".
	RestartPolicy RestartPolicy
}

// Create records and builds a new container: its init and writable layers.
func (m *Machine) Create(ctx context.Context, req CreateRequest) (Container, error) {
	return m.create(ctx, req)
}

// Run creates and starts a container: `docker run`. The create's outcome
// and the start's intent share one commit. started, if set, is called
// with the running container before anything else can act on it (its exit
// cannot be recorded, nor can it be removed, until started returns).
func (m *Machine) Run(ctx context.Context, req CreateRequest, started func(Container)) (Container, error) {
	return m.create(ctx, req, then{event: EventStart, after: started})
}

// RunAttached is Run for a client that attaches to the container's stdio
// in started: the container's output waits for that attach (a while at
// most), so none of it is missed.
func (m *Machine) RunAttached(ctx context.Context, req CreateRequest, started func(Container)) (Container, error) {
	return m.create(ctx, req, then{event: EventStart, after: started, awaitAttach: true})
}

func (m *Machine) create(ctx context.Context, req CreateRequest, chain ...then) (Container, error) {
	if err := validateName(req.Name); err != nil {
		return Container{}, err
	}
	if req.Image == "" {
		return Container{}, fmt.Errorf("no image given: %w", errdefs.ErrInvalidArgument)
	}
	if err := validateRestartPolicy(req.RestartPolicy, req.AutoRemove); err != nil {
		return Container{}, err
	}
	if err := checkArgSizes(slices.Concat(req.Command, derefArgs(req.Entrypoint)), req.Env); err != nil {
		return Container{}, err
	}
	img, err := m.d.Layers.ResolveImage(req.Image)
	if err != nil {
		return Container{}, err
	}
	command, env, cfg, err := MergeConfig(img.Config, req)
	if err != nil {
		return Container{}, err
	}
	req.Command, req.Env = command, env
	req.Mounts = WithImageVolumes(req.Mounts, cfg.Volumes)
	if err := ValidateCreate(req); err != nil {
		return Container{}, err
	}
	if cfg.Resources, cfg.Security, err = m.limitsOf(req); err != nil {
		return Container{}, err
	}
	if err := ValidateMounts(req.Mounts); err != nil {
		return Container{}, err
	}
	m.warm() // a create is usually followed by a start
	release, err := m.reserveName(req.Name)
	if err != nil {
		return Container{}, err
	}
	defer release()
	mounts, undoMounts, err := m.prepareMounts(ctx, req.Mounts)
	if err != nil {
		return Container{}, err
	}
	id, mountID := newID(), newID()
	c, err := m.createPrepared(ctx, req, img, cfg, mounts, id, mountID, chain)
	if err != nil {
		if _, exists := m.d.Journal.Container(id); !exists {
			undoMounts() // no record names the volumes it made
		}
	}
	return c, err
}

// prepareMounts has the volume service prepare a create's mounts.
func (m *Machine) prepareMounts(ctx context.Context, mounts []Mount) ([]Mount, func(), error) {
	if len(mounts) == 0 {
		return nil, func() {}, nil
	}
	if m.d.Volumes == nil {
		return nil, nil, fmt.Errorf("this daemon takes no mounts: %w", errdefs.ErrInvalidArgument)
	}
	return m.d.Volumes.PrepareMounts(ctx, mounts)
}

func (m *Machine) createPrepared(ctx context.Context, req CreateRequest, img ImageInfo, cfg ContainerConfig, mounts []Mount, id, mountID string, chain []then) (Container, error) {
	unlock, err := m.lock(ctx, id)
	if err != nil {
		return Container{}, err
	}
	defer unlock()
	args := &Args{Name: req.Name, Image: img.Ref, ImageID: img.ID, Command: req.Command, Env: req.Env,
		MountID: mountID, Hostname: id[:12], AutoRemove: req.AutoRemove,
		TTY: req.TTY, OpenStdin: req.OpenStdin, StdinOnce: req.StdinOnce, LogMaxSize: req.LogMaxSize, LogMaxFiles: req.LogMaxFiles, Mounts: mounts}
	if req.Hostname != "" {
		args.Hostname = req.Hostname
	}
	cfg.Network = req.Network.Clone()
	if !req.RestartPolicy.IsNone() {
		p := req.RestartPolicy
		args.RestartPolicy = &p
	}
	if !cfg.isZero() {
		args.Config = &cfg
	}
	// The mount record is written with the intent: it claims the image,
	// so the image cannot be removed while the layers are built on it.
	claim, err := m.d.Layers.ClaimMount(mountID, img.ID)
	if err != nil {
		return Container{}, err
	}
	return m.transit(ctx, Container{ID: id, State: StateNone}, EventCreate, args, []Write{claim}, chain...)
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
	return m.perform(ctx, id, EventStart, &Args{ResetRestarts: true}, nil)
}

// Stop ends a running or paused container: SIGTERM, then SIGKILL after the
// timeout. The writable layer stays. Once its intent is recorded a stop
// finishes even if the caller goes away; a kill or a forced remove cuts its
// grace period short.
//
// Stop of a stopped container whose policy restart is scheduled cancels
// that restart (EventCancelRestart): the user stopped it.
func (m *Machine) Stop(ctx context.Context, id string, timeout time.Duration) (Container, error) {
	unlock, err := m.lock(ctx, id)
	if err != nil {
		return Container{}, err
	}
	defer unlock()
	c, err := m.current(id)
	if err != nil {
		return c, err
	}
	if c.State == StateStopped && m.dropRestart(id) {
		return m.transit(ctx, c, EventCancelRestart, &Args{UserStop: true}, nil)
	}
	return m.transit(ctx, c, EventStop, &Args{Timeout: Duration(timeout), UserStop: true}, nil, m.autoRemoveAfter(c)...)
}

// StopByDaemon is Stop as cairnd does it when it shuts down without live
// restore: not a user's stop, so the restart policy brings the container
// back at the next start (a clean shutdown is no user stop).
func (m *Machine) StopByDaemon(ctx context.Context, id string, timeout time.Duration) (Container, error) {
	return m.perform(ctx, id, EventStop, &Args{Timeout: Duration(timeout)}, m.autoRemoveAfter)
}

// Kill sends a signal to a running container's process. A container being
// stopped, restarted or force-removed gets the signal at once from the
// transition that halts it (Docker lets kill cut a stop short too); the
// view returned then still shows that transition pending.
func (m *Machine) Kill(ctx context.Context, id string, sig syscall.Signal) (Container, error) {
	if ok, err := m.preempt(ctx, id, sig); ok {
		c, _ := m.d.Journal.Container(id)
		return c, err
	}
	return m.perform(ctx, id, EventKill, &Args{Signal: SignalName(sig), UserStop: true}, nil)
}

// Pause freezes every process of a running container.
func (m *Machine) Pause(ctx context.Context, id string) (Container, error) {
	return m.perform(ctx, id, EventPause, nil, nil)
}

// Unpause thaws a paused container.
func (m *Machine) Unpause(ctx context.Context, id string) (Container, error) {
	return m.perform(ctx, id, EventUnpause, nil, nil)
}

// Restart stops a running container (as Stop does) and starts it again,
// keeping its writable layer. A created or stopped container is started.
func (m *Machine) Restart(ctx context.Context, id string, timeout time.Duration) (Container, error) {
	m.warm()
	return m.perform(ctx, id, EventRestart, &Args{Timeout: Duration(timeout), ResetRestarts: true}, nil)
}

// Remove deletes a container and its layers. A running or paused container
// needs force and is killed first; a force-remove cuts short a stop in
// progress instead of waiting out its grace period.
func (m *Machine) Remove(ctx context.Context, id string, force bool) (Container, error) {
	return m.RemoveWith(ctx, id, RemoveOptions{Force: force})
}

// RemoveOptions are a remove's flags.
type RemoveOptions struct {
	// Force kills a running or paused container first.
	Force bool
	// Volumes removes the container's anonymous volumes too (rm -v); its
	// named volumes always stay.
	Volumes bool
}

// RemoveWith is Remove with options.
func (m *Machine) RemoveWith(ctx context.Context, id string, o RemoveOptions) (Container, error) {
	force := o.Force
	if force {
		if _, err := m.preempt(ctx, id, syscall.SIGKILL); err != nil {
			return Container{}, err
		}
	}
	unlock, err := m.lock(ctx, id)
	if err != nil {
		return Container{}, err
	}
	defer unlock()
	c, err := m.current(id)
	if err != nil {
		return c, err
	}
	return m.remove(ctx, c, force, o.Volumes)
}

// remove runs the remove transition; the caller holds the container's slot.
func (m *Machine) remove(ctx context.Context, c Container, force, volumes bool) (Container, error) {
	event := EventRemove
	if force {
		event = EventForceRemove
	}
	var args *Args
	if volumes {
		args = &Args{RemoveVolumes: true}
	}
	return m.transit(ctx, c, event, args, nil)
}

// autoRemoveAfter chains the removal of a container created with
// auto-remove after the transition that stops it. A failed auto-remove is
// logged and leaves the container stopped.
func (m *Machine) autoRemoveAfter(c Container) []then {
	if !c.AutoRemove {
		return nil
	}
	return []then{{event: EventRemove, optional: true}}
}

func newID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b)
}

func derefArgs(p *[]string) []string {
	if p == nil {
		return nil
	}
	return *p
}

// limitsOf validates a create's limits and security options and returns
// them as the create record keeps them: the daemon's defaults applied,
// capabilities normalised.
func (m *Machine) limitsOf(req CreateRequest) (resources.Resources, resources.Security, error) {
	if err := req.Resources.Validate(); err != nil {
		return resources.Resources{}, resources.Security{}, err
	}
	sec, err := req.Security.Normalize()
	if err != nil {
		return resources.Resources{}, resources.Security{}, err
	}
	if m.d.CheckSecurity != nil {
		if err := m.d.CheckSecurity(sec); err != nil {
			return resources.Resources{}, resources.Security{}, err
		}
	}
	res, err := resources.Resolve(req.Resources, m.d.Defaults)
	return res, sec, err
}
