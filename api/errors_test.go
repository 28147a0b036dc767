package api

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"connectrpc.com/connect"

	"github.com/cairn-run/cairn/internal/errdefs"
)

func TestCodeOf_MapsEverySentinel(t *testing.T) {
	cases := []struct {
		err  error
		want connect.Code
	}{
		{fmt.Errorf("x: %w", errdefs.ErrNotFound), connect.CodeNotFound},
		{fmt.Errorf("x: %w", errdefs.ErrAlreadyExists), connect.CodeAlreadyExists},
		{fmt.Errorf("x: %w", errdefs.ErrInvalidArgument), connect.CodeInvalidArgument},
		{fmt.Errorf("x: %w", errdefs.ErrFailedPrecondition), connect.CodeFailedPrecondition},
		{fmt.Errorf("x: %w", errdefs.ErrUnavailable), connect.CodeUnavailable},
		{context.Canceled, connect.CodeCanceled},
		{errors.New("disk on fire"), connect.CodeInternal},
	}
	for _, tc := range cases {
		if got := codeOf(tc.err); got != tc.want {
			t.Errorf("%v: got %v, want %v", tc.err, got, tc.want)
		}
	}
	ce := toConnect(fmt.Errorf("cannot pause a container that is stopped: %w", errdefs.ErrFailedPrecondition)).(*connect.Error)
	if ce.Message() != "cannot pause a container that is stopped" || ce.Code() != connect.CodeFailedPrecondition {
		t.Errorf("got %v %q", ce.Code(), ce.Message())
	}
	if toConnect(nil) != nil {
		t.Error("nil error became non-nil")
	}
}
