package api

import (
	"context"
	"errors"

	"connectrpc.com/connect"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/internal/errdefs"
	sm "github.com/cairn-run/cairn/statemachine"
)

// RecordSource walks the journal in order.
type RecordSource interface {
	Records(from uint64, container string, fn func(sm.Record) error) error
	Resolve(ref string) (string, error)
}

// JournalServer implements cairn.v1.JournalService.
type JournalServer struct {
	Journal RecordSource
}

const historyBatch = 256

// History streams the journal in batches. A reference to a removed
// container is taken as a full id, so its history stays readable.
func (s *JournalServer) History(ctx context.Context, req *connect.Request[cairnv1.HistoryRequest], stream *connect.ServerStream[cairnv1.HistoryResponse]) error {
	container := req.Msg.Id
	if container != "" {
		if err := checkRef(container); err != nil {
			return toConnect(err)
		}
		id, err := s.Journal.Resolve(container)
		switch {
		case err == nil:
			container = id
		case !errors.Is(err, errdefs.ErrNotFound) || len(container) != 64:
			return toConnect(err)
		}
	}
	batch := &cairnv1.HistoryResponse{}
	err := s.Journal.Records(0, container, func(r sm.Record) error {
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
