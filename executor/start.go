package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cairn-run/cairn/internal/errdefs"
	"github.com/cairn-run/cairn/internal/procstat"
)

// Start runs spec's container under a new shim and returns once the
// container's process is about to exec the user's command (libcontainer's
// Run has returned in the shim). On failure nothing is left behind: no shim,
// no cgroup, no libcontainer state, no files but a container.log that
// existed before. The shim is this process's child until it exits, and is
// reaped here so no zombie stays while the daemon lives.
func (e *Executor) Start(ctx context.Context, spec Spec) (Process, error) {
	began := time.Now()
	if err := e.checkSpec(spec); err != nil {
		return Process{}, err
	}
	id := spec.ID
	dir := e.containerDir(id)
	if err := e.checkNotRunning(id); err != nil {
		return Process{}, err
	}
	defer e.warm.during()()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Process{}, fmt.Errorf("start %s: %w", id, err)
	}
	_, statErr := os.Stat(filepath.Join(dir, logFileName))
	hadLog := statErr == nil
	_, statErr = os.Stat(filepath.Join(dir, shimLogName))
	hadShimLog := statErr == nil
	// Leftovers of an earlier run would be mistaken for this one's. The exit
	// record stays: it names its shim, and until the daemon has journaled
	// the previous run's exit it is the only evidence of it (a restart
	// records that exit only once this start is done).
	for _, name := range []string{socketName, shimFileName} {
		_ = os.Remove(filepath.Join(dir, name))
	}

	tr := startTrace{began: began, prepared: time.Now()}
	p, err := e.spawnShim(ctx, spec, &tr)
	if err != nil {
		if serr := e.scrubFailedStart(id, hadLog, hadShimLog); serr != nil {
			err = fmt.Errorf("%w; cleanup: %w", err, serr)
		}
		return Process{}, fmt.Errorf("start %s: %w", id, err)
	}
	tr.log(e.log, id)
	return p, nil
}

// startTrace is when the steps of a Start ended, logged at debug level.
type startTrace struct {
	began, prepared, shimTaken, assigned, ready time.Time
	standby                                     bool // the shim was a standby one, not launched for this start
	shim                                        *startTimings
}

func (tr *startTrace) log(log *slog.Logger, id string) {
	if !log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	attrs := []any{"container", id,
		"total", tr.ready.Sub(tr.began),
		"prepare", tr.prepared.Sub(tr.began),
		"take_shim", tr.shimTaken.Sub(tr.prepared), "standby", tr.standby,
		"assign", tr.assigned.Sub(tr.shimTaken),
		"shim_run", tr.ready.Sub(tr.assigned)}
	if t := tr.shim; t != nil {
		us := func(n int64) time.Duration { return time.Duration(n) * time.Microsecond }
		attrs = append(attrs, "shim_prepare", us(t.PrepareUS), "lc_create", us(t.CreateUS), "lc_start", us(t.StartUS),
			"lc_exec", us(t.ExecUS))
	}
	log.Debug("container started", attrs...)
}

func (e *Executor) checkSpec(spec Spec) error {
	if err := validateID(spec.ID); err != nil {
		return err
	}
	if len(spec.Args) == 0 || spec.Args[0] == "" {
		return fmt.Errorf("start %s: no command: %w", spec.ID, errdefs.ErrInvalidArgument)
	}
	// sethostname(2) takes at most 64 bytes; failing inside the container's
	// init would be a confusing way to learn that.
	if len(spec.Hostname) > 64 {
		return fmt.Errorf("start %s: hostname longer than 64 bytes: %w", spec.ID, errdefs.ErrInvalidArgument)
	}
	if !filepath.IsAbs(spec.Rootfs) {
		return fmt.Errorf("start %s: rootfs %q must be an absolute path: %w", spec.ID, spec.Rootfs, errdefs.ErrInvalidArgument)
	}
	if fi, err := os.Stat(spec.Rootfs); err != nil || !fi.IsDir() {
		return fmt.Errorf("start %s: rootfs %q is not a directory: %w", spec.ID, spec.Rootfs, errdefs.ErrInvalidArgument)
	}
	return nil
}

