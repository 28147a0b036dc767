package api

import (
	"context"
	"errors"
	"strings"

	"connectrpc.com/connect"

	"github.com/cairn-run/cairn/internal/errdefs"
)

// codeOf maps Cairn's sentinel errors to Connect codes; it is the only place
// in the daemon that picks a status code.
func codeOf(err error) connect.Code {
	switch {
	case errors.Is(err, errdefs.ErrNotFound):
		return connect.CodeNotFound
	case errors.Is(err, errdefs.ErrAlreadyExists):
		return connect.CodeAlreadyExists
	case errors.Is(err, errdefs.ErrInvalidArgument):
		return connect.CodeInvalidArgument
	case errors.Is(err, errdefs.ErrFailedPrecondition):
		return connect.CodeFailedPrecondition
	case errors.Is(err, errdefs.ErrUnavailable):
		return connect.CodeUnavailable
	case errors.Is(err, errImportMismatch):
		return connect.CodeAborted
	case errors.Is(err, context.Canceled):
		return connect.CodeCanceled
	case errors.Is(err, context.DeadlineExceeded):
		return connect.CodeDeadlineExceeded
	default:
		return connect.CodeInternal
	}
}

// toConnect wraps err with its Connect code; nil stays nil.
func toConnect(err error) error {
	if err == nil {
		return nil
	}
	var ce *connect.Error
	if errors.As(err, &ce) {
		return err
	}
	return connect.NewError(codeOf(err), withoutSentinel(err))
}

// withoutSentinel drops the ": not found"-style tail that wrapping a
// sentinel leaves on a message: the Connect code already says it.
func withoutSentinel(err error) error {
	msg := err.Error()
	for _, s := range []error{errdefs.ErrNotFound, errdefs.ErrAlreadyExists, errdefs.ErrInvalidArgument, errdefs.ErrFailedPrecondition, errdefs.ErrUnavailable} {
		if errors.Is(err, s) && strings.HasSuffix(msg, ": "+s.Error()) {
			return errors.New(strings.TrimSuffix(msg, ": "+s.Error()))
		}
	}
	return err
}
