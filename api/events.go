package api

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"connectrpc.com/connect"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/internal/errdefs"
	"github.com/cairn-run/cairn/internal/imageref"
	sm "github.com/cairn-run/cairn/statemachine"
)

// The event stream is the journal itself: every record is an event, its
// sequence number the resume token. Records are read in short batches and
// sent outside any transaction, and the committer only closes a channel to
// wake watchers, so a slow client never holds up a transition.

// EventSource is the journal as the event stream reads it.
type EventSource interface {
	// RecordsAfter returns up to max records with seqs above after.
	RecordsAfter(after uint64, max int) ([]sm.Record, error)
	// Appended is closed when the next commit is published.
	Appended() <-chan struct{}
	// CompactedThrough is the highest seq compaction deleted.
	CompactedThrough() (uint64, error)
	// LastSeq is the seq of the newest record.
	LastSeq() uint64
	Resolve(ref string) (string, error)
	Container(id string) (sm.Container, bool)
}

const (
	eventBatch      = 256
	maxEventFilters = 64
)

// errStopping ends the streams of a daemon that is shutting down, so their
// clients know to resume elsewhere or later.
var errStopping = errors.New("cairnd is stopping; resume with after_seq set to the last event received")

// WatchEvents streams the journal's records as events: see the proto.
func (s *JournalServer) WatchEvents(ctx context.Context, req *connect.Request[cairnv1.WatchEventsRequest], stream *connect.ServerStream[cairnv1.WatchEventsResponse]) error {
	m := req.Msg
	match, err := s.eventFilter(m.Filters)
	if err != nil {
		return toConnect(err)
	}
	if m.AfterSeq > 0 {
		through, err := s.Journal.CompactedThrough()
		if err != nil {
			return toConnect(err)
		}
		if m.AfterSeq < through {
			return toConnect(fmt.Errorf("events up to seq %d were compacted away; resume from %d or later, or from the start: %w", through, through, errdefs.ErrFailedPrecondition))
		}
	}
	var since, until time.Time
	if m.Since != nil {
		since = m.Since.AsTime()
	}
	var untilPassed <-chan time.Time
	if m.Until != nil {
		until = m.Until.AsTime()
		timer := time.NewTimer(time.Until(until))
		defer timer.Stop()
		untilPassed = timer.C
	}
	// Said at once, so a client learns the stream is set up even when no
	// event comes for a while.
	if err := stream.Send(&cairnv1.WatchEventsResponse{Watching: true, LastSeq: s.Journal.LastSeq()}); err != nil {
		return err
	}
	last := m.AfterSeq
	for {
		appended := s.Journal.Appended()
		recs, err := s.Journal.RecordsAfter(last, eventBatch)
		if err != nil {
			return toConnect(err)
		}
		for _, r := range recs {
			last = r.Seq
			if m.UntilSeq > 0 && r.Seq > m.UntilSeq || !until.IsZero() && r.Time.After(until) {
				return nil
			}
			if !r.Time.Before(since) && match(r) {
				if err := stream.Send(&cairnv1.WatchEventsResponse{Event: recordToProto(r)}); err != nil {
					return err
				}
			}
			if m.UntilSeq > 0 && r.Seq == m.UntilSeq {
				return nil
			}
		}
		if len(recs) == eventBatch {
			continue
		}
		select {
		case <-ctx.Done():
			return toConnect(ctx.Err())
		case <-s.Stopping:
			return connect.NewError(connect.CodeUnavailable, errStopping)
		case <-untilPassed:
			return nil
		case <-appended:
		}
	}
}

// eventFilter builds the predicate of a request's filters: values of one
// key are alternatives, and every key must match.
func (s *JournalServer) eventFilter(filters []*cairnv1.EventFilter) (func(sm.Record) bool, error) {
	if len(filters) > maxEventFilters {
		return nil, fmt.Errorf("%d filters, at most %d: %w", len(filters), maxEventFilters, errdefs.ErrInvalidArgument)
	}
	want := map[string][]string{}
	for _, f := range filters {
		v := f.Value
		switch f.Key {
		case "container":
			if err := checkRef(v); err != nil {
				return nil, err
			}
			if id, err := s.Journal.Resolve(v); err == nil {
				v = id
			} else if !errors.Is(err, errdefs.ErrNotFound) {
				return nil, err
			}
			// A name or prefix of a removed container resolves to nothing:
			// it stays as given and matches a full id only.
		case "image":
			if len(v) > MaxImageRefBytes {
				return nil, fmt.Errorf("image filter longer than %d bytes: %w", MaxImageRefBytes, errdefs.ErrInvalidArgument)
			}
			// A reference matches in every form Docker accepts: as the
			// canonical name records carry, and as the id of the image it
			// names now (which an image's own records and a create carry).
			if canonical, err := imageref.Normalize(v); err == nil && canonical != v {
				want[f.Key] = append(want[f.Key], canonical)
			}
			if s.Images != nil {
				if id, err := s.Images.ImageID(v); err == nil && id != v {
					want[f.Key] = append(want[f.Key], id)
				}
			}
		case "event":
		case "type":
			kind, ok := eventTypes[v]
			if !ok {
				return nil, fmt.Errorf("unknown event type %s (want container, image, network, volume, exec or sandbox): %w", errdefs.Quote(v), errdefs.ErrInvalidArgument)
			}
			v = string(kind)
		default:
			return nil, fmt.Errorf("unknown filter %s (want container, image, event or type): %w", errdefs.Quote(f.Key), errdefs.ErrInvalidArgument)
		}
		want[f.Key] = append(want[f.Key], v)
	}
	// container id -> its image's name and id, learnt from the stream and
	// the view
	images := map[string][2]string{}
	imageOf := func(r sm.Record) [2]string {
		if r.Kind == sm.KindIntent && r.Event == sm.EventCreate && r.Args != nil {
			images[r.Container] = [2]string{r.Args.Image, r.Args.ImageID}
		}
		if img, ok := images[r.Container]; ok {
			return img
		}
		if c, ok := s.Journal.Container(r.Container); ok {
			images[r.Container] = [2]string{c.Image, c.ImageID}
			return images[r.Container]
		}
		return [2]string{}
	}
	return func(r sm.Record) bool {
		r = r.Normalized()
		img := imageOf(r) // before the checks: a create teaches it even if filtered out
		for key, values := range want {
			var got []string
			switch key {
			case "container":
				got = []string{r.Container}
			case "image":
				got = img[:]
				if r.Object == sm.ObjectImage {
					got = []string{r.ObjectID}
				}
			case "event":
				got = []string{string(r.Event)}
			case "type":
				got = []string{string(r.Object)}
			}
			if !slices.ContainsFunc(got, func(g string) bool { return g != "" && slices.Contains(values, g) }) {
				return false
			}
		}
		return true
	}, nil
}

// eventTypes maps the type filter's words to object kinds; "network" is
// Docker's word for a container's network attachments.
var eventTypes = map[string]sm.ObjectKind{
	"container": sm.ObjectContainer, "image": sm.ObjectImage, "network": sm.ObjectNetAttach,
	"volume": sm.ObjectVolume, "exec": sm.ObjectExec, "sandbox": sm.ObjectSandbox,
}
