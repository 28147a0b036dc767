package executor

import "github.com/opencontainers/runc/libcontainer/seccomp"

// SeccompSupported reports whether this binary can load seccomp filters:
// runc's seccomp support needs cgo, libseccomp and the `seccomp` build tag.
// The shim (the cairn binary) is what loads them, in the container's init,
// so it must be built with the tag too.
func SeccompSupported() bool {
	major, _, _ := seccomp.Version()
	return major > 0
}
