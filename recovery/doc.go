// Package recovery owns what cairnd does when it starts: it observes, for
// every container the journal knows, what the machine shows (is the shim
// alive? the process, by PID and start time? did the shim leave an exit
// record? is the freezer frozen? is the rootfs mounted?), decides with one
// pure function (Decide) what to do about it, carries that out, and appends
// each decision to the journal as a RECONCILED record, so `cairn history`
// shows what recovery did. It also removes what removed containers left
// behind. Images (DecideImage) and volumes (DecideVolume: an unfinished
// create rolls back unless its directory is whole, an unfinished remove
// finishes) are decided first, each with its own pure table. A container's
// volumes and binds need nothing: libcontainer mounts them inside the
// container's mount namespace, so the host has nothing to unmount.
// Once every container is decided the runner hands the stopped ones to
// the restart policy (Runner.Restarts): an unfinished policy restart is
// decided like a start, rolled back when its process never ran, and then
// decided again by the policy, so it happens exactly once.
//
// Recovery never thaws a paused container, never unmounts a live one's
// rootfs, and never invents an exit code: when nobody can know it, the
// exit is recorded as unknown, with the reason.
package recovery
