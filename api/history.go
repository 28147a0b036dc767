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

// RecordSource walks the journal in order.
type RecordSource interface {
	Records(from uint64, container string, fn func(sm.Record) error) error
	// ObjectRecords walks the records of one kind of object, of one object
	// when id is set.
	ObjectRecords(from uint64, kind sm.ObjectKind, id string, fn func(sm.Record) error) error
	Resolve(ref string) (string, error)
}

// ImageIDs resolves an image reference to the image's id.
type ImageIDs interface {
	ImageID(ref string) (string, error)
}

// JournalServer implements cairn.v1.JournalService.
type JournalServer struct {
	Journal RecordSource
	Images  ImageIDs
}

const historyBatch = 256

// History streams the journal in batches. A reference to a removed
// container is taken as a full id, so its history stays readable.
func (s *JournalServer) History(ctx context.Context, req *connect.Request[cairnv1.HistoryRequest], stream *connect.ServerStream[cairnv1.HistoryResponse]) error {
	walk, err := s.walker(req.Msg)
	if err != nil {
		return err
	}
	batch := &cairnv1.HistoryResponse{}
	err = walk(func(r sm.Record) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		batch.Records = append(batch.Records, recordToProto(r))
		if len(batch.Records) < historyBatch {
			return nil
		}
		err := stream.Send(batch)
		batch = &cairnv1.HistoryResponse{}
		return err
	})
	if err != nil {
		return toConnect(err)
	}
	if len(batch.Records) > 0 {
		return stream.Send(batch)
	}
	return nil
}

// walker picks the records a history request asks for: of one container
// (or every record), or of images (of one image when it names one). A
// reference to a removed container or a deleted image is taken as a full
// id, so its history stays readable.
func (s *JournalServer) walker(req *cairnv1.HistoryRequest) (func(func(sm.Record) error) error, error) {
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
		return func(fn func(sm.Record) error) error { return s.Journal.ObjectRecords(0, sm.ObjectImage, id, fn) }, nil
	default:
		return nil, toConnect(fmt.Errorf("history of %s: only container and image records: %w", errdefs.Quote(req.Object), errdefs.ErrInvalidArgument))
	}
	if req.Object == string(sm.ObjectContainer) && req.Id == "" {
		return func(fn func(sm.Record) error) error { return s.Journal.ObjectRecords(0, sm.ObjectContainer, "", fn) }, nil
	}
	container, err := s.container(req.Id)
	if err != nil {
		return nil, err
	}
	return func(fn func(sm.Record) error) error { return s.Journal.Records(0, container, fn) }, nil
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
