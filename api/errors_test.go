package api

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http/httptest"
	"syscall"
	"testing"

	"connectrpc.com/connect"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/api/cairn/v1/cairnv1connect"
	"github.com/cairn-run/cairn/internal/apiclient"
	"github.com/cairn-run/cairn/internal/errdefs"
)

func TestCodeOf_MapsEverySentinel(t *testing.T) {
	enospc := &fs.PathError{Op: "write", Path: "/x", Err: syscall.ENOSPC}
	cases := []struct {
		err  error
		want connect.Code
	}{
		{fmt.Errorf("x: %w", errdefs.ErrNotFound), connect.CodeNotFound},
		{fmt.Errorf("x: %w", errdefs.ErrAlreadyExists), connect.CodeAlreadyExists},
		{fmt.Errorf("x: %w", errdefs.ErrInvalidArgument), connect.CodeInvalidArgument},
		{fmt.Errorf("x: %w", errdefs.ErrFailedPrecondition), connect.CodeFailedPrecondition},
		{fmt.Errorf("x: %w", errdefs.ErrUnavailable), connect.CodeUnavailable},
		{fmt.Errorf("x: %w", errdefs.ErrResourceExhausted), connect.CodeResourceExhausted},
		{fmt.Errorf("start: %w", fmt.Errorf("exec: %w", errdefs.ErrCommandNotFound)), connect.CodeInvalidArgument},
		{fmt.Errorf("start: %w", fmt.Errorf("exec: %w", errdefs.ErrCommandNotExecutable)), connect.CodeFailedPrecondition},
		{fmt.Errorf("extract: %w", enospc), connect.CodeResourceExhausted},
		{fmt.Errorf("write: %w", syscall.EDQUOT), connect.CodeResourceExhausted},
		{fmt.Errorf("x: %w", errImportMismatch), connect.CodeAborted},
		{context.Canceled, connect.CodeCanceled},
		{fmt.Errorf("wait: %w", context.DeadlineExceeded), connect.CodeDeadlineExceeded},
		{errors.New("disk on fire"), connect.CodeInternal},
	}
	for _, tc := range cases {
		if got := codeOf(tc.err); got != tc.want {
			t.Errorf("%v: got %v, want %v", tc.err, got, tc.want)
		}
		if got := connect.CodeOf(toConnect(tc.err)); got != tc.want {
			t.Errorf("toConnect(%v): got %v, want %v", tc.err, got, tc.want)
		}
	}
	ce := toConnect(fmt.Errorf("cannot pause a container that is stopped: %w", errdefs.ErrFailedPrecondition)).(*connect.Error)
	if ce.Message() != "cannot pause a container that is stopped" || ce.Code() != connect.CodeFailedPrecondition {
		t.Errorf("got %v %q", ce.Code(), ce.Message())
	}
	if toConnect(nil) != nil {
		t.Error("nil error became non-nil")
	}
	already := connect.NewError(connect.CodeAborted, errors.New("x"))
	if toConnect(already) != already {
		t.Error("a Connect error was wrapped again")
	}
}

// failingStarts answers Start and Run with err, as the daemon would when
// the executor cannot run the command.
type failingStarts struct {
	cairnv1connect.UnimplementedContainerServiceHandler
	err error
}

func (f failingStarts) Start(context.Context, *connect.Request[cairnv1.StartRequest]) (*connect.Response[cairnv1.StartResponse], error) {
	return nil, toConnect(f.err)
}

func (f failingStarts) Run(_ context.Context, _ *connect.Request[cairnv1.RunRequest], stream *connect.ServerStream[cairnv1.RunResponse]) error {
	if err := stream.Send(&cairnv1.RunResponse{Container: &cairnv1.Container{Id: "c"}}); err != nil {
		return err
	}
	return toConnect(f.err)
}

func TestToConnect_CommandReasonsReachTheClient(t *testing.T) {
	cases := []struct {
		err    error
		code   connect.Code
		reason cairnv1.ErrorReason
	}{
		{fmt.Errorf("start c: exec \"nope\": %w", errdefs.ErrCommandNotFound), connect.CodeInvalidArgument, cairnv1.ErrorReason_ERROR_REASON_COMMAND_NOT_FOUND},
		{fmt.Errorf("start c: exec \"/etc\": %w", errdefs.ErrCommandNotExecutable), connect.CodeFailedPrecondition, cairnv1.ErrorReason_ERROR_REASON_COMMAND_NOT_EXECUTABLE},
		{fmt.Errorf("start c: %w", errdefs.ErrInvalidArgument), connect.CodeInvalidArgument, cairnv1.ErrorReason_ERROR_REASON_UNSPECIFIED},
	}
	for _, tc := range cases {
		_, handler := cairnv1connect.NewContainerServiceHandler(failingStarts{err: tc.err})
		srv := httptest.NewUnstartedServer(handler)
		srv.EnableHTTP2 = true
		srv.StartTLS()
		for name, opts := range map[string][]connect.ClientOption{"connect": nil, "grpc": {connect.WithGRPC()}, "grpc-web": {connect.WithGRPCWeb()}} {
			client := cairnv1connect.NewContainerServiceClient(srv.Client(), srv.URL, opts...)
			_, err := client.Start(context.Background(), connect.NewRequest(&cairnv1.StartRequest{Id: "c"}))
			if connect.CodeOf(err) != tc.code || apiclient.ReasonOf(err) != tc.reason {
				t.Errorf("%s Start of %v: got %v (reason %v), want %v %v", name, tc.err, err, apiclient.ReasonOf(err), tc.code, tc.reason)
			}
			stream, err := client.Run(context.Background(), connect.NewRequest(&cairnv1.RunRequest{}))
			if err != nil {
				t.Fatal(err)
			}
			for stream.Receive() {
			}
			if err := stream.Err(); connect.CodeOf(err) != tc.code || apiclient.ReasonOf(err) != tc.reason {
				t.Errorf("%s Run of %v: got %v (reason %v), want %v %v", name, tc.err, err, apiclient.ReasonOf(err), tc.code, tc.reason)
			}
			stream.Close()
		}
		srv.Close()
	}
}
