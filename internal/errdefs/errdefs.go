// Package errdefs holds the few sentinel errors every Cairn package wraps
// with %w. The API edge maps them to Connect codes in exactly one place; no
// other package builds a status code.
package errdefs

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

var (
	// ErrNotFound: the container, image or record does not exist.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: a name or object is already taken.
	ErrAlreadyExists = errors.New("already exists")
	// ErrInvalidArgument: the request itself is malformed.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrFailedPrecondition: the request is well formed but not allowed in the
	// current state (illegal transition, image in use, ...).
	ErrFailedPrecondition = errors.New("failed precondition")
	// ErrUnavailable: the daemon cannot serve the request right now.
	ErrUnavailable = errors.New("unavailable")
	// ErrResourceExhausted: a limit was reached: a size cap, the disk is
	// full, too many of something.
	ErrResourceExhausted = errors.New("resource exhausted")
	// ErrPermissionDenied: someone else (a registry) refused the
	// credentials given, or gave none.
	ErrPermissionDenied = errors.New("permission denied")

	// ErrCommandNotFound: the container's command does not exist in its
	// filesystem (Docker's exit 127). It is an ErrInvalidArgument.
	ErrCommandNotFound = fmt.Errorf("command not found: %w", ErrInvalidArgument)
	// ErrCommandNotExecutable: the container's command exists but cannot be
	// executed (Docker's exit 126). It is an ErrFailedPrecondition.
	ErrCommandNotExecutable = fmt.Errorf("command not executable: %w", ErrFailedPrecondition)
)

// MaxQuoted is how many bytes of client input an error message repeats.
const MaxQuoted = 200

// Quote is strconv.Quote of client input for an error message, cut to
// MaxQuoted bytes (at a rune boundary) with the full length noted, so a
// huge argument never comes back in full.
func Quote(s string) string {
	if len(s) <= MaxQuoted {
		return strconv.Quote(s)
	}
	cut := MaxQuoted
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + fmt.Sprintf("... (%d bytes)", len(s))
}
