package executor

import (
	"os"
	"runtime"

	// Without the devices manager registered, libcontainer refuses to run
	// with "cgroup manager is not configured to set device rules".
	_ "github.com/opencontainers/cgroups/devices"
	"github.com/opencontainers/runc/libcontainer"
	// nsenter's cgo constructor does the namespace dance of `<bin> init`
	// before the Go runtime starts; without it the init stub cannot work.
	_ "github.com/opencontainers/runc/libcontainer/nsenter"
)

// MaybeInit turns the process into libcontainer's container init stub when it
// was started as `<bin> init` (libcontainer re-executes a sealed copy of the
// current binary that way). It must run before any flag parsing or daemon
// start-up work, at the very start of main or TestMain. It returns only when
// the process is not an init stub.
func MaybeInit() {
	if len(os.Args) > 1 && os.Args[1] == "init" {
		libcontainer.Init() // never returns
	}
}

func init() {
	// A shim re-executes itself (see idle.go), and must do so from the
	// main thread: an execve(2) from another thread replaces the thread
	// group's leader, and meanwhile the kernel reports the process as
	// exited to pidfd pollers, such as the daemon waiting for its shim.
	// Package initialisation runs on the main thread; locking it here keeps
	// main, and so RunShim, there.
	if len(os.Args) > 1 && os.Args[1] == "shim" {
		runtime.LockOSThread()
	}
}
