package recovery

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/cairn-run/cairn/executor"
	sm "github.com/cairn-run/cairn/statemachine"
)

// exitRecordWait bounds the wait for a shim whose container just exited to
// write the exit record, so that recovery does not race it.
const exitRecordWait = 2 * time.Second

// observe gathers what the machine shows of container c. It changes
// nothing.
func (r *Runner) observe(ctx context.Context, c sm.Container) World {
	w := World{Now: time.Now().UTC(), Rebooted: r.Rebooted}
	if c.Pending != nil && c.Pending.Event == sm.EventCreate {
		w.LayersComplete = r.layersComplete(c.MountID)
		return w
	}
	p := c.Process
	if startPending(c) {
		if found, ok := r.Runtime.Discover(ctx, c.ID); ok {
			sp := sm.Process(found)
			p = &sp
		}
	}
	var obs executor.Observation
	if p != nil {
		w.Process = p
		w.ProcessStartTime, _ = executor.StartTime(p.PID)
		w.ShimStartTime, _ = executor.StartTime(p.ShimPID)
		obs = r.observeExit(ctx, c.ID, *p, w)
		if obs.Exit != nil {
			e := ExitFromExecutor(*obs.Exit)
			w.Exit = &e
		}
	} else {
		obs = r.Runtime.Observe(c.ID, executor.Process{})
	}
	w.Frozen = obs.Freezer == "FROZEN"
	w.Freezing = obs.Freezer == "FREEZING"
	// An exit record alone is no leftover: it stays until the next start.
	w.RuntimeLeftovers = obs.StateDirExists || obs.Freezer != ""
	if c.MountID != "" {
		w.Mounted, _ = r.Layers.Mounted(c.MountID)
	}
	return w
}

// observeExit observes p; when its process is gone but its shim still
// lives, the shim is about to write the exit record, so it waits for it.
func (r *Runner) observeExit(ctx context.Context, id string, p sm.Process, w World) executor.Observation {
	obs := r.Runtime.Observe(id, executor.Process(p))
	if obs.ProcessAlive || !obs.ShimAlive || obs.Exit != nil {
		return obs
	}
	ctx, cancel := context.WithTimeout(ctx, exitRecordWait)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for obs.ShimAlive && obs.Exit == nil {
		select {
		case <-ctx.Done():
			return obs
		case <-tick.C:
		}
		obs = r.Runtime.Observe(id, executor.Process(p))
	}
	return obs
}

// layersComplete reports whether a create got its layers fully made: the
// mount is registered and its last directory exists.
func (r *Runner) layersComplete(mountID string) bool {
	m, err := r.Layers.MountInfo(mountID)
	if err != nil {
		return false
	}
	for _, dir := range []string{m.Init, m.Upper, m.Work, m.Rootfs} {
		if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
			return false
		}
	}
	return true
}

// ExitFromExecutor is the journal's form of an exit the executor observed.
func ExitFromExecutor(e executor.Exit) sm.Exit {
	exit := sm.Exit{Code: e.Code, Reason: e.Reason, FinishedAt: e.FinishedAt}
	if exit.Reason == "" && e.Signal != "" {
		exit.Reason = "killed by " + e.Signal
	}
	return exit
}
