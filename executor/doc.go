// Package executor owns the Linux side of a container's life: namespaces,
// cgroups, the freezer and signals, through runc's libcontainer, and the
// per-container shim process that parents every process of the container
// (its init and its exec sessions), holds their stdio and terminals, writes
// the container's log, keeps their exit codes and answers on a unix socket.
//
// A container is started by a shim (Config.ShimBinary, the cairn binary,
// run from a sealed copy as `cairn shim ...`) in its own session,
// so the container and its exit code survive a daemon restart; a shim whose
// container keeps running re-executes itself into a smaller process for the
// wait (idle.go). The daemon persists the returned Process handle and later
// reattaches, waits, signals or cleans up using only that handle and the
// files under Config.Dir. Start, Wait, Cleanup and Remove log their steps'
// timings at debug level to Config.Logger.
//
// On disk, for container <id>:
//
//	<Dir>/containers/<id>/shim.json      the shim's own pid and start time (for Remove without a handle)
//	<Dir>/containers/<id>/shim.sock      the shim's socket (newline-delimited JSON)
//	<Dir>/containers/<id>/exit.json      exit code, written by the shim before it tells anyone
//	<Dir>/containers/<id>/container.log  the init's stdout and stderr in the CRI format (internal/crilog),
//	                                     rotated to container.log.1 ... (kept until Remove)
//	<Dir>/containers/<id>/execs/<x>.json an exec session's exit, written by the shim before it tells
//	                                     anyone, removed when the daemon releases the session
//	<Dir>/containers/<id>/shim.log       the shim's own errors (kept until Remove)
//	<Dir>/runtime/<id>/                  libcontainer state
//
// A Spec's Mounts (binds of host paths, a volume being the bind of its
// directory, and tmpfs) go into libcontainer's config after runc's own
// mounts, parents first (mounts.go); libcontainer makes them inside the
// container's mount namespace, so they never appear on the host.
//
// Everything the daemon and a shim say to each other, and the shim's files,
// follow the versioned shim protocol described in shimproto.go (attach and
// exec streams: frames.go, attach.go, shimio.go, shimexec.go); a daemon
// reads what shims of older versions said and wrote, so it can take over
// their containers after an upgrade.
//
// Limits and security options (Spec.Resources, Spec.Security) become the
// runtime spec's cgroup resources, the init's rlimits, capabilities, the
// seccomp filter and mounts (limits.go); UpdateLimits changes a live
// container's cgroup through libcontainer (update.go), Stats reads it
// (stats.go), and the shim records in exit.json whether the OOM killer
// struck (oom.go). Seccomp needs the binary built with -tags seccomp
// (SeccompSupported).
//
// The package never writes the journal and never decides what a container
// should be doing: it performs verbs and reports what the machine shows.
// Calls for different containers may run concurrently; calls for the same
// container must be serialised by the caller.
package executor
