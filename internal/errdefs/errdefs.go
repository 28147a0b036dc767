// Package errdefs holds the few sentinel errors every Cairn package wraps
// with %w. The API edge maps them to Connect codes in exactly one place; no
// other package builds a status code.
package errdefs

import "errors"

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
)
