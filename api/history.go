package api

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"connectrpc.com/connect"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/internal/errdefs"
	sm "github.com/cairn-run/cairn/statemachine"
)

// ImageIDs resolves an image reference to the image's id.
type ImageIDs interface {
	ImageID(ref string) (string, error)
}

// JournalServer implements cairn.v1.JournalService: the history and the
// event stream, both read from the journal.
type JournalServer struct {
	Journal EventSource
	Images  ImageIDs
	// Stopping is closed when the daemon shuts down: event streams end
	// with Unavailable so their clients resume after the restart.
	Stopping <-chan struct{}
}

const historyBatch = 256

// History streams the journal in batches. A reference to a removed
// container is taken as a full id, so its history stays readable.
func (s *JournalServer) History(ctx context.Context, req *connect.Request[cairnv1.HistoryRequest], stream *connect.ServerStream[cairnv1.HistoryResponse]) error {
	keep, err := s.selector(req.Msg)
	if err != nil {
		return err
	}
	// Read in batches, each in its own short transaction, and sent outside
	// it: a slow client must not keep a read transaction open.
	for last := uint64(0); ; {
		if err := ctx.Err(); err != nil {
			return toConnect(err)
		}
		recs, err := s.Journal.RecordsAfter(last, historyBatch)
		if err != nil {
			return toConnect(err)
		}
		batch := &cairnv1.HistoryResponse{}
		for _, r := range recs {
			last = r.Seq
			if keep(r) {
				batch.Records = append(batch.Records, recordToProto(r))
			}
		}
		if len(batch.Records) > 0 {
			if err := stream.Send(batch); err != nil {
				return err
			}
		}
		if len(recs) < historyBatch {
			return nil
		}
	}
}

// selector picks the records a history request asks for: of one container
// (or every record), or of images (of one image when it names one). A
// reference to a removed container or a deleted image is taken as a full
// id, so its history stays readable.
func (s *JournalServer) selector(req *cairnv1.HistoryRequest) (func(sm.Record) bool, error) {
	switch sm.ObjectKind(req.Object) {
	case "", sm.ObjectContainer:
	case sm.ObjectImage:
		id := req.Id
		if id != "" {
			if err := checkImageRef(id); err != nil {
				return nil, toConnect(err)
			}
			resolved, err := s.Images.ImageID(id)
			switch {
			case err == nil:
				id = resolved
			case !errors.Is(err, errdefs.ErrNotFound) || !strings.HasPrefix(id, "sha256:"):
				return nil, toConnect(err)
			}
		}
		return ofObject(sm.ObjectImage, id), nil
	case sm.ObjectVolume:
		return ofObject(sm.ObjectVolume, req.Id), nil
	default:
		return nil, toConnect(fmt.Errorf("history of %s: only container, image and volume records: %w", errdefs.Quote(req.Object), errdefs.ErrInvalidArgument))
	}
	if req.Object == string(sm.ObjectContainer) && req.Id == "" {
		return ofObject(sm.ObjectContainer, ""), nil
	}
	container, err := s.container(req.Id)
	if err != nil {
		return nil, err
	}
	return func(r sm.Record) bool { return container == "" || r.Container == container }, nil
}

// ofObject keeps the records of one kind of object, of one object when id
// is set.
func ofObject(kind sm.ObjectKind, id string) func(sm.Record) bool {
	return func(r sm.Record) bool {
		r = r.Normalized()
		return r.Object == kind && (id == "" || r.ObjectID == id)
	}
}

func (s *JournalServer) container(container string) (string, error) {
	if container != "" {
		if err := checkRef(container); err != nil {
			return "", toConnect(err)
		}
		id, err := s.Journal.Resolve(container)
		switch {
		case err == nil:
			container = id
		case !errors.Is(err, errdefs.ErrNotFound) || len(container) != 64:
			return "", toConnect(err)
		}
	}
	return container, nil
}
