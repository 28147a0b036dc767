package api

import (
	"fmt"
	"net/http"
	"time"

	"connectrpc.com/connect"

	"github.com/cairn-run/cairn/internal/errdefs"
)

// Limits on what a client can make the daemon read. Every handler is built
// with them, so no request is larger in memory than MaxMessageBytes, and
// connect-go applies the bound to the decompressed size (it reads through
// an io.LimitReader of MaxMessageBytes+1 after decompression), so a small
// gzip body cannot inflate past it.
const (
	// MaxMessageBytes bounds one request message (an import chunk is one
	// message; the CLI sends 256 KiB chunks). A create's command and
	// environment are bounded well below it by statemachine.MaxArgsAndEnv.
	MaxMessageBytes = 4 << 20
	// MaxRefBytes bounds a container reference: an id is 64 bytes and a
	// name at most 128.
	MaxRefBytes = 128
	// MaxImageRefBytes bounds an image name, as Docker bounds a reference.
	MaxImageRefBytes = 255

	maxHeaderBytes = 64 << 10
)

// handlerOptions are the options of every Connect handler the daemon
// serves.
func (h Handlers) handlerOptions() []connect.HandlerOption {
	opts := h.ungatedOptions()
	if h.Gate != nil {
		opts = append(opts, connect.WithInterceptors(h.Gate))
	}
	return opts
}

// ungatedOptions are every handler's: the read bound and, outermost, the
// call metrics (which count the gate's refusals too).
func (h Handlers) ungatedOptions() []connect.HandlerOption {
	opts := []connect.HandlerOption{connect.WithReadMaxBytes(MaxMessageBytes)}
	if h.RPCs != nil {
		opts = append(opts, connect.WithInterceptors(Observe(h.RPCs)))
	}
	return opts
}

// NewHTTPServer serves handler over HTTP/1.1 and HTTP/2 without TLS (h2c)
// with bounds on headers, frames, flow-control windows and concurrent
// streams, so one client can hold only so much of the daemon's memory.
func NewHTTPServer(handler http.Handler) *http.Server {
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	return &http.Server{
		Handler:           handler,
		Protocols:         protocols,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       5 * time.Minute,
		// HTTP/1.1 request line and headers; HTTP/2 advertises it as
		// SETTINGS_MAX_HEADER_LIST_SIZE.
		MaxHeaderBytes: maxHeaderBytes,
		HTTP2: &http.HTTP2Config{
			MaxConcurrentStreams:          128,
			MaxReadFrameSize:              1 << 20,
			MaxDecoderHeaderTableSize:     4 << 10,
			MaxEncoderHeaderTableSize:     4 << 10,
			MaxReceiveBufferPerConnection: 1 << 20,
			MaxReceiveBufferPerStream:     1 << 20,
		},
	}
}

// checkRef refuses an empty container reference, or one longer than any
// id or name can be, before it reaches the journal.
func checkRef(ref string) error {
	switch {
	case ref == "":
		return fmt.Errorf("no container given: %w", errdefs.ErrInvalidArgument)
	case len(ref) > MaxRefBytes:
		return fmt.Errorf("container reference %s is longer than any id or name (%d bytes): %w", errdefs.Quote(ref), MaxRefBytes, errdefs.ErrInvalidArgument)
	}
	return nil
}

// checkImageRef refuses an empty or overlong image name.
func checkImageRef(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("no image given: %w", errdefs.ErrInvalidArgument)
	case len(name) > MaxImageRefBytes:
		return fmt.Errorf("image name %s is longer than %d bytes: %w", errdefs.Quote(name), MaxImageRefBytes, errdefs.ErrInvalidArgument)
	}
	return nil
}

// checkCreate applies the edge's caps to a create request; the state
// machine validates the rest (statemachine.ValidateCreate).
func checkCreate(name, image string) error {
	if len(name) > MaxRefBytes {
		return fmt.Errorf("container name %s is longer than %d bytes: %w", errdefs.Quote(name), MaxRefBytes, errdefs.ErrInvalidArgument)
	}
	return checkImageRef(image)
}
