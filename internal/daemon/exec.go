package daemon

import (
	"context"
	"errors"

	"github.com/cairn-run/cairn/api"
	"github.com/cairn-run/cairn/executor"
	"github.com/cairn-run/cairn/internal/errdefs"
	"github.com/cairn-run/cairn/recovery"
	sm "github.com/cairn-run/cairn/statemachine"
)

// execRuntime adapts the executor's exec sessions, attach, resize and top
// to the driver's ExecRunner, recovery's ExecRuntime and the API's ports.
type execRuntime struct{ exec *executor.Executor }

func (r execRuntime) ResolveUser(ctx context.Context, id, user string) (sm.ExecUser, error) {
	u, err := r.exec.ResolveUser(ctx, id, user)
	return sm.ExecUser{UID: u.UID, GID: u.GID, Groups: u.Groups, Home: u.Home}, err
}

func (r execRuntime) Exec(ctx context.Context, id string, _ sm.Process, spec sm.ExecSpec) (sm.Process, sm.ExecIO, error) {
	p, stream, err := r.exec.Exec(ctx, id, executor.ExecSpec{
		ID: spec.ID, Args: spec.Args, Env: spec.Env, Cwd: spec.Workdir,
		User:     executor.User{UID: spec.User.UID, GID: spec.User.GID, Groups: spec.User.Groups, Home: spec.User.Home},
		Terminal: spec.TTY, Stdin: spec.Stdin, Attach: spec.Attach, Rows: spec.Rows, Cols: spec.Cols,
	})
	if err != nil {
		return sm.Process{}, nil, err
	}
	proc := sm.Process{PID: p.PID, StartTime: p.StartTime, StartedAt: p.StartedAt}
	if stream == nil {
		return proc, nil, nil // a nil *Stream in the interface would not be nil
	}
	return proc, stream, nil
}

func (r execRuntime) WaitExec(ctx context.Context, id string, container sm.Process, execID string, p sm.Process) (sm.Exit, error) {
	e, err := r.exec.WaitExec(ctx, id, executor.Process(container), execID, executor.ExecProcess{PID: p.PID, StartTime: p.StartTime})
	return exitOf(e), err
}

func (r execRuntime) ReleaseExec(ctx context.Context, id, execID string) error {
	return r.exec.ReleaseExec(ctx, id, execID)
}

// execRecovery adapts the executor to recovery's ExecRuntime.
type execRecovery struct{ exec *executor.Executor }

func (r execRecovery) InspectExec(ctx context.Context, id string, container sm.Process, execID string) (recovery.ExecObservation, error) {
	st, err := r.exec.InspectExec(ctx, id, executor.Process(container), execID)
	if err != nil {
		return recovery.ExecObservation{}, err
	}
	obs := recovery.ExecObservation{Shim: recovery.ExecShimLacks}
	switch {
	case st.Known:
		obs.Shim = recovery.ExecShimHas
		obs.Process = &sm.Process{PID: st.Process.PID, StartTime: st.Process.StartTime, ShimPID: container.ShimPID, ShimStartTime: container.ShimStartTime}
	case st.ShimGone:
		obs.Shim = recovery.ExecShimGone
	}
	if st.Exit != nil {
		e := exitOf(*st.Exit)
		obs.Exit = &e
	}
	return obs, nil
}

func (r execRecovery) ExecExitRecord(id, execID string) (*sm.Exit, error) {
	ex, err := r.exec.ExecExitRecord(id, execID)
	if err != nil || ex == nil {
		return nil, err
	}
	e := exitOf(*ex)
	return &e, nil
}

func (r execRecovery) ReleaseExec(ctx context.Context, id, execID string) error {
	return r.exec.ReleaseExec(ctx, id, execID)
}

func (r execRecovery) StartTime(pid int) uint64 {
	t, _ := executor.StartTime(pid)
	return t
}

// stdio adapts the executor's attach, resize and top to the API.
type stdio struct{ exec *executor.Executor }

func (s stdio) Attach(ctx context.Context, id string, stdin bool) (api.Stream, error) {
	st, err := s.exec.Attach(ctx, id, executor.AttachOptions{Stdin: stdin})
	if err != nil {
		return nil, err
	}
	return st, nil
}

func (s stdio) Resize(ctx context.Context, id, execID string, rows, cols uint16) error {
	return s.exec.Resize(ctx, id, execID, rows, cols)
}

func (s stdio) Top(id string) ([]api.Process, error) {
	ps, err := s.exec.Top(id)
	if errors.Is(err, errdefs.ErrFailedPrecondition) {
		return nil, err
	}
	out := make([]api.Process, 0, len(ps))
	for _, p := range ps {
		out = append(out, api.Process{PID: p.PID, PPID: p.PPID, UID: p.UID, State: p.State, Args: p.Args})
	}
	return out, err
}

// interactive gives the container service attach, exec, resize and top.
func (d *Daemon) interactive(s *api.ContainerServer) *api.ContainerServer {
	s.Stdio, s.Execs, s.ExecView = stdio{d.exec}, d.machine, d.journal
	return s
}
