package statemachine

import (
	"context"
	"fmt"

	"github.com/cairn-run/cairn/internal/errdefs"
	"github.com/cairn-run/cairn/resources"
)

// Limiter is implemented by a Runner that can change the limits of a live
// container (the executor, through libcontainer's cgroup manager).
type Limiter interface {
	UpdateLimits(id string, p Process, r resources.Resources) error
}

// Update changes a container's limits: `docker update`. The intent
// carries every limit the container will have; for a running or paused
// container the cgroup is written after it is durable, and the outcome
// then makes the new limits the container's (a failed write restores the
// old ones and is recorded as FAILED). A created or stopped container gets
// them at its next start.
func (m *Machine) Update(ctx context.Context, id string, u resources.Update) (Container, error) {
	if u.IsZero() {
		return Container{}, fmt.Errorf("nothing to update: %w", errdefs.ErrInvalidArgument)
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
	var old resources.Resources
	if c.Config != nil {
		old = c.Config.Resources
	}
	next, err := old.Apply(u)
	if err != nil {
		return Container{}, err
	}
	return m.transit(ctx, c, EventUpdate, &Args{Resources: &next}, nil)
}

// writeLimits is the update's step: it writes the new limits to the live
// container's cgroup, and on failure puts the old ones back so that the
// step leaves nothing behind.
func (m *Machine) writeLimits(w *work) error {
	lim, ok := m.d.Runner.(Limiter)
	if !ok {
		return fmt.Errorf("update %s: this runtime cannot change limits: %w", w.c.ID, errdefs.ErrFailedPrecondition)
	}
	if w.c.Process == nil || w.args.Resources == nil {
		return fmt.Errorf("update %s: no process or no limits: %w", w.c.ID, errdefs.ErrFailedPrecondition)
	}
	err := lim.UpdateLimits(w.c.ID, *w.c.Process, *w.args.Resources)
	if err == nil {
		return nil
	}
	var old resources.Resources
	if w.c.Config != nil {
		old = w.c.Config.Resources
	}
	if rerr := lim.UpdateLimits(w.c.ID, *w.c.Process, old); rerr != nil {
		return fmt.Errorf("update %s: %w (restoring the old limits: %w)", w.c.ID, err, rerr)
	}
	return fmt.Errorf("update %s: %w", w.c.ID, err)
}
