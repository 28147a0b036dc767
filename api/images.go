package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"connectrpc.com/connect"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/internal/errdefs"
	"github.com/cairn-run/cairn/layer"
)

// ImageStore is the part of the layer store the image handlers use.
type ImageStore interface {
	Import(ctx context.Context, name string, r io.Reader, opts layer.ImportOptions) (layer.Image, error)
	Images() ([]layer.Image, error)
	RemoveImage(name string) error
}

// ImageServer implements cairn.v1.ImageService.
type ImageServer struct {
	Store   ImageStore
	Options layer.ImportOptions
}

// errImportMismatch: the end of an import stream does not match what was
// received (bytes lost or changed on the way); the client should send the
// whole image again. errors.go maps it to Aborted.
var errImportMismatch = errors.New("import stream does not match its end")

// Import takes the name from the first message and streams the chunks of
// every message into the layer store, which hashes and unpacks in one pass.
// The store sees the end of its input only once the stream's end message
// has arrived and matches what came before it, and it registers the image
// only after reading to that end; any other way the stream stops reaches
// it as a read error, and nothing is registered.
func (s *ImageServer) Import(ctx context.Context, stream *connect.ClientStream[cairnv1.ImageServiceImportRequest]) (*connect.Response[cairnv1.ImageServiceImportResponse], error) {
	if !stream.Receive() {
		if err := stream.Err(); err != nil {
			return nil, err
		}
		return nil, toConnect(fmt.Errorf("empty import stream: %w", errdefs.ErrInvalidArgument))
	}
	name := stream.Msg().Name
	if name == "" {
		return nil, toConnect(fmt.Errorf("the first import message must name the image: %w", errdefs.ErrInvalidArgument))
	}
	if err := checkImageRef(name); err != nil {
		return nil, toConnect(err)
	}
	pr, pw := io.Pipe()
	pumped := make(chan struct{})
	go func() {
		defer close(pumped)
		pw.CloseWithError(pumpImport(stream, pw))
	}()
	img, err := s.Store.Import(ctx, name, pr, s.Options)
	pr.CloseWithError(errors.New("import finished"))
	// The stream is not to be touched once the handler returns; the pump
	// stops at its next write, or when the client sends or closes.
	<-pumped
	if err != nil {
		return nil, toConnect(err)
	}
	return connect.NewResponse(&cairnv1.ImageServiceImportResponse{Image: imageToProto(img)}), nil
}

// importStream is what pumpImport reads: a received stream whose current
// message is the first.
type importStream interface {
	Msg() *cairnv1.ImageServiceImportRequest
	Receive() bool
	Err() error
}

// pumpImport writes the chunks of stream to w, counting and hashing them,
// and returns nil (a clean EOF for the reader) only when the stream ended
// with an end message that matches them and nothing after it.
func pumpImport(stream importStream, w io.Writer) error {
	sum := sha256.New()
	var size int64
	for msg := stream.Msg(); ; msg = stream.Msg() {
		if len(msg.Chunk) > 0 {
			if _, err := w.Write(msg.Chunk); err != nil {
				return err // the importer stopped reading: it has its answer
			}
			sum.Write(msg.Chunk)
			size += int64(len(msg.Chunk))
		}
		if msg.End != nil {
			if stream.Receive() {
				return fmt.Errorf("import message after the end message: %w", errdefs.ErrInvalidArgument)
			}
			if err := stream.Err(); err != nil {
				return err
			}
			return checkImportEnd(msg.End, size, hex.EncodeToString(sum.Sum(nil)))
		}
		if !stream.Receive() {
			if err := stream.Err(); err != nil {
				return err
			}
			return fmt.Errorf("import stream ended after %d bytes without its end message: %w", size, errdefs.ErrInvalidArgument)
		}
	}
}

// checkImportEnd compares the client's end with what arrived.
func checkImportEnd(end *cairnv1.ImportEnd, size int64, sha string) error {
	if _, err := hex.DecodeString(end.Sha256); err != nil || len(end.Sha256) != sha256.Size*2 || strings.ToLower(end.Sha256) != end.Sha256 {
		return fmt.Errorf("import end: sha256 %s is not 64 lowercase hex digits: %w", errdefs.Quote(end.Sha256), errdefs.ErrInvalidArgument)
	}
	if end.Size != size || end.Sha256 != sha {
		return fmt.Errorf("received %d bytes with sha256 %s, the end says %d bytes with sha256 %s: %w", size, sha, end.Size, end.Sha256, errImportMismatch)
	}
	return nil
}

func (s *ImageServer) List(ctx context.Context, req *connect.Request[cairnv1.ImageServiceListRequest]) (*connect.Response[cairnv1.ImageServiceListResponse], error) {
	imgs, err := s.Store.Images()
	if err != nil {
		return nil, toConnect(err)
	}
	out := &cairnv1.ImageServiceListResponse{}
	for _, img := range imgs {
		out.Images = append(out.Images, imageToProto(img))
	}
	return connect.NewResponse(out), nil
}

func (s *ImageServer) Remove(ctx context.Context, req *connect.Request[cairnv1.ImageServiceRemoveRequest]) (*connect.Response[cairnv1.ImageServiceRemoveResponse], error) {
	if err := checkImageRef(req.Msg.Name); err != nil {
		return nil, toConnect(err)
	}
	if err := s.Store.RemoveImage(req.Msg.Name); err != nil {
		return nil, toConnect(err)
	}
	return connect.NewResponse(&cairnv1.ImageServiceRemoveResponse{}), nil
}
