package apiclient

import (
	"errors"
	"fmt"
	"syscall"

	"connectrpc.com/connect"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
)

// ReasonOf returns the reason a daemon error carries in its ErrorInfo
// detail, or ERROR_REASON_UNSPECIFIED.
func ReasonOf(err error) cairnv1.ErrorReason {
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return cairnv1.ErrorReason_ERROR_REASON_UNSPECIFIED
	}
	for _, d := range ce.Details() {
		if v, derr := d.Value(); derr == nil {
			if info, ok := v.(*cairnv1.ErrorInfo); ok {
				return info.Reason
			}
		}
	}
	return cairnv1.ErrorReason_ERROR_REASON_UNSPECIFIED
}

// UnreachableError: nothing listens on the socket (it does not exist, or
// is a stale file nobody accepts on).
type UnreachableError struct {
	Socket string
	Err    error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach cairnd at %s: is cairnd running? (%v)", e.Socket, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// unreachable wraps a dial error that means no daemon is there.
func unreachable(socket string, err error) error {
	if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
		return &UnreachableError{Socket: socket, Err: err}
	}
	return err
}
