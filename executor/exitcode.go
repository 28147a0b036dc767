package executor

import (
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// exitFromWaitStatus turns a wait status into the shell convention the daemon
// reports: the exit status of a process that exited, 128+signal for one that
// was killed by a signal (SIGKILL -> 137), with the signal's name. ok is false
// for a status that is not an exit (stopped/continued), which wait(2) without
// WUNTRACED never reports; no code is made up for it.
func exitFromWaitStatus(ws syscall.WaitStatus) (code int, signal string, ok bool) {
	switch {
	case ws.Exited():
		return ws.ExitStatus(), "", true
	case ws.Signaled():
		sig := ws.Signal()
		name := unix.SignalName(sig)
		if name == "" {
			name = "signal " + strconv.Itoa(int(sig))
		}
		return 128 + int(sig), name, true
	default:
		return 0, "", false
	}
}
