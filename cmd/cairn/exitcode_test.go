package main

import (
	"errors"
	"fmt"
	"testing"

	"connectrpc.com/connect"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
)

func withReason(code connect.Code, reason cairnv1.ErrorReason) error {
	ce := connect.NewError(code, errors.New("exec failed"))
	detail, err := connect.NewErrorDetail(&cairnv1.ErrorInfo{Reason: reason})
	if err != nil {
		panic(err)
	}
	ce.AddDetail(detail)
	return ce
}

func TestExitCodeOf_LikeDocker(t *testing.T) {
	cases := []struct {
		err  error
		want int
	}{
		{nil, 0},
		{exitError{code: 3}, 3},
		{fmt.Errorf("run: %w", exitError{code: 137}), 137},
		{withReason(connect.CodeInvalidArgument, cairnv1.ErrorReason_ERROR_REASON_COMMAND_NOT_FOUND), 127},
		{fmt.Errorf("start: %w", withReason(connect.CodeFailedPrecondition, cairnv1.ErrorReason_ERROR_REASON_COMMAND_NOT_EXECUTABLE)), 126},
		{connect.NewError(connect.CodeInvalidArgument, errors.New("bad name")), 125},
		{connect.NewError(connect.CodeUnavailable, errors.New("no daemon")), 125},
		{errors.New("unknown flag"), 125},
	}
	for _, tc := range cases {
		if got := exitCodeOf(tc.err); got != tc.want {
			t.Errorf("%v: exit %d, want %d", tc.err, got, tc.want)
		}
	}
}
