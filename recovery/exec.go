package recovery

import (
	"context"
	"errors"
	"fmt"
	"time"

	sm "github.com/cairn-run/cairn/statemachine"
)

// ExecPorts are what recovery needs of exec sessions; a zero ExecPorts
// leaves them alone.
type ExecPorts struct {
	Journal   ExecJournal
	Runtime   ExecRuntime
	Lifecycle ExecLifecycle
}

// ExecJournal serves the exec sessions to recover.
type ExecJournal interface {
	// Execs returns every exec session (container "").
	Execs(container string) []sm.Exec
}

// ExecObservation is what the runtime shows of an exec session.
type ExecObservation struct {
	Shim    ExecShim
	Process *sm.Process
	Exit    *sm.Exit
}

// ExecRuntime is the part of the executor recovery observes exec sessions
// and releases them with.
type ExecRuntime interface {
	// InspectExec asks container id's shim (its init is container) about
	// session execID, and reads its exit record when the shim cannot say.
	InspectExec(ctx context.Context, id string, container sm.Process, execID string) (ExecObservation, error)
	// ExitRecord reads a session's exit record alone.
	ExecExitRecord(id, execID string) (*sm.Exit, error)
	ReleaseExec(ctx context.Context, id, execID string) error
	// StartTime is the start time of the live process pid, 0 if none.
	StartTime(pid int) uint64
}

// ExecLifecycle watches reattached exec sessions.
type ExecLifecycle interface {
	ReattachExecs(execs []sm.Exec)
}

// execObserveWait bounds how long recovery waits for a shim's answer about
// one session.
const execObserveWait = 5 * time.Second

// recoverExecs decides every exec session once the containers are
// decided, records the decisions and returns the sessions to watch.
func (r *Runner) recoverExecs(ctx context.Context, rep *Report) ([]sm.Exec, error) {
	e := r.Execs
	if e.Journal == nil || e.Runtime == nil {
		return nil, nil
	}
	var reattach []sm.Exec
	var errs []error
	for _, x := range e.Journal.Execs("") {
		plan := DecideExec(x, r.observeExec(ctx, x))
		if plan.Uncertain != "" {
			r.Log.Error("recovery left an exec session as the journal has it", "exec", x.ID, "reason", plan.Uncertain)
			errs = append(errs, fmt.Errorf("recover exec %s: nothing decided: %s", x.ID, plan.Uncertain))
			continue
		}
		if plan.Record == nil {
			continue
		}
		r.crash(CrashBeforeRecord)
		if _, err := r.Journal.Append(*plan.Record); err != nil {
			errs = append(errs, fmt.Errorf("record recovery of exec %s: %w", x.ID, err))
			continue
		}
		r.crash(CrashAfterRecord)
		r.Log.Info("recovered exec session", "container", x.Container, "exec", x.ID, "event", plan.Record.Event, "to", plan.Record.To, "actions", plan.Actions, "reason", plan.Record.Error)
		if plan.UnknownExit {
			rep.UnknownExits++
		}
		for _, a := range plan.Actions {
			rep.Actions[string(a)]++
			switch a {
			case ExecActionRelease:
				if err := e.Runtime.ReleaseExec(ctx, x.Container, x.ID); err != nil {
					// The record stands; the next start releases it.
					r.Log.Warn("recovery release of an exec session", "exec", x.ID, "error", err)
				}
			case ExecActionReattach:
				if v := findExec(e.Journal.Execs(x.Container), x.ID); v != nil {
					reattach = append(reattach, *v)
				}
			}
		}
	}
	return reattach, errors.Join(errs...)
}

func findExec(execs []sm.Exec, id string) *sm.Exec {
	for i := range execs {
		if execs[i].ID == id {
			return &execs[i]
		}
	}
	return nil
}

// observeExec gathers what DecideExec needs. The shim asked is the one of
// the container's current run; when the container has no process (its run
// ended), there is none and only the session's exit record can tell.
func (r *Runner) observeExec(ctx context.Context, x sm.Exec) ExecWorld {
	w := ExecWorld{Now: time.Now().UTC()}
	rt := r.Execs.Runtime
	if x.State == sm.StateExited && x.Pending == nil {
		// Only a leftover exit record is of interest.
		if exit, err := rt.ExecExitRecord(x.Container, x.ID); err == nil {
			w.Exit = exit
		}
		return w
	}
	var container sm.Process
	if c, ok := r.Journal.Container(x.Container); ok && c.Process != nil && c.State.HasProcess() {
		container = *c.Process
	}
	if container.ShimPID != 0 {
		ctx, cancel := context.WithTimeout(ctx, execObserveWait)
		defer cancel()
		obs, err := rt.InspectExec(ctx, x.Container, container, x.ID)
		if err != nil {
			w.Shim = ExecShimUnknown
			return w
		}
		w.Shim, w.Process, w.Exit = obs.Shim, obs.Process, obs.Exit
	} else {
		exit, err := rt.ExecExitRecord(x.Container, x.ID)
		if err != nil {
			w.Shim = ExecShimUnknown
			return w
		}
		w.Shim, w.Exit = ExecShimGone, exit
	}
	p := x.Process
	if p == nil {
		p = w.Process
	}
	if p != nil && p.PID > 0 {
		st := rt.StartTime(p.PID)
		w.ProcessAlive = st != 0 && st == p.StartTime
	}
	return w
}
