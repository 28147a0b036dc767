package api

import (
	"context"
	"errors"

	"connectrpc.com/connect"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/internal/errdefs"
)

// JournalServer implements cairn.v1.JournalService: the history and the
// event stream, both read from the journal.
type JournalServer struct {
	Journal EventSource
	// Stopping is closed when the daemon shuts down: event streams end
	// with Unavailable so their clients resume after the restart.
	Stopping <-chan struct{}
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
			if container == "" || r.Container == container {
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
