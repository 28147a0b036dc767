package drill

import (
	"slices"
	"strings"
	"syscall"
	"time"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/internal/inspect"
)

// killVictims kills, while the daemon is down, the shim and/or the process
// the plan asks for, among containers whose fate is then certain: settled
// before the crash, with a command that runs until signaled. A process is
// only taken from a running container: under cgroup v1 a frozen process
// does not die of SIGKILL until thawed. When both die, the shim dies first,
// so that nobody can record the process's exit code.
func (r *run) killVictims(p plan, cr *Crash, res *cycleResult) {
	var procs, shims []*cairnv1.Container
	for _, c := range cr.Before {
		if !cr.Settled(c) || endsByItself(c.Command) || !r.observer.isShim(int(c.ShimPid)) {
			continue
		}
		if hasProcess(c.State) {
			shims = append(shims, c)
		}
		if c.State == stateRunning && inspect.Alive(int(c.Pid), c.PidStartTime) {
			procs = append(procs, c)
		}
	}
	// In slot order, so that a seed picks the same victims.
	bySlot := func(a, b *cairnv1.Container) int { return r.ops.slotOf(a.Id) - r.ops.slotOf(b.Id) }
	slices.SortStableFunc(procs, bySlot)
	slices.SortStableFunc(shims, bySlot)

	if p.killShim && p.killProc && p.sameVictim {
		if len(procs) > 0 {
			c := procs[p.procPick%len(procs)]
			r.killShim(c, cr, res)
			r.killProc(c, cr, res)
		}
		return
	}
	if p.killShim && len(shims) > 0 {
		r.killShim(shims[p.shimPick%len(shims)], cr, res)
	}
	procs = slices.DeleteFunc(procs, func(c *cairnv1.Container) bool { return cr.KilledShim[c.Id] })
	if p.killProc && len(procs) > 0 {
		r.killProc(procs[p.procPick%len(procs)], cr, res)
	}
}

func (r *run) killShim(c *cairnv1.Container, cr *Crash, res *cycleResult) {
	pid := int(c.ShimPid)
	st, err := inspect.ReadStat(pid)
	if err != nil || !r.observer.isShim(pid) {
		return
	}
	if syscall.Kill(pid, syscall.SIGKILL) != nil {
		return
	}
	waitGone(pid, st.StartTime)
	cr.KilledShim[c.Id], cr.ShimLost[c.Id], r.shimLost[c.Id] = true, true, c.Pid
	res.KilledShim = append(res.KilledShim, c.Id)
}

func (r *run) killProc(c *cairnv1.Container, cr *Crash, res *cycleResult) {
	pid := int(c.Pid)
	// The pid is only the container's if the start time still matches.
	if !inspect.Alive(pid, c.PidStartTime) || syscall.Kill(pid, syscall.SIGKILL) != nil {
		return
	}
	waitGone(pid, c.PidStartTime)
	cr.KilledProc[c.Id] = true
	res.KilledProc = append(res.KilledProc, c.Id)
}

// waitGone waits, for a while, until the process that started at startTime
// is gone or a zombie.
func waitGone(pid int, startTime uint64) {
	deadline := time.Now().Add(5 * time.Second)
	for inspect.Alive(pid, startTime) && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
}

// isShim reports whether pid is a live `cairn shim` of this drill's
// executor: the drill must never signal a process that only reuses a pid.
func (ob observer) isShim(pid int) bool {
	return pid > 0 && !inspect.IsZombie(pid) && isShimCmdline(inspect.Cmdline(pid), ob.execDir)
}

func isShimCmdline(cmdline, execDir string) bool {
	return strings.HasSuffix(cmdline, " shim --exec-dir "+execDir)
}
