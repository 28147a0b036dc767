package executor

import (
	"errors"
	"fmt"
	"os"

	"github.com/cairn-run/cairn/internal/errdefs"
	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"
)

// Signal sends sig to the container's init, but only if p's PID and start
// time still name it; otherwise (exited, or the PID now belongs to someone
// else) the error wraps errdefs.ErrNotFound. libcontainer.Load checks the
// live process against the start time in its state file, and the state must
// match p, so a stale handle never signals a successor.
func (e *Executor) Signal(id string, p Process, sig unix.Signal) error {
	c, err := e.load(id)
	if err != nil {
		return fmt.Errorf("signal %s: %w", id, err)
	}
	st, err := c.State()
	if err != nil {
		return fmt.Errorf("signal %s: %w", id, err)
	}
	if st.InitProcessPid != p.PID || st.InitProcessStartTime != p.StartTime {
		return fmt.Errorf("signal %s: process %d (start %d) is not this container's init: %w", id, p.PID, p.StartTime, errdefs.ErrNotFound)
	}
	if err := c.Signal(sig); err != nil {
		if errors.Is(err, libcontainer.ErrNotRunning) {
			return fmt.Errorf("signal %s: %w: %w", id, err, errdefs.ErrNotFound)
		}
		return fmt.Errorf("signal %s: %w", id, err)
	}
	return nil
}

// Pause freezes every process of the container (freezer FROZEN). Pausing a
// paused container succeeds, so a transition can be replayed after a crash.
func (e *Executor) Pause(id string) error {
	c, err := e.load(id)
	if err != nil {
		return fmt.Errorf("pause %s: %w", id, err)
	}
	if st, err := c.Status(); err == nil && st == libcontainer.Paused {
		return nil
	}
	if err := c.Pause(); err != nil {
		if errors.Is(err, libcontainer.ErrNotRunning) {
			return fmt.Errorf("pause %s: %w: %w", id, err, errdefs.ErrFailedPrecondition)
		}
		return fmt.Errorf("pause %s: %w", id, err)
	}
	return nil
}

// Resume thaws a paused container (freezer THAWED). Resuming a running
// container succeeds, so a transition can be replayed after a crash; a
// container that is not running is ErrFailedPrecondition.
func (e *Executor) Resume(id string) error {
	c, err := e.load(id)
	if err != nil {
		return fmt.Errorf("resume %s: %w", id, err)
	}
	st, err := c.Status()
	if err != nil {
		return fmt.Errorf("resume %s: %w", id, err)
	}
	switch st {
	case libcontainer.Running:
		return nil
	case libcontainer.Paused:
	default:
		return fmt.Errorf("resume %s: container is %s: %w", id, st, errdefs.ErrFailedPrecondition)
	}
	if err := c.Resume(); err != nil {
		return fmt.Errorf("resume %s: %w", id, err)
	}
	return nil
}

// FreezerState reads the container's freezer cgroup: "FROZEN", "FREEZING"
// or "THAWED". It reads the file itself rather than asking libcontainer, so
// it also answers after the libcontainer state is gone.
func (e *Executor) FreezerState(id string) (string, error) {
	if err := validateID(id); err != nil {
		return "", err
	}
	st, err := e.mounts.freezerState(e.cgroupPath(id))
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("freezer state %s: no cgroup: %w", id, errdefs.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("freezer state %s: %w", id, err)
	}
	return st, nil
}

func (e *Executor) load(id string) (*libcontainer.Container, error) {
	if err := validateID(id); err != nil {
		return nil, err
	}
	c, err := libcontainer.Load(e.runtimeRoot(), id)
	if errors.Is(err, libcontainer.ErrNotExist) {
		return nil, fmt.Errorf("%w: %w", err, errdefs.ErrNotFound)
	}
	return c, err
}
