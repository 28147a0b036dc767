package executor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/cairn-run/cairn/internal/errdefs"
	"github.com/cairn-run/cairn/internal/procstat"
	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"
)

// How long teardown waits for processes that were asked to go. A shim exits
// within milliseconds of its container; these bounds only matter when
// something is stuck, and then the caller gets an error instead of a hang.
const (
	shimExitGrace = 2 * time.Second
	killWait      = 5 * time.Second
)

// Cleanup tears down a container whose process has exited: libcontainer
// state and cgroups, a shim that is still around (identified by ShimPID and
// ShimStartTime only), and the socket and shim files. container.log,
// shim.log and the exit record are kept: until the daemon's journal holds
// the exit, the record is its only evidence, and a crash between cleanup and
// the journal write must not lose it (the next Start replaces it). Things
// already gone are fine, so Cleanup can be repeated. A process that is still
// running is ErrFailedPrecondition.
func (e *Executor) Cleanup(id string, p Process) error {
	if err := validateID(id); err != nil {
		return err
	}
	if procstat.Alive(p.PID, p.StartTime) {
		return fmt.Errorf("cleanup %s: process %d still running: %w", id, p.PID, errdefs.ErrFailedPrecondition)
	}
	began := time.Now()
	var errs []error
	if err := stopShim(p.ShimPID, p.ShimStartTime); err != nil {
		errs = append(errs, err)
	}
	shimGone := time.Now()
	if err := e.destroy(id); err != nil {
		errs = append(errs, err)
	}
	destroyed := time.Now()
	dir := e.containerDir(id)
	for _, name := range []string{socketName, shimFileName} {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	e.log.Debug("container cleaned up", "container", id, "total", time.Since(began),
		"shim_exit", shimGone.Sub(began), "destroy", destroyed.Sub(shimGone))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cleanup %s: %w", id, err)
	}
	return nil
}

// Remove deletes everything of the container, logs included. A container
// that is still running is killed first. Already gone is success.
func (e *Executor) Remove(id string) error {
	if err := validateID(id); err != nil {
		return err
	}
	began := time.Now()
	var errs []error
	if err := e.killInit(id); err != nil {
		errs = append(errs, err)
	}
	killed := time.Now()
	if rec, ok, err := readShimRecord(e.containerDir(id)); err != nil {
		errs = append(errs, err)
	} else if ok {
		if err := stopShim(rec.PID, rec.StartTime); err != nil {
			errs = append(errs, err)
		}
	}
	shimGone := time.Now()
	if err := e.destroy(id); err != nil {
		errs = append(errs, err)
	}
	destroyed := time.Now()
	if err := os.RemoveAll(e.containerDir(id)); err != nil {
		errs = append(errs, err)
	}
	e.log.Debug("container removed", "container", id, "total", time.Since(began), "kill", killed.Sub(began),
		"shim_exit", shimGone.Sub(killed), "destroy", destroyed.Sub(shimGone), "files", time.Since(destroyed))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove %s: %w", id, err)
	}
	return nil
}

// IDs lists the containers that have anything on disk under Dir, so that
// the daemon can find leftovers its journal no longer knows.
func (e *Executor) IDs() ([]string, error) {
	var ids []string
	for _, sub := range []string{containersDirName, runtimeDirName} {
		entries, err := os.ReadDir(filepath.Join(e.cfg.Dir, sub))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("list containers: %w", err)
		}
		for _, ent := range entries {
			if ent.IsDir() && validateID(ent.Name()) == nil {
				ids = append(ids, ent.Name())
			}
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids), nil
}