// checkNotRunning refuses to start over a container that still has a shim,
// libcontainer state or a cgroup: those belong to a run that was not cleaned
// up yet.
func (e *Executor) checkNotRunning(id string) error {
	rec, ok, err := readShimRecord(e.containerDir(id))
	if err != nil {
		return fmt.Errorf("start %s: %w", id, err)
	}
	if ok && procstat.Alive(rec.PID, rec.StartTime) {
		return fmt.Errorf("start %s: shim %d still running: %w", id, rec.PID, errdefs.ErrAlreadyExists)
	}
	if _, err := os.Stat(filepath.Join(e.runtimeRoot(), id)); err == nil {
		return fmt.Errorf("start %s: libcontainer state exists: %w", id, errdefs.ErrAlreadyExists)
	}
	return nil
}

func (e *Executor) spawnShim(ctx context.Context, spec Spec, tr *startTrace) (Process, error) {
	sp, standby, err := e.takeShim()
	if err != nil {
		return Process{}, err
	}
	tr.shimTaken, tr.standby = time.Now(), standby
	defer sp.ctl.Close()
	defer func() { go e.refillStandby() }()
	fail := func(err error) (Process, error) {
		sp.kill()
		return Process{}, err
	}
	a := assignment{Version: protocolVersion, Spec: spec, Dir: e.containerDir(spec.ID), Runtime: e.runtimeRoot(), CgroupParent: e.cfg.CgroupParent}
	startedAt := time.Now()
	if err := json.NewEncoder(sp.ctl).Encode(a); err != nil {
		return fail(fmt.Errorf("hand container to shim %d: %w", sp.pid, err))
	}
	tr.assigned = time.Now()
	stop := context.AfterFunc(ctx, func() { _ = sp.ctl.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	var raw json.RawMessage
	if err := json.NewDecoder(sp.ctl).Decode(&raw); err != nil {
		if ctx.Err() != nil {
			return fail(ctx.Err())
		}
		// EOF: the shim died before saying anything; its log says why.
		<-sp.exited
		return Process{}, fmt.Errorf("shim exited without reporting (%s): %s", sp.cmd.ProcessState, e.shimLogTail(spec.ID))
	}
	var msg readyMessage
	if err := decodeMessage("shim ready message", raw, &msg); err != nil {
		// A shim binary newer than this daemon: its container cannot be
		// managed from here, so it is not kept.
		return fail(err)
	}
	if msg.Error != "" {
		<-sp.exited
		return Process{}, msg.startError()
	}
	tr.ready, tr.shim = time.Now(), msg.Timings
	return Process{
		PID:           msg.PID,
		StartTime:     msg.StartTime,
		ShimPID:       sp.pid,
		ShimStartTime: sp.startTime,
		StartedAt:     startedAt,
	}, nil
}

// shimLogTail returns the end of the shim's log for error messages.
func (e *Executor) shimLogTail(id string) string {
	f, err := os.Open(filepath.Join(e.containerDir(id), shimLogName))
	if err != nil {
		return "no shim log"
	}
	defer f.Close()
	const max = 2048
	if fi, err := f.Stat(); err == nil && fi.Size() > max {
		_, _ = f.Seek(-max, io.SeekEnd)
	}
	data, _ := io.ReadAll(f)
	return strings.TrimSpace(string(data))
}

// scrubFailedStart removes everything a failed Start may have created. The
// shim destroys its container on failure, but it may have been killed
// half-way, so the cgroup and state are checked here again.
func (e *Executor) scrubFailedStart(id string, keepLog, keepShimLog bool) error {
	// A shim killed after it started the container (its ready message
	// could not be used) leaves a live init behind.
	err := errors.Join(e.killInit(id), e.destroy(id))
	dir := e.containerDir(id)
	remove := []string{socketName, exitFileName, shimFileName}
	if !keepLog {
		remove = append(remove, logFileName)
	}
	if !keepShimLog {
		remove = append(remove, shimLogName)
	}
	for _, name := range remove {
		if rerr := os.Remove(filepath.Join(dir, name)); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			err = errors.Join(err, rerr)
		}
	}
	_ = os.Remove(dir) // only if empty: an old container.log keeps it
	return err
}
