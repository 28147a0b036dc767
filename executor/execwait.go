package executor

import (
	"os"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// libcontainer's Run returns once the container's init (this binary, as
// `cairn init`) was told to go on, a moment before it execs the user's
// command. A signal that lands in that moment meets the Go runtime of the
// stub instead of the user's process: a SIGTERM then ends the container
// with status 2, a code its command never returned. So the shim reports
// the container started only once the init runs another binary.

// execWaitLimit bounds the wait; past it the start is reported anyway.
const execWaitLimit = 2 * time.Second

// The exec usually follows Run within a few hundred microseconds, but
// time.Sleep cannot wait less than about a millisecond (the runtime's timers
// wake through a poller that waits in whole milliseconds), which made this
// wait 2-3 ms. The shim has nothing else to do meanwhile, so the polls sleep
// in nanosleep(2), which blocks only this thread and wakes within tens of
// microseconds.
const (
	execPollFirst = 25 * time.Microsecond
	execPollMax   = time.Millisecond
)

// waitExec waits until process pid no longer runs this executable (it
// exec'd, or it is gone).
func waitExec(pid int) {
	self, err := os.Stat("/proc/self/exe")
	if err != nil {
		return
	}
	exe := "/proc/" + strconv.Itoa(pid) + "/exe"
	deadline := time.Now().Add(execWaitLimit)
	for pause := execPollFirst; time.Now().Before(deadline); pause = min(2*pause, execPollMax) {
		fi, err := os.Stat(exe)
		if err != nil || !sameFile(fi, self) {
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
