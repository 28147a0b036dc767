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
// "attached" message (a client may start the container after it without
// missing output), then keeps streaming until the container has stopped
// (and, with auto-remove, is removed) and the log is drained, and ends with
// the exit.
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
	send := func(data []byte) error { return stream.Send(&cairnv1.LogsResponse{Data: data}) }
	if !req.Msg.Follow {
		return sendAvailable(f, make([]byte, logChunk), send)
	}
	if err := stream.Send(&cairnv1.LogsResponse{Attached: true}); err != nil {
		return err
	}
	last, err := s.follow(ctx, id, f, send)
	if err != nil {
		return err
	}
	return stream.Send(&cairnv1.LogsResponse{Exit: waitToProto(last)})
}

// Run is create, attach, start and follow in one call.
func (s *ContainerServer) Run(ctx context.Context, req *connect.Request[cairnv1.RunRequest], stream *connect.ServerStream[cairnv1.RunResponse]) error {
	cr := req.Msg.Create
	if cr == nil {
		cr = &cairnv1.CreateRequest{}
	}
	if err := checkCreate(cr.Name, cr.Image); err != nil {
		return toConnect(err)
	}
	c, err := s.Machine.Create(ctx, sm.CreateRequest{Name: cr.Name, Image: cr.Image, Command: cr.Command, Env: cr.Env, AutoRemove: cr.AutoRemove})
	if err != nil {
		return toConnect(err)
	}
	f, err := s.LogFiles.OpenLog(c.ID)
	if err != nil {
		return toConnect(err)
	}
	defer f.Close()
	if err := stream.Send(&cairnv1.RunResponse{Container: s.toProto(c)}); err != nil {
		return err
	}
	if _, err := s.Machine.Start(ctx, c.ID); err != nil {
		if cr.AutoRemove {
			_, _ = s.Machine.Remove(context.WithoutCancel(ctx), c.ID, true)
		}
		return toConnect(err)
	}
	last, err := s.follow(ctx, c.ID, f, func(data []byte) error { return stream.Send(&cairnv1.RunResponse{Data: data}) })
	if err != nil {
		return err
	}
	return stream.Send(&cairnv1.RunResponse{Exit: waitToProto(last)})
}

// follow sends what the container writes to f until it has stopped (and,
// with auto-remove, is removed) and f is drained, and returns its last view.
func (s *ContainerServer) follow(ctx context.Context, id string, f io.Reader, send func([]byte) error) (sm.Container, error) {
	poll := s.LogPoll
	if poll == 0 {
		poll = 20 * time.Millisecond
	}
	buf := make([]byte, logChunk)
	for {
		changed := s.Machine.Changes(id)
		c, exists := s.View.Container(id)
		finished := !exists || c.State == sm.StateStopped
		if finished && exists && c.AutoRemove {
			// Let the auto-remove that follows the exit finish first.
			s.Machine.Settle(id)
		}
		// Read after deciding: once stopped, everything is in the file.
		if err := sendAvailable(f, buf, send); err != nil {
			return sm.Container{}, err
		}
		if finished {
			last, err := s.Machine.Wait(ctx, id)
			return last, toConnect(err)
		}
		select {
		case <-ctx.Done():
			return sm.Container{}, toConnect(ctx.Err())
		case <-changed:
		case <-time.After(poll):
		}
	}
}

// sendAvailable sends everything in f up to its current end.
func sendAvailable(f io.Reader, buf []byte, send func([]byte) error) error {
	for {
		n, err := f.Read(buf)
		if n > 0 {
			if serr := send(buf[:n]); serr != nil {
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
