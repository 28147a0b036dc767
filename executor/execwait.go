package executor

import (
	"os"
	"strconv"
	"syscall"
	"time"
)

// libcontainer's Run returns once the container's init (this binary, as
// `cairn init`) was told to go on, a moment before it execs the user's
// command. A signal that lands in that moment meets the Go runtime of the
// stub instead of the user's process: a SIGTERM then ends the container
// with status 2, a code its command never returned. So the shim reports
// the container started only once the init runs another binary.

// execWaitLimit bounds the wait; past it the start is reported anyway.
const execWaitLimit = 2 * time.Second

// waitExec waits until process pid no longer runs this executable (it
// exec'd, or it is gone).
func waitExec(pid int) {
	self, err := os.Stat("/proc/self/exe")
	if err != nil {
		return
	}
	exe := "/proc/" + strconv.Itoa(pid) + "/exe"
	deadline := time.Now().Add(execWaitLimit)
	for pause := 20 * time.Microsecond; time.Now().Before(deadline); pause = min(2*pause, time.Millisecond) {
		fi, err := os.Stat(exe)
		if err != nil || !sameFile(fi, self) {
			return
		}
		time.Sleep(pause)
	}
}

func sameFile(a, b os.FileInfo) bool {
	sa, ok1 := a.Sys().(*syscall.Stat_t)
	sb, ok2 := b.Sys().(*syscall.Stat_t)
	return ok1 && ok2 && sa.Dev == sb.Dev && sa.Ino == sb.Ino
}
