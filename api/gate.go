package api

import (
	"context"
	"errors"
	"sync/atomic"

	"connectrpc.com/connect"
)

// errRecovering is what clients get while the daemon recovers.
var errRecovering = errors.New("cairnd is recovering its containers; retry shortly")

// Gate refuses every call with Unavailable until it is opened: nothing may
// act on a container before recovery has reconciled it. Health and
// reflection are not behind it.
type Gate struct{ open atomic.Bool }

// Open lets calls through.
func (g *Gate) Open() { g.open.Store(true) }

// Close refuses calls again (shutdown).
func (g *Gate) Close() { g.open.Store(false) }

func (g *Gate) check() error {
	if g.open.Load() {
		return nil
	}
	return connect.NewError(connect.CodeUnavailable, errRecovering)
}

func (g *Gate) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if err := g.check(); err != nil {
			return nil, err
		}
		return next(ctx, req)
	}
}

func (g *Gate) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (g *Gate) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		if err := g.check(); err != nil {
			return err
		}
		return next(ctx, conn)
	}
}
