package api

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"time"

	"connectrpc.com/connect"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	sm "github.com/cairn-run/cairn/statemachine"
)

const logChunk = 32 << 10

// Logs streams the container's log. Without follow it sends what the log
// holds (nothing if the container has not run). With follow, it first sends
// an "attached" message (a client may start the container after it: the log
// is read from its beginning once the shim has created it), then keeps
// streaming until the container has run and stopped (and, with auto-remove,
// is removed) and the log is drained, and ends with the exit.
func (s *ContainerServer) Logs(ctx context.Context, req *connect.Request[cairnv1.LogsRequest], stream *connect.ServerStream[cairnv1.LogsResponse]) error {
	id, err := s.resolve(req.Msg.Id)
	if err != nil {
		return err
	}
	f, err := s.openLog(id)
	if err != nil {
		return err
	}
	send := func(data []byte) error { return stream.Send(&cairnv1.LogsResponse{Data: data}) }
	if !req.Msg.Follow {
		if f == nil {
			return nil
		}
		defer f.Close()
		return sendAvailable(f, make([]byte, logChunk), send)
	}
	if err := stream.Send(&cairnv1.LogsResponse{Attached: true}); err != nil {
		if f != nil {
			f.Close()
		}
		return err
	}
	last, err := s.follow(ctx, id, f, send)
	if err != nil {
		return err
	}
	return stream.Send(&cairnv1.LogsResponse{Exit: waitToProto(last)})
}

// openLog opens the container's log read-only; nil without an error when
// there is none (yet).
func (s *ContainerServer) openLog(id string) (*os.File, error) {
	f, err := s.LogFiles.OpenLog(id)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil
	case err != nil:
		return nil, toConnect(err)
	}
	return f, nil
}

// Run is create, start, attach and follow in one call. The log is opened
// while the container is still held by the start, so an exit and an
// auto-remove that follow at once cannot take it away first: nothing the
// container writes is missed.
func (s *ContainerServer) Run(ctx context.Context, req *connect.Request[cairnv1.RunRequest], stream *connect.ServerStream[cairnv1.RunResponse]) error {
	cr := req.Msg.Create
	if cr == nil {
		cr = &cairnv1.CreateRequest{}
	}
	if err := checkCreate(cr.Name, cr.Image); err != nil {
		return toConnect(err)
	}
	creq := createRequest(cr)
	if err := withNetwork(&creq, cr, s.Networks, s.DefaultNetwork); err != nil {
		return toConnect(err)
	}
	var f *os.File
	var logErr error
	c, err := s.Machine.Run(ctx, creq,
		func(c sm.Container) { f, logErr = s.openLog(c.ID) })
	if err != nil {
		if c.ID != "" && cr.AutoRemove {
			// Created but not started: nobody else will remove it.
			_, _ = s.Machine.Remove(context.WithoutCancel(ctx), c.ID, true)
		}
		return toConnect(err)
	}
	if logErr != nil {
		return logErr
	}
	if err := stream.Send(&cairnv1.RunResponse{Container: s.toProto(c)}); err != nil {
		if f != nil {
			f.Close()
		}
		return err
	}
	last, err := s.follow(ctx, c.ID, f, func(data []byte) error { return stream.Send(&cairnv1.RunResponse{Data: data}) })
	if err != nil {
		return err
	}
	return stream.Send(&cairnv1.RunResponse{Exit: waitToProto(last)})
}

// follow sends what the container writes to its log (f, or the log once it
// appears when f is nil) until it has run and stopped (and, with
// auto-remove, is removed) and the log is drained, and returns its last
// view. It closes the log.
func (s *ContainerServer) follow(ctx context.Context, id string, f *os.File, send func([]byte) error) (sm.Container, error) {
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
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
		// Open and read after deciding: once stopped, everything is in the
		// file, and a stopped container that has no log never wrote one.
		if f == nil {
			var err error
			if f, err = s.openLog(id); err != nil {
				return sm.Container{}, err
			}
		}
		if f != nil {
			if err := sendAvailable(f, buf, send); err != nil {
				return sm.Container{}, err
			}
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
