package executor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cairn-run/cairn/internal/procstat"
)

// reasonLost is the Exit.Reason when nothing recorded how the process ended.
const reasonLost = "shim and process gone without an exit record"

// Wait blocks until the container process p has exited and returns how. It
// needs nothing but p and the files under Dir, so it works for a process
// started by an earlier daemon: it asks the shim; if the shim is gone it
// reads exit.json; if that is missing too it waits for the process itself
// to go and then reports the code as unknown (Code nil), never a made-up
// number.
func (e *Executor) Wait(ctx context.Context, id string, p Process) (Exit, error) {
	if err := validateID(id); err != nil {
		return Exit{}, err
	}
	dir := e.containerDir(id)
	resp, err := callShim(ctx, dir, shimRequest{Op: opWait})
	if err == nil {
		if resp.Status != statusExited {
			return Exit{}, fmt.Errorf("wait %s: shim answered status %q", id, resp.Status)
		}
		x := exitFromResponse(resp)
		e.log.Debug("container exit received", "container", id, "since_exit", time.Since(x.FinishedAt))
		return x, nil
	}
	if !errors.Is(err, errShimUnreachable) {
		return Exit{}, fmt.Errorf("wait %s: %w", id, err)
	}

	// The shim is gone (or hung up). It writes exit.json before answering
	// anyone, so a shim that finished left the code there.
	if x, ok, err := e.exitRecord(id, p); err != nil || ok {
		return x, err
	}
	// A process without a shim: nobody can reap it into an exit code, but
	// we can still wait until it is gone, so that Wait means "exited".
	if err := waitProcessGone(ctx, p.PID, p.StartTime); err != nil {
		return Exit{}, fmt.Errorf("wait %s: %w", id, err)
	}
	// A shim that is alive after all (it was only unreachable) records the
	// exit on its way out; give it the chance.
	if procstat.Alive(p.ShimPID, p.ShimStartTime) {
		if err := waitProcessGone(ctx, p.ShimPID, p.ShimStartTime); err != nil {
			return Exit{}, fmt.Errorf("wait %s: %w", id, err)
		}
		if x, ok, err := e.exitRecord(id, p); err != nil || ok {
			return x, err
		}
	}
	return Exit{Reason: reasonLost, FinishedAt: time.Now()}, nil
}

func (e *Executor) exitRecord(id string, p Process) (Exit, bool, error) {
	rec, ok, err := readExitFile(e.containerDir(id), p)
	if err != nil {
		return Exit{}, false, fmt.Errorf("wait %s: %w", id, err)
	}
	if !ok {
		return Exit{}, false, nil
	}
	return rec.exit(), true, nil
}

func exitFromResponse(r shimResponse) Exit {
	x := Exit{Code: r.ExitCode, Signal: r.Signal, Reason: r.Reason, OOMKilled: r.OOMKilled}
	if r.FinishedAt != nil {
		x.FinishedAt = *r.FinishedAt
	} else {
		x.FinishedAt = time.Now()
	}
	return x
}
