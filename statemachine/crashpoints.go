package statemachine

// Crash drills stop the daemon dead at named steps of the transition
// protocol, to prove that recovery finds its way from each of them. A name
// is "<event>.<step>":
//
//	<event>.after-intent   the intent is durable, no side effect done yet
//	<event>.before-done    the side effects are done, the outcome not recorded
//	<event>.after-done     the outcome is recorded, the caller not answered
//	create.after-layers    the init and writable layers exist
//	start|restart.after-mount  the rootfs is mounted, no process yet
//	start|restart.after-exec   the process runs, not yet recorded
//	stop|restart.after-signal  SIGTERM sent, the process may be exiting
//	pause|unpause.after-freeze the freezer changed
//	remove.after-kill      a running container was killed
//	remove.after-files     layers and runtime files are gone

const (
	stepAfterIntent = "after-intent"
	stepBeforeDone  = "before-done"
	stepAfterDone   = "after-done"
	stepAfterLayers = "after-layers"
	stepAfterMount  = "after-mount"
	stepAfterExec   = "after-exec"
	stepAfterSignal = "after-signal"
	stepAfterFreeze = "after-freeze"
	stepAfterKill   = "after-kill"
	stepAfterFiles  = "after-files"
)

// CrashPoints lists every crash point name the driver can reach.
func CrashPoints() []string {
	var names []string
	for _, ev := range []Event{EventCreate, EventStart, EventStop, EventPause, EventUnpause, EventRestart, EventKill, EventRemove, EventForceRemove, EventExit} {
		for _, step := range []string{stepAfterIntent, stepBeforeDone, stepAfterDone} {
			names = append(names, string(ev)+"."+step)
		}
	}
	return append(names,
		"create."+stepAfterLayers,
		"start."+stepAfterMount, "start."+stepAfterExec,
		"restart."+stepAfterSignal, "restart."+stepAfterMount, "restart."+stepAfterExec,
		"stop."+stepAfterSignal,
		"pause."+stepAfterFreeze, "unpause."+stepAfterFreeze,
		"force-remove."+stepAfterKill, "force-remove."+stepAfterFiles, "remove."+stepAfterFiles,
	)
}

func (m *Machine) crash(event Event, step string) {
	if m.d.CrashPoint != nil {
		m.d.CrashPoint(string(event) + "." + step)
	}
}
