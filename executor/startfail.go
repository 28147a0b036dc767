package executor

import (
	"fmt"
	"io/fs"
	"os/exec"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/cairn-run/cairn/internal/errdefs"
)

// The container's init stub (this binary, as `<bin> init`) resolves the
// user's command with exec.LookPath before it tells libcontainer it is
// ready, so a command that does not exist or cannot be executed fails the
// start. The stub reports that failure to libcontainer as text only; the
// errno does not cross. The shim therefore recognises the exact text an
// *exec.Error has for this command name and each cause (its own exec
// package produced it), at the end of libcontainer's message, and reports a
// kind in its ready message; the daemon maps the kind to a sentinel.

// startFailureCauses are LookPath's failures worth a kind: the error
// LookPath wraps for a command name, and what the message then says.
func startFailureCauses(name string) []struct {
	kind        string
	cause, says error
} {
	stat := func(errno unix.Errno) error { return &fs.PathError{Op: "stat", Path: name, Err: errno} }
	return []struct {
		kind        string
		cause, says error
	}{
		{readyErrorCommandNotFound, exec.ErrNotFound, exec.ErrNotFound}, // a bare name, searched in PATH
		{readyErrorCommandNotFound, stat(unix.ENOENT), unix.ENOENT},     // a path to nothing
		{readyErrorCommandNotFound, stat(unix.ENOTDIR), unix.ENOTDIR},   // a path through a file
		{readyErrorCommandNotExecutable, unix.EACCES, unix.EACCES},      // no x bit (also fs.ErrPermission's text)
		{readyErrorCommandNotExecutable, unix.EISDIR, unix.EISDIR},      // a directory
		{readyErrorCommandNotExecutable, unix.EPERM, unix.EPERM},
	}
}

// classifyStartError returns the ready error kind of a failed start of
// command name, and the message to report: for a classified failure a short
// one that quotes the command at bounded length, else err's own.
func classifyStartError(name string, err error) (kind, msg string) {
	text := err.Error()
	if name == "" {
		return "", text
	}
	for _, c := range startFailureCauses(name) {
		if strings.HasSuffix(text, (&exec.Error{Name: name, Err: c.cause}).Error()) {
			return c.kind, fmt.Sprintf("exec %s: %v", errdefs.Quote(name), c.says)
		}
	}
	return "", text
}
