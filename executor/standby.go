package executor

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/cairn-run/cairn/internal/procstat"
)

// A shim's own startup (exec of the binary, Go runtime, preparing the
// process) is a fixed cost of every container start. The executor keeps one
// shim started ahead of need, waiting on its control socket, and hands it
// the next container; a replacement is started after each start, off the
// critical path. A shim whose control socket closes unused just exits, so a
// daemon that dies leaves no standby shim behind.

// shimProc is a started shim: waiting for its container, or running it.
type shimProc struct {
	cmd       *exec.Cmd
	ctl       *os.File // our end of the control socket
	pid       int
	startTime uint64
	exited    chan struct{} // closed once reaped
}

// launchShim starts a shim in its own session with a control socket on fd 3.
// The daemon is its parent and reaps it, so no zombie stays while the
// daemon lives.
func (e *Executor) launchShim() (*shimProc, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("shim control socket: %w", err)
	}
	// Only our end is non-blocking, so reads on it can have deadlines; the
	// ends are separate open files, so the shim's stays blocking.
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		return nil, err
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "shim-control"), os.NewFile(uintptr(fds[1]), "shim-control")
	defer theirs.Close()
	cmd := exec.Command(e.shimBin, shimArgs(e.cfg.Dir)...) // Path is replaced by the sealed copy
	cmd.Dir = e.cfg.Dir
	cmd.Env = shimEnv(os.Environ())
	cmd.ExtraFiles = []*os.File{theirs}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := e.startShimProcess(cmd); err != nil {
		ours.Close()
		return nil, fmt.Errorf("spawn shim: %w", err)
	}
	sp := &shimProc{cmd: cmd, ctl: ours, pid: cmd.Process.Pid, exited: make(chan struct{})}
	// Read before anyone can reap the shim: an unreaped child keeps its /proc
	// entry even if it already exited.
	st, statErr := procstat.Read(sp.pid)
	go func() {
		_ = cmd.Wait()
		close(sp.exited)
	}()
	if statErr != nil {
		sp.kill()
		return nil, fmt.Errorf("shim %d: %w", sp.pid, statErr)
	}
	sp.startTime = st.StartTime
	return sp, nil
}

func (sp *shimProc) alive() bool {
	select {
	case <-sp.exited:
		return false
	default:
		return true
	}
}

// kill ends a shim and waits until it is reaped.
func (sp *shimProc) kill() {
	_ = sp.cmd.Process.Kill()
	_ = sp.ctl.Close()
	<-sp.exited
}

// takeShim returns the standby shim (standby true), or a new one when there
// is none.
func (e *Executor) takeShim() (sp *shimProc, standby bool, err error) {
	e.standbyMu.Lock()
	sp = e.standby
	e.standby = nil
	e.standbyMu.Unlock()
	if sp != nil && sp.alive() {
		e.standbyHits.Add(1)
		return sp, true, nil
	}
	if sp != nil {
		sp.kill()
	}
	e.standbyMisses.Add(1)
	sp, err = e.launchShim()
	return sp, false, err
}

// StandbyStats says how many starts took the standby shim (hits) and how
// many had to start one (misses), and whether a standby shim waits now.
func (e *Executor) StandbyStats() (hits, misses uint64, waiting bool) {
	e.standbyMu.Lock()
	waiting = e.standby != nil && e.standby.alive()
	e.standbyMu.Unlock()
	return e.standbyHits.Load(), e.standbyMisses.Load(), waiting
}

// refillStandby starts a standby shim if there is none.
func (e *Executor) refillStandby() {
	e.standbyMu.Lock()
	busy := e.standby != nil || e.closed || e.refilling
	e.refilling = !busy
	if !busy {
		e.refills.Add(1)
		defer e.refills.Done()
	}
	e.standbyMu.Unlock()
	if busy {
		return
	}
	sp, err := e.launchShim()
	e.standbyMu.Lock()
	e.refilling = false
	keep := err == nil && e.standby == nil && !e.closed
	if keep {
		e.standby = sp
	}
	e.standbyMu.Unlock()
	if err == nil && !keep {
		sp.kill()
	}
}

// stopStandby ends the standby shim for good, after any refill in flight.
func (e *Executor) stopStandby() {
	e.standbyMu.Lock()
	e.closed = true
	e.standbyMu.Unlock()
	e.refills.Wait()
	e.standbyMu.Lock()
	sp := e.standby
	e.standby = nil
	e.standbyMu.Unlock()
	if sp != nil {
		sp.kill()
	}
}
