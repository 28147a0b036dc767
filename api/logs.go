package api

import (
	"context"
	"errors"
	"io"
	"time"

	"connectrpc.com/connect"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	sm "github.com/cairn-run/cairn/statemachine"
)

const logChunk = 32 << 10

// Logs streams the container's log. With follow, it first sends an
// "attached" message (a client may start the container after it, without
// missing output), then keeps streaming until the container has stopped and
// the log is drained, and ends with the exit.
func (s *ContainerServer) Logs(ctx context.Context, req *connect.Request[cairnv1.LogsRequest], stream *connect.ServerStream[cairnv1.LogsResponse]) error {
	id, err := s.resolve(req.Msg.Id)
	if err != nil {
		return err
	}
	f, err := s.LogFiles.OpenLog(id)
	if err != nil {
		return toConnect(err)
	}
	defer f.Close()
	if req.Msg.Follow {
		if err := stream.Send(&cairnv1.LogsResponse{Attached: true}); err != nil {
			return err
		}
	}
	poll := s.LogPoll
	if poll == 0 {
		poll = 20 * time.Millisecond
	}
	buf := make([]byte, logChunk)
	for {
		changed := s.Machine.Changes(id)
		c, exists := s.View.Container(id)
		finished := !exists || c.State == sm.StateStopped
		if err := sendAvailable(f, buf, stream); err != nil {
			return err
		}
		if !req.Msg.Follow {
			return nil
		}
		if finished {
			last, err := s.Machine.Wait(ctx, id)
			if err != nil {
				return toConnect(err)
			}
			return stream.Send(&cairnv1.LogsResponse{Exit: waitToProto(last)})
		}
		select {
		case <-ctx.Done():
			return toConnect(ctx.Err())
		case <-changed:
		case <-time.After(poll):
		}
	}
}

// sendAvailable sends everything in f up to its current end.
func sendAvailable(f io.Reader, buf []byte, stream *connect.ServerStream[cairnv1.LogsResponse]) error {
	for {
		n, err := f.Read(buf)
		if n > 0 {
			if serr := stream.Send(&cairnv1.LogsResponse{Data: buf[:n]}); serr != nil {
				return serr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return toConnect(err)
		}
	}
}
