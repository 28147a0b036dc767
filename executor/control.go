package executor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"

	"github.com/cairn-run/cairn/internal/errdefs"
	"github.com/cairn-run/cairn/internal/procstat"
)

// The verbs below act through libcontainer's state when it is there. Its
// state directory can be lost (deleted by hand, a disk cleaner, a crash
// while libcontainer rewrote it), and a container whose state is gone must
// still be stoppable, pausable and removable. So each verb falls back to what
// does not need that state: the recorded PID and start time, pinned with a
// pidfd, and the container's own cgroup.

// Signal sends sig to the container's init, but only if p's PID and start
// time still name it; otherwise (exited, or the PID now belongs to someone
// else) the error wraps errdefs.ErrNotFound. libcontainer.Load checks the
// live process against the start time in its state file, and the state must
// match p, so a stale handle never signals a successor. Without libcontainer
// state the process is pinned with a pidfd and checked to be p and in the
// container's cgroup before it is signalled.
func (e *Executor) Signal(id string, p Process, sig unix.Signal) error {
	if err := validateID(id); err != nil {
		return err
	}
	if catchable(sig) {
		e.waitExec(p.PID) // see execwait.go
	}
	c, err := libcontainer.Load(e.runtimeRoot(), id)
	if err != nil {
		if err := e.signalByPidfd(id, p, sig); err != nil {
			return fmt.Errorf("signal %s: %w", id, err)
		}
		return nil
	}
	st, err := c.State()
	if err != nil {
		return fmt.Errorf("signal %s: %w", id, err)
	}
	if st.InitProcessPid != p.PID || st.InitProcessStartTime != p.StartTime {
		return fmt.Errorf("signal %s: process %d (start %d) is not this container's init: %w", id, p.PID, p.StartTime, errdefs.ErrNotFound)
	}
	if err := c.Signal(sig); err != nil {
		// The init may exit between the checks above and the signal.
		if errors.Is(err, libcontainer.ErrNotRunning) || !procstat.Alive(p.PID, p.StartTime) {
			return fmt.Errorf("signal %s: %w: %w", id, err, errdefs.ErrNotFound)
		}
		return fmt.Errorf("signal %s: %w", id, err)
	}
	return nil
}

// signalByPidfd signals the init p without libcontainer's state. Like
// libcontainer, it thaws a frozen cgroup after a SIGKILL, which would
// otherwise hold the process.
func (e *Executor) signalByPidfd(id string, p Process, sig unix.Signal) error {
	pidfd, err := e.pinInit(id, p)
	if err != nil {
		return err
	}
	defer unix.Close(pidfd)
	if err := unix.PidfdSendSignal(pidfd, sig, nil, 0); err != nil {
		if errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("process %d has exited: %w", p.PID, errdefs.ErrNotFound)
		}
		return fmt.Errorf("pidfd_send_signal %d: %w", p.PID, err)
	}
	if sig == unix.SIGKILL {
		e.mounts.thaw(e.cgroupPath(id))
	}
	return nil
}

// pinInit returns a pidfd of the container's init p after checking that it
// is p (PID and start time, checked after the pidfd was opened, so a reused
// PID cannot slip in between) and that it lives in the container's cgroup.
// Anything else is errdefs.ErrNotFound.
func (e *Executor) pinInit(id string, p Process) (int, error) {
	if p.PID <= 0 {
		return -1, fmt.Errorf("no process recorded: %w", errdefs.ErrNotFound)
	}
	pidfd, err := unix.PidfdOpen(p.PID, 0)
	if err != nil {
		return -1, fmt.Errorf("process %d has exited: %w", p.PID, errdefs.ErrNotFound)
	}
	if !procstat.Alive(p.PID, p.StartTime) {
		unix.Close(pidfd)
		return -1, fmt.Errorf("process %d (start %d) has exited: %w", p.PID, p.StartTime, errdefs.ErrNotFound)
	}
	if !e.mounts.inCgroup(p.PID, e.cgroupPath(id)) {
		unix.Close(pidfd)
		return -1, fmt.Errorf("process %d is not in the cgroup of container %s: %w", p.PID, id, errdefs.ErrNotFound)
	}
	return pidfd, nil
}

// Pause freezes every process of the container (freezer FROZEN). Pausing a
// paused container succeeds, so a transition can be replayed after a crash.
// A container whose init is not running (it exited, even while this call
// raced it) is errdefs.ErrFailedPrecondition. p is the container's init; a
// caller without the handle passes the zero Process and the init is looked
// up in libcontainer's state or asked of the shim.
func (e *Executor) Pause(id string, p Process) error {
	return e.freeze(id, p, cgroups.Frozen)
}

