package executor

import (
	"context"
	"time"

	"github.com/opencontainers/runc/libcontainer"

	"github.com/cairn-run/cairn/internal/procstat"
)

// discoverWait bounds how long Discover waits for a shim that is still
// creating its container to say which process it started.
const discoverWait = 5 * time.Second

// Discover finds the process of the latest start of container id from what
// its shim and libcontainer left, for a start whose outcome the daemon did
// not record (it crashed in between). ok is false when no start got as far
// as a shim. A live shim is asked (it answers once its container runs);
// otherwise the init's identity comes from libcontainer's state, which is
// gone once the shim destroyed the container: then only the shim is known,
// and the exit record says how the process ended.
func (e *Executor) Discover(ctx context.Context, id string) (Process, bool) {
	if validateID(id) != nil {
		return Process{}, false
	}
	dir := e.containerDir(id)
	rec, ok, err := readShimRecord(dir)
	if err != nil || !ok {
		return Process{}, false
	}
	p := Process{ShimPID: rec.PID, ShimStartTime: rec.StartTime}
	if procstat.Alive(rec.PID, rec.StartTime) {
		ctx, cancel := context.WithTimeout(ctx, discoverWait)
		defer cancel()
		if resp, err := callShim(ctx, dir, shimRequest{Op: opState}); err == nil {
			p.PID, p.StartTime = resp.PID, resp.StartTime
			p.StartedAt = startedAt(p.StartTime)
			return p, true
		}
	}
	if c, err := libcontainer.Load(e.runtimeRoot(), id); err == nil {
		if st, err := c.State(); err == nil {
			p.PID, p.StartTime = st.InitProcessPid, st.InitProcessStartTime
			p.StartedAt = startedAt(p.StartTime)
		}
	}
	return p, true
}

// StartTime returns the start time (/proc/<pid>/stat field 22) of the live
// process pid; ok is false when there is none (or only a zombie).
func StartTime(pid int) (uint64, bool) {
	st, err := procstat.Read(pid)
	if err != nil || st.Dead() {
		return 0, false
	}
	return st.StartTime, true
}