// killInit SIGKILLs the container's init and waits until it is gone, so
// that its shim can record the exit and finish on its own. The init is the
// one libcontainer's state names; without that state every process in the
// container's cgroup is killed instead (the init, once dead, takes the rest
// of its PID namespace with it anyway). Either way a frozen cgroup is thawed,
// as a frozen process cannot even die.
func (e *Executor) killInit(id string) error {
	c, err := libcontainer.Load(e.runtimeRoot(), id)
	if err != nil {
		return e.killCgroup(id)
	}
	st, err := c.State()
	if err != nil || !procstat.Alive(st.InitProcessPid, st.InitProcessStartTime) {
		return e.killCgroup(id)
	}
	if err := c.Signal(unix.SIGKILL); err != nil && !errors.Is(err, libcontainer.ErrNotRunning) &&
		procstat.Alive(st.InitProcessPid, st.InitProcessStartTime) {
		return fmt.Errorf("kill container: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), killWait)
	defer cancel()
	if err := waitProcessGone(ctx, st.InitProcessPid, st.InitProcessStartTime); err != nil {
		return fmt.Errorf("container init %d did not die: %w", st.InitProcessPid, err)
	}
	return nil
}

// killCgroup SIGKILLs every process in the container's cgroup and waits
// until the cgroup is empty.
func (e *Executor) killCgroup(id string) error {
	rel := e.cgroupPath(id)
	if e.mounts.kill(rel) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), killWait)
	defer cancel()
	for len(e.mounts.pids(rel)) > 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("processes %v of cgroup %s did not die", e.mounts.pids(rel), rel)
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

// stopShim makes sure the shim pid+startTime is gone. It first gives the
// shim a moment to finish on its own (record the exit, destroy, answer),
// since killing it mid-way could lose an exit code.
func stopShim(pid int, startTime uint64) error {
	if !procstat.Alive(pid, startTime) {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), shimExitGrace)
	err := waitProcessGone(ctx, pid, startTime)
	cancel()
	if err == nil {
		return nil
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil // gone in the meantime
	}
	defer unix.Close(pidfd)
	if !procstat.Alive(pid, startTime) {
		return nil
	}
	if err := unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("kill shim %d: %w", pid, err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), killWait)
	defer cancel()
	if err := pollUntilReadable(ctx, pidfd); err != nil {
		return fmt.Errorf("shim %d did not die: %w", pid, err)
	}
	return nil
}

// destroy removes the container's libcontainer state and its cgroup in
// every hierarchy. Processes still in the cgroup at this point have no live
// init to belong to (callers check), so they are leftovers of a start that
// died half-way and are killed.
func (e *Executor) destroy(id string) error {
	var errs []error
	c, err := libcontainer.Load(e.runtimeRoot(), id)
	switch {
	case err == nil:
		if err := c.Destroy(); err != nil {
			if errors.Is(err, libcontainer.ErrRunning) || errors.Is(err, libcontainer.ErrPaused) {
				return fmt.Errorf("destroy: container still running: %w", errdefs.ErrFailedPrecondition)
			}
			errs = append(errs, err)
		}
	case errors.Is(err, libcontainer.ErrNotExist):
	default:
		// Unreadable state, e.g. a crash while libcontainer wrote it: remove
		// by hand below.
	}
	if err := e.killCgroup(id); err != nil {
		errs = append(errs, err)
	}
	if err := e.mounts.remove(e.cgroupPath(id)); err != nil {
		errs = append(errs, err)
	}
	if err := os.RemoveAll(filepath.Join(e.runtimeRoot(), id)); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// readShimRecord reads shim.json in dir; ok is false when there is none or
// it names no process (a torn or foreign file). A record of a newer protocol
// version is an error: its shim cannot be judged from here.
func readShimRecord(dir string) (rec shimRecord, ok bool, err error) {
	data, err := os.ReadFile(filepath.Join(dir, shimFileName))
	if err != nil {
		return shimRecord{}, false, nil
	}
	if err := decodeMessage(shimFileName, data, &rec); err != nil {
		if errors.Is(err, errProtocolTooNew) {
			return shimRecord{}, false, err
		}
		return shimRecord{}, false, nil
	}
	if rec.PID <= 0 {
		return shimRecord{}, false, nil
	}
	return rec, true, nil
}