// Resume thaws a paused container (freezer THAWED). Resuming a running
// container succeeds, so a transition can be replayed after a crash; a
// container that is not running is errdefs.ErrFailedPrecondition. p is as
// for Pause.
func (e *Executor) Resume(id string, p Process) error {
	return e.freeze(id, p, cgroups.Thawed)
}

func (e *Executor) freeze(id string, p Process, want cgroups.FreezerState) error {
	verb := map[cgroups.FreezerState]string{cgroups.Frozen: "pause", cgroups.Thawed: "resume"}[want]
	if err := validateID(id); err != nil {
		return fmt.Errorf("%s: %w", verb, err)
	}
	c, loadErr := libcontainer.Load(e.runtimeRoot(), id)
	if loadErr != nil {
		c = nil
	}
	init, known := e.initOf(id, p, c)
	var err error
	switch {
	case !known:
		err = errors.New("no init process known")
	case c != nil:
		err = freezeWithLibcontainer(c, init, want)
	default:
		err = e.freezeByCgroup(id, init, want)
	}
	if err == nil {
		return nil
	}
	// Whatever failed, an init that is gone (or never was) means the
	// container is not running: that is the caller's precondition, not a
	// missing object, even when its exit removed the state and cgroup.
	if !known || !procstat.Alive(init.PID, init.StartTime) {
		return fmt.Errorf("%s %s: container is not running: %w", verb, id, errdefs.ErrFailedPrecondition)
	}
	return fmt.Errorf("%s %s: %w", verb, id, err)
}

var errNotRunning = errors.New("container is not running")

// freezeWithLibcontainer pauses or resumes through libcontainer, whose state
// must name init.
func freezeWithLibcontainer(c *libcontainer.Container, init Process, want cgroups.FreezerState) error {
	st, err := c.State()
	if err != nil {
		return err
	}
	if st.InitProcessPid != init.PID || st.InitProcessStartTime != init.StartTime {
		return fmt.Errorf("libcontainer state names process %d, not %d: %w", st.InitProcessPid, init.PID, errNotRunning)
	}
	status, err := c.Status()
	if err != nil {
		return err
	}
	switch {
	case want == cgroups.Frozen && status == libcontainer.Paused,
		want == cgroups.Thawed && status == libcontainer.Running:
		return nil
	case want == cgroups.Frozen && status == libcontainer.Running:
		return c.Pause()
	case want == cgroups.Thawed && status == libcontainer.Paused:
		return c.Resume()
	}
	return fmt.Errorf("container is %s: %w", status, errNotRunning)
}

// freezeByCgroup pauses or resumes through the container's freezer cgroup
// alone, after checking that init is alive and in it, and returns once the
// freezer reports the wanted state.
func (e *Executor) freezeByCgroup(id string, init Process, want cgroups.FreezerState) error {
	pidfd, err := e.pinInit(id, init)
	if err != nil {
		return err
	}
	unix.Close(pidfd)
	rel := e.cgroupPath(id)
	if err := e.mounts.setFreezer(rel, want); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), freezeWait)
	defer cancel()
	for {
		st, err := e.mounts.freezerState(rel)
		if err != nil {
			return err
		}
		if st == string(want) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("freezer still %s after %v, want %s", st, freezeWait, want)
		case <-time.After(time.Millisecond):
		}
	}
}

// freezeWait bounds how long a fallback pause or resume waits for the
// freezer to settle.
const freezeWait = 5 * time.Second

// initLookupWait bounds how long a caller without the handle waits for the
// shim to say which process the init is.
const initLookupWait = 2 * time.Second

// initOf returns the container's init: p when the caller has it, else the
// one libcontainer's state (c, may be nil) names, else the one the shim
// reports as running. known is false when none of them names a process.
func (e *Executor) initOf(id string, p Process, c *libcontainer.Container) (init Process, known bool) {
	if p.PID > 0 {
		return p, true
	}
	if c != nil {
		if st, err := c.State(); err == nil && st.InitProcessPid > 0 {
			return Process{PID: st.InitProcessPid, StartTime: st.InitProcessStartTime}, true
		}
	}
	dir := e.containerDir(id)
	rec, ok, err := readShimRecord(dir)
	if err != nil || !ok || !procstat.Alive(rec.PID, rec.StartTime) {
		return Process{}, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), initLookupWait)
	defer cancel()
	resp, err := callShim(ctx, dir, shimRequest{Op: opState})
	if err != nil || resp.Status != statusRunning || resp.PID <= 0 {
		return Process{}, false
	}
	return Process{PID: resp.PID, StartTime: resp.StartTime, ShimPID: rec.PID, ShimStartTime: rec.StartTime}, true
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
