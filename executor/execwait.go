package executor

import (
	"os"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// libcontainer's Run returns once the container's init (the shim binary,
// as `<bin> init`) was told to go on, a moment before it execs the user's
// command: about a millisecond and a half here, most of it the kernel
// ending the stub's threads. A signal that lands in that moment meets the Go
// runtime of the stub instead of the user's process: a SIGTERM then ends
// the container with status 2, a code its command never returned. The
// shim used to report a start only once the init ran another binary, which
// every start paid for; now a signal the executor sends waits for that
// instead (Signal, below), which only a signal within that moment pays for.
// A Start returns while the init may still be about to exec.

// execWaitLimit bounds the wait; past it the signal is sent anyway.
const execWaitLimit = 2 * time.Second

// time.Sleep cannot wait less than about a millisecond (the runtime's timers
// wake through a poller that waits in whole milliseconds), so the polls
// sleep in nanosleep(2), which blocks only this thread and wakes within tens
// of microseconds.
const (
	execPollFirst = 25 * time.Microsecond
	execPollMax   = time.Millisecond
)

// catchable reports whether sig can be caught, so that the init stub's Go
// runtime would act on it rather than the user's command.
func catchable(sig unix.Signal) bool { return sig != unix.SIGKILL && sig != unix.SIGSTOP }

// waitExec waits until process pid no longer runs the init stub, the shim
// binary this executor starts (it exec'd, or it is gone). A container
// started under an earlier daemon exec'd long ago, and its stub is another
// sealed copy, so it is not waited for.
func (e *Executor) waitExec(pid int) {
	if e.stub == nil || pid <= 0 {
		return
	}
	exe := "/proc/" + strconv.Itoa(pid) + "/exe"
	deadline := time.Now().Add(execWaitLimit)
	for pause := execPollFirst; time.Now().Before(deadline); pause = min(2*pause, execPollMax) {
		fi, err := os.Stat(exe)
		if err != nil || !sameFile(fi, e.stub) {
			return
		}
		ts := unix.NsecToTimespec(pause.Nanoseconds())
		_ = unix.Nanosleep(&ts, nil) // EINTR only shortens a poll
	}
}

func sameFile(a, b os.FileInfo) bool {
	sa, ok1 := a.Sys().(*syscall.Stat_t)
	sb, ok2 := b.Sys().(*syscall.Stat_t)
	return ok1 && ok2 && sa.Dev == sb.Dev && sa.Ino == sb.Ino
}
