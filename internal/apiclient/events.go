package apiclient

import (
	"context"
	"errors"
	"time"

	"connectrpc.com/connect"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
)

// Resumption of the event stream: a stream that breaks because the daemon
// went away (it stopped, crashed, or is recovering after a restart) is
// opened again with after_seq set to the last event received, so the
// caller sees every event exactly once, in order.
const (
	resumeFirst = 50 * time.Millisecond
	resumeMax   = 2 * time.Second
)

// WatchEvents calls fn for every event req asks for, resuming across
// daemon restarts until the stream ends (until_seq or until reached), ctx
// ends, fn fails, or the daemon refuses the request. onResume, if set, is
// told each time the stream is opened again, with the seq it resumes after.
func WatchEvents(ctx context.Context, c Clients, req *cairnv1.WatchEventsRequest, fn func(*cairnv1.JournalRecord) error, onResume func(after uint64, cause error)) error {
	req = cloneWatch(req)
	delay := resumeFirst
	for {
		err := watchOnce(ctx, c, req, func(ev *cairnv1.JournalRecord) error {
			req.AfterSeq, req.Since = ev.Seq, nil // resume after it, whatever since said
			delay = resumeFirst
			return fn(ev)
		})
		if err == nil || !resumable(err) || ctx.Err() != nil {
			return err
		}
		if onResume != nil {
			onResume(req.AfterSeq, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, resumeMax)
	}
}

func watchOnce(ctx context.Context, c Clients, req *cairnv1.WatchEventsRequest, fn func(*cairnv1.JournalRecord) error) error {
	stream, err := c.Journal.WatchEvents(ctx, connect.NewRequest(req))
	if err != nil {
		return err
	}
	defer stream.Close()
	for stream.Receive() {
		ev := stream.Msg().Event
		if ev == nil {
			continue // the first message: the stream is set up
		}
		if err := fn(ev); err != nil {
			return &stopped{err}
		}
	}
	return stream.Err()
}

// stopped wraps an error of the caller's fn: never resumed.
type stopped struct{ err error }

func (s *stopped) Error() string { return s.err.Error() }
func (s *stopped) Unwrap() error { return s.err }

// resumable: the daemon went away or is not serving yet (a broken or
// refused connection, Unavailable), as opposed to a daemon that answered
// with a refusal.
func resumable(err error) bool {
	var s *stopped
	if errors.As(err, &s) {
		return false
	}
	return connect.CodeOf(err) == connect.CodeUnavailable || !connect.IsWireError(err)
}

func cloneWatch(r *cairnv1.WatchEventsRequest) *cairnv1.WatchEventsRequest {
	return &cairnv1.WatchEventsRequest{AfterSeq: r.AfterSeq, Since: r.Since, UntilSeq: r.UntilSeq, Until: r.Until, Filters: r.Filters}
}
