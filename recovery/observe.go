package recovery

import (
	"context"
	"time"

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
		w.LayersComplete = FactOf(r.Layers.MountComplete(c.MountID))
		return w
	}
	p := c.Process
	if startPending(c) {
		if found, ok := r.Runtime.Discover(ctx, c.ID); ok {
			p = &found
		}
	}
	var obs Observation
	if p != nil {
		w.Process = p
		w.ProcessStartTime = r.Runtime.StartTime(p.PID)
		w.ShimStartTime = r.Runtime.StartTime(p.ShimPID)
		obs = r.observeExit(ctx, c.ID, *p)
		w.Exit = obs.Exit
	} else {
		obs = r.Runtime.Observe(c.ID, sm.Process{})
	}
	w.Freezer = obs.Freezer
	// An exit record alone is no leftover: it stays until the next start.
	w.RuntimeLeftovers = obs.StateDirExists || obs.Freezer != FreezerAbsent
	if c.MountID != "" {
		w.Mounted = FactOf(r.Layers.Mounted(c.MountID))
	}
	return w
}

// observeExit observes p; when its process is gone but its shim still
// lives, the shim is about to write the exit record, so it waits for it.
func (r *Runner) observeExit(ctx context.Context, id string, p sm.Process) Observation {
	obs := r.Runtime.Observe(id, p)
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
		obs = r.Runtime.Observe(id, p)
	}
	return obs
}
