package statemachine

import (
	"context"
	"fmt"
	"time"

	"github.com/cairn-run/cairn/internal/errdefs"
)

// Policy restarts. After a watched exit is recorded (and at daemon start,
// for every stopped container), DecideRestart says whether and when the
// container starts again. The wait is a timer in cairnd; when it fires,
// the restart is a transition of its own, EventPolicyRestart: its intent
// carries the restart count it will make and the delay it waited, so the
// fold rebuilds both, and recovery decides an unfinished one like a start
// (process alive: forward; not: back, and decided again). A container has
// at most one restart scheduled; any transition of it in between (a user's
// start, remove, a new policy) makes the timer re-check, so it never starts
// a container twice.

// restartTimer is one scheduled policy restart.
type restartTimer struct {
	cancel chan struct{}
}

func validateRestartPolicy(p RestartPolicy, autoRemove bool) error {
	if _, err := ParseRestartPolicy(p.String()); err != nil {
		return err
	}
	if autoRemove && !p.IsNone() {
		return fmt.Errorf("conflicting options: restart policy %s and auto-remove: %w", p, errdefs.ErrInvalidArgument)
	}
	return nil
}

// SetRestartPolicy changes container id's restart policy, journaled; its
// state stays as it is. A stopped container is not started by it, but a
// restart already scheduled is decided again under the new policy.
func (m *Machine) SetRestartPolicy(ctx context.Context, id string, p RestartPolicy) (Container, error) {
	unlock, err := m.lock(ctx, id)
	if err != nil {
		return Container{}, err
	}
	defer unlock()
	c, err := m.current(id)
	if err != nil {
		return c, err
	}
	if err := validateRestartPolicy(p, c.AutoRemove); err != nil {
		return c, err
	}
	return m.transit(ctx, c, EventSetRestartPolicy, &Args{RestartPolicy: &p}, nil)
}

// ResumeRestarts decides, at daemon start and once recovery is done, the
// restart of every stopped container of views: one that exited while
// cairnd was down, or was stopped by its shutdown, or whose policy restart
// was cut short, starts again as its policy says, the backoff continuing
// where it was. rebooted: the machine booted since.
func (m *Machine) ResumeRestarts(views []Container, rebooted bool) {
	for _, v := range views {
		if c, ok := m.d.Journal.Container(v.ID); ok {
			m.scheduleRestart(c, true, rebooted)
		}
	}
}

// scheduleRestart decides whether stopped container c starts again and, if
// so, starts it once the delay after its exit is over.
func (m *Machine) scheduleRestart(c Container, atDaemonStart, rebooted bool) {
	if c.State != StateStopped || c.Pending != nil || c.RestartPolicy.IsNone() {
		return
	}
	d := DecideRestart(restartInput(c, atDaemonStart, rebooted))
	if !d.Restart {
		m.log.Debug("no policy restart", "container", c.ID, "reason", d.Reason)
		return
	}
	exitAt := c.FinishedAt
	wait := time.Until(exitAt.Add(d.Delay))
	t := &restartTimer{cancel: make(chan struct{})}
	m.mu.Lock()
	if old, ok := m.restarts[c.ID]; ok {
		close(old.cancel)
	}
	m.restarts[c.ID] = t
	m.mu.Unlock()
	m.log.Info("policy restart scheduled", "container", c.ID, "policy", c.RestartPolicy.String(), "delay", d.Delay, "in", max(wait, 0), "restart_count", d.Count)
	m.watchers.Go(func() {
		timer := time.NewTimer(max(wait, 0))
		defer timer.Stop()
		select {
		case <-m.ctx.Done():
			return // the next daemon decides again, from the journal
		case <-t.cancel:
			return
		case <-timer.C:
		}
		m.restartByPolicy(c.ID, t, exitAt, atDaemonStart, rebooted)
	})
}

// restartByPolicy runs the policy restart timer t scheduled, if the
// container is still stopped from the same exit and the decision, taken
// again on its view now, still says restart.
func (m *Machine) restartByPolicy(id string, t *restartTimer, exitAt time.Time, atDaemonStart, rebooted bool) {
	unlock, err := m.lock(m.ctx, id)
	if err != nil {
		return // the daemon is stopping
	}
	defer unlock()
	m.mu.Lock()
	current := m.restarts[id] == t
	if current {
		delete(m.restarts, id)
	}
	m.mu.Unlock()
	if !current {
		return
	}
	c, ok := m.d.Journal.Container(id)
	if !ok || c.State != StateStopped || c.Pending != nil || !c.FinishedAt.Equal(exitAt) {
		return // removed, started by the user, or exited again since
	}
	d := DecideRestart(restartInput(c, atDaemonStart, rebooted))
	if !d.Restart {
		return // the policy changed meanwhile
	}
	m.warm()
	args := &Args{RestartCount: d.Count, RestartDelay: Duration(d.Delay)}
	if _, err := m.transit(m.ctx, c, EventPolicyRestart, args, nil); err != nil {
		m.log.Error("policy restart failed", "container", id, "policy", c.RestartPolicy.String(), "restart_count", d.Count, "error", err)
	}
}

// dropRestart cancels the restart scheduled for container id and reports
// whether there was one.
func (m *Machine) dropRestart(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.restarts[id]
	if ok {
		close(t.cancel)
		delete(m.restarts, id)
	}
	return ok
}
