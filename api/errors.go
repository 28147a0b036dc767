package api

import (
	"context"
	"errors"
	"strings"
	"syscall"

	"connectrpc.com/connect"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/internal/errdefs"
)

// codeOf maps Cairn's sentinel errors to Connect codes; it is the only place
// in the daemon that picks a status code. The command sentinels come first:
// each also wraps a broader sentinel.
func codeOf(err error) connect.Code {
	switch {
	case errors.Is(err, errdefs.ErrCommandNotFound):
		return connect.CodeInvalidArgument
	case errors.Is(err, errdefs.ErrCommandNotExecutable):
		return connect.CodeFailedPrecondition
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
	case errors.Is(err, errdefs.ErrPermissionDenied):
		return connect.CodePermissionDenied
	case errors.Is(err, errdefs.ErrResourceExhausted), errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return connect.CodeResourceExhausted
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

// reasonOf is the machine-readable reason sent with the code, for a client
// that must tell apart failures that share one (the CLI's 127 and 126).
func reasonOf(err error) cairnv1.ErrorReason {
	switch {
	case errors.Is(err, errdefs.ErrCommandNotFound):
		return cairnv1.ErrorReason_ERROR_REASON_COMMAND_NOT_FOUND
	case errors.Is(err, errdefs.ErrCommandNotExecutable):
		return cairnv1.ErrorReason_ERROR_REASON_COMMAND_NOT_EXECUTABLE
	default:
		return cairnv1.ErrorReason_ERROR_REASON_UNSPECIFIED
	}
}

// toConnect wraps err with its Connect code, and its reason as an ErrorInfo
// detail when it has one; nil stays nil.
func toConnect(err error) error {
	if err == nil {
		return nil
	}
	var ce *connect.Error
	if errors.As(err, &ce) {
		return err
	}
	ce = connect.NewError(codeOf(err), withoutSentinel(err))
	if reason := reasonOf(err); reason != cairnv1.ErrorReason_ERROR_REASON_UNSPECIFIED {
		if detail, derr := connect.NewErrorDetail(&cairnv1.ErrorInfo{Reason: reason}); derr == nil {
			ce.AddDetail(detail)
		}
	}
	return ce
}

// withoutSentinel drops the ": not found"-style tail that wrapping a
// sentinel leaves on a message: the Connect code already says it.
func withoutSentinel(err error) error {
	msg := err.Error()
	for _, s := range []error{errdefs.ErrNotFound, errdefs.ErrAlreadyExists, errdefs.ErrInvalidArgument, errdefs.ErrFailedPrecondition, errdefs.ErrUnavailable, errdefs.ErrResourceExhausted, errdefs.ErrPermissionDenied} {
		if errors.Is(err, s) && strings.HasSuffix(msg, ": "+s.Error()) {
			return errors.New(strings.TrimSuffix(msg, ": "+s.Error()))
		}
	}
	return err
}
