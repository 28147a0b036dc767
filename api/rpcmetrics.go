package api

import (
	"context"
	"time"

	"connectrpc.com/connect"
)

// RPCObserver is told about every answered call (metrics).
type RPCObserver interface {
	Answered(procedure, code string, d time.Duration)
}

// Observe is the interceptor that reports every call to o: its procedure,
// its Connect code ("ok" for success) and how long it took (a stream: until
// it ended).
func Observe(o RPCObserver) connect.Interceptor { return observing{o} }

type observing struct{ o RPCObserver }

func codeName(err error) string {
	if err == nil {
		return "ok"
	}
	return connect.CodeOf(err).String()
}

func (r observing) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		start := time.Now()
		res, err := next(ctx, req)
		r.o.Answered(req.Spec().Procedure, codeName(err), time.Since(start))
		return res, err
	}
}

func (r observing) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (r observing) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		start := time.Now()
		err := next(ctx, conn)
		r.o.Answered(conn.Spec().Procedure, codeName(err), time.Since(start))
		return err
	}
}
