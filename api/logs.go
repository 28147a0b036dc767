package api

import (
	"context"
	"fmt"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/internal/crilog"
	"github.com/cairn-run/cairn/internal/errdefs"
	sm "github.com/cairn-run/cairn/statemachine"
)

// logBatch bounds the output bytes of one message.
const logBatch = 32 << 10

// LogPaths names a container's log (the shim writes it in the CRI format,
// rotated: see internal/crilog). Readers only open it read-only, so a log
// being removed is never created again by a reader.
type LogPaths interface {
	LogPath(id string) string
}

// logFilter selects entries by time.
type logFilter struct {
	since, until time.Time
}

func (f logFilter) keep(e crilog.Entry) bool {
	if !f.since.IsZero() && e.Time.Before(f.since) {
		return false
	}
	if !f.until.IsZero() && !e.Time.Before(f.until) {
		return false
	}
	return true
}

// entrySender batches entries into messages.
type entrySender struct {
	send    func([]*cairnv1.LogEntry) error
	pending []*cairnv1.LogEntry
	bytes   int
}

func (s *entrySender) add(stream string, t time.Time, data []byte) error {
	e := &cairnv1.LogEntry{Stream: cairnv1.LogStream_LOG_STREAM_STDOUT, Data: append([]byte(nil), data...)}
	if stream == crilog.Stderr {
		e.Stream = cairnv1.LogStream_LOG_STREAM_STDERR
	}
	if !t.IsZero() {
		e.Time = timestamppb.New(t)
	}
	s.pending = append(s.pending, e)
	s.bytes += len(data)
	if s.bytes >= logBatch {
		return s.flush()
	}
	return nil
}

func (s *entrySender) flush() error {
	if len(s.pending) == 0 {
		return nil
	}
	err := s.send(s.pending)
	s.pending, s.bytes = nil, 0
	return err
}

// readAvailable sends every entry of fl available now that f keeps; with a
// tail (>= 0), only the last tail lines of them.
func readAvailable(fl *crilog.Follower, f logFilter, tail int64, out *entrySender) error {
	if tail >= 0 {
		t := crilog.NewTail(int(min(tail, 1<<20)))
		err := fl.Read(func(e crilog.Entry) error {
			if f.keep(e) {
				t.Add(e)
			}
			return nil
		})
		if err != nil {
			return toConnect(err)
		}
		for _, l := range t.Lines() {
			data := l.Content
			if l.Complete {
				data = append(data, '\n')
			}
			if err := out.add(l.Stream, l.Time, data); err != nil {
				return err
			}
		}
		return out.flush()
	}
	err := fl.Read(func(e crilog.Entry) error {
		if !f.keep(e) {
			return nil
		}
		return out.add(e.Stream, e.Time, e.Bytes())
	})
	if err != nil {
		return toConnect(err)
	}
	return out.flush()
}

func checkLogsRequest(m *cairnv1.LogsRequest) (logFilter, int64, error) {
	var f logFilter
	tail := int64(-1)
	if m.Tail != nil {
		if *m.Tail < 0 {
			return f, 0, toConnect(fmt.Errorf("tail must not be negative: %w", errdefs.ErrInvalidArgument))
		}
		tail = *m.Tail
	}
	if m.Since != nil {
		if err := m.Since.CheckValid(); err != nil {
			return f, 0, toConnect(fmt.Errorf("since: %v: %w", err, errdefs.ErrInvalidArgument))
		}
		f.since = m.Since.AsTime()
	}
	if m.Until != nil {
		if err := m.Until.CheckValid(); err != nil {
			return f, 0, toConnect(fmt.Errorf("until: %v: %w", err, errdefs.ErrInvalidArgument))
		}
		f.until = m.Until.AsTime()
	}
	return f, tail, nil
}

// Logs streams the container's log, stdout and stderr apart, each entry
// with the time the shim read it. Without follow it sends what the log
// holds (nothing if the container has not run), selected by since, until
// and tail. With follow, it first sends an "attached" message (a client may
// start the container after it: the log is read from its beginning once
// the shim has created it), then keeps streaming until the container has
// run and stopped (and, with auto-remove, is removed) and the log is
// drained, and ends with the exit.
func (s *ContainerServer) Logs(ctx context.Context, req *connect.Request[cairnv1.LogsRequest], stream *connect.ServerStream[cairnv1.LogsResponse]) error {
	filter, tail, err := checkLogsRequest(req.Msg)
	if err != nil {
		return err
	}
	id, err := s.resolve(req.Msg.Id)
	if err != nil {
		return err
	}
	fl := crilog.NewFollower(s.LogFiles.LogPath(id))
	defer fl.Close()
	out := &entrySender{send: func(es []*cairnv1.LogEntry) error { return stream.Send(&cairnv1.LogsResponse{Entries: es}) }}
	if !req.Msg.Follow {
		return readAvailable(fl, filter, tail, out)
	}
	if err := stream.Send(&cairnv1.LogsResponse{Attached: true}); err != nil {
		return err
	}
	last, err := s.follow(ctx, id, fl, filter, tail, out)
	if err != nil {
		return err
	}
	return stream.Send(&cairnv1.LogsResponse{Exit: waitToProto(last)})
}

// Run is create, start and follow in one call. The log is opened while the
// container is still held by the start, so an exit and an auto-remove that
// follow at once cannot take it away first: nothing the container writes
// is missed.
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
	var fl *crilog.Follower
	c, err := s.Machine.Run(ctx, creq, func(c sm.Container) {
		fl = crilog.NewFollower(s.LogFiles.LogPath(c.ID))
		fl.Open()
	})
	if fl != nil {
		defer fl.Close()
	}
	if err != nil {
		if c.ID != "" && cr.AutoRemove {
			// Created but not started: nobody else will remove it.
			_, _ = s.Machine.Remove(context.WithoutCancel(ctx), c.ID, true)
		}
		return toConnect(err)
	}
	if err := stream.Send(&cairnv1.RunResponse{Container: s.toProto(c)}); err != nil {
		return err
	}
	out := &entrySender{send: func(es []*cairnv1.LogEntry) error { return stream.Send(&cairnv1.RunResponse{Entries: es}) }}
	last, err := s.follow(ctx, c.ID, fl, logFilter{}, -1, out)
	if err != nil {
		return err
	}
	return stream.Send(&cairnv1.RunResponse{Exit: waitToProto(last)})
}

// follow sends what the container writes to its log until it has run and
// stopped (and, with auto-remove, is removed) and the log is drained, and
// returns its last view. A tail applies to what the log holds at the start.
func (s *ContainerServer) follow(ctx context.Context, id string, fl *crilog.Follower, f logFilter, tail int64, out *entrySender) (sm.Container, error) {
	poll := s.LogPoll
	if poll == 0 {
		poll = 20 * time.Millisecond
	}
	for {
		changed := s.Machine.Changes(id)
		c, exists := s.View.Container(id)
		finished := !exists || c.State == sm.StateStopped
		if finished && exists && c.AutoRemove {
			// Let the auto-remove that follows the exit finish first.
			s.Machine.Settle(id)
		}
		// Read after deciding: once stopped, everything is in the file.
		if err := readAvailable(fl, f, tail, out); err != nil {
			return sm.Container{}, err
		}
		tail = -1
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
