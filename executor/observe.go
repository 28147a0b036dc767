package executor

import (
	"os"
	"path/filepath"

	"github.com/cairn-run/cairn/internal/procstat"
)

// Observe reports what the machine shows for a container, for startup
// recovery: whether the shim and the process that p names are alive, the
// shim's exit record, the freezer state and whether libcontainer state
// exists. It changes nothing; an unreadable exit record is reported as
// absent.
func (e *Executor) Observe(id string, p Process) Observation {
	if validateID(id) != nil {
		return Observation{}
	}
	o := Observation{
		ShimAlive:    procstat.Alive(p.ShimPID, p.ShimStartTime),
		ProcessAlive: procstat.Alive(p.PID, p.StartTime),
	}
	if rec, ok, err := readExitFile(e.containerDir(id), p); err == nil && ok {
		x := rec.exit()
		o.Exit = &x
	}
	o.Freezer, _ = e.mounts.freezerState(e.cgroupPath(id))
	if _, err := os.Stat(filepath.Join(e.runtimeRoot(), id)); err == nil {
		o.StateDirExists = true
	}
	return o
}
