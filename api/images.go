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
	"github.com/cairn-run/cairn/images"
	"github.com/cairn-run/cairn/internal/errdefs"
	"github.com/cairn-run/cairn/layer"
)

// ImageService is the port to the image service (package images) the
// image handlers use. Every change behind it is journaled.
type ImageService interface {
	Import(ctx context.Context, name string, r io.Reader) (layer.Image, error)
	Load(ctx context.Context, r io.Reader) ([]layer.Image, error)
	List() ([]layer.Image, error)
	Inspect(ref string) (images.Inspection, error)
	Tag(ctx context.Context, src, dst string) (layer.Image, error)
	Remove(ctx context.Context, ref string) (images.Removed, error)
	Prune(ctx context.Context, all bool) ([]string, error)
}

// ImageServer implements cairn.v1.ImageService.
type ImageServer struct {
	Images ImageService
}

// errImportMismatch: the end of an import stream does not match what was
// received (bytes lost or changed on the way); the client should send the
// whole image again. errors.go maps it to Aborted.
var errImportMismatch = errors.New("import stream does not match its end")

// Import takes the name from the first message and streams the chunks of
// every message into the image service, which hashes and unpacks in one
// pass. The service sees the end of its input only once the stream's end
// message has arrived and matches what came before it, and it registers
// the image only after reading to that end; any other way the stream stops
// reaches it as a read error, and nothing is registered.
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
	var img layer.Image
	err := withStream(stream, func(r io.Reader) error {
		var err error
		img, err = s.Images.Import(ctx, name, r)
		return err
	})
	if err != nil {
		return nil, toConnect(err)
	}
	return connect.NewResponse(&cairnv1.ImageServiceImportResponse{Image: imageToProto(img)}), nil
}

// Load streams an archive into the image service as Import streams a tar.
func (s *ImageServer) Load(ctx context.Context, stream *connect.ClientStream[cairnv1.ImageServiceLoadRequest]) (*connect.Response[cairnv1.ImageServiceLoadResponse], error) {
	if !stream.Receive() {
		if err := stream.Err(); err != nil {
			return nil, err
		}
		return nil, toConnect(fmt.Errorf("empty load stream: %w", errdefs.ErrInvalidArgument))
	}
	var loaded []layer.Image
	err := withStream(stream, func(r io.Reader) error {
		var err error
		loaded, err = s.Images.Load(ctx, r)
		return err
	})
	out := &cairnv1.ImageServiceLoadResponse{}
	for _, img := range loaded {
		out.Images = append(out.Images, imageToProto(img))
	}
	if err != nil {
		return nil, toConnect(err)
	}
	return connect.NewResponse(out), nil
}

// chunkMessage is a message of an import or load stream.
type chunkMessage interface {
	GetChunk() []byte
	GetEnd() *cairnv1.ImportEnd
}

// chunkStream is what pumpChunks reads: a received stream whose current
// message is the first.
type chunkStream[M chunkMessage] interface {
	Msg() M
	Receive() bool
	Err() error
}

// withStream runs consume on a reader of the stream's chunks, and waits
// for the stream's pump before returning, so nothing reads the stream after
// the handler is done.
func withStream[M chunkMessage](stream chunkStream[M], consume func(io.Reader) error) error {
	pr, pw := io.Pipe()
	pumped := make(chan struct{})
	go func() {
		defer close(pumped)
		pw.CloseWithError(pumpChunks(stream, pw))
	}()
	err := consume(pr)
	pr.CloseWithError(errors.New("stream consumed"))
	// The pump stops at its next write, or when the client sends or closes.
	<-pumped
	return err
}

// pumpChunks writes the chunks of stream to w, counting and hashing them,
// and returns nil (a clean EOF for the reader) only when the stream ended
// with an end message that matches them and nothing after it.
func pumpChunks[M chunkMessage](stream chunkStream[M], w io.Writer) error {
	sum := sha256.New()
	var size int64
	for msg := stream.Msg(); ; msg = stream.Msg() {
		if chunk := msg.GetChunk(); len(chunk) > 0 {
			if _, err := w.Write(chunk); err != nil {
				return err // the importer stopped reading: it has its answer
			}
			sum.Write(chunk)
			size += int64(len(chunk))
		}
		if end := msg.GetEnd(); end != nil {
			if stream.Receive() {
				return fmt.Errorf("message after the end message: %w", errdefs.ErrInvalidArgument)
			}
			if err := stream.Err(); err != nil {
				return err
			}
			return checkImportEnd(end, size, hex.EncodeToString(sum.Sum(nil)))
		}
		if !stream.Receive() {
			if err := stream.Err(); err != nil {
				return err
			}
			return fmt.Errorf("stream ended after %d bytes without its end message: %w", size, errdefs.ErrInvalidArgument)
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
	imgs, err := s.Images.List()
	if err != nil {
		return nil, toConnect(err)
	}
	out := &cairnv1.ImageServiceListResponse{}
	for _, img := range imgs {
		out.Images = append(out.Images, imageToProto(img))
	}
	return connect.NewResponse(out), nil
}

func (s *ImageServer) Get(ctx context.Context, req *connect.Request[cairnv1.ImageServiceGetRequest]) (*connect.Response[cairnv1.ImageServiceGetResponse], error) {
	if err := checkImageRef(req.Msg.Ref); err != nil {
		return nil, toConnect(err)
	}
	ins, err := s.Images.Inspect(req.Msg.Ref)
	if err != nil {
		return nil, toConnect(err)
	}
	img := imageToProto(ins.Image)
	if ins.View != nil && ins.View.Pending != nil {
		img.PendingEvent = string(ins.View.Pending.Event)
	}
	out := &cairnv1.ImageServiceGetResponse{Image: img, ConfigJson: string(ins.Image.Config), Mounts: ins.Mounts}
	for _, h := range ins.History {
		out.History = append(out.History, &cairnv1.ImageHistoryEntry{Created: timestamp(h.Created), CreatedBy: h.CreatedBy,
			Comment: h.Comment, EmptyLayer: h.EmptyLayer, DiffId: h.DiffID, Size: h.Size})
	}
	return connect.NewResponse(out), nil
}

func (s *ImageServer) Tag(ctx context.Context, req *connect.Request[cairnv1.ImageServiceTagRequest]) (*connect.Response[cairnv1.ImageServiceTagResponse], error) {
	for _, ref := range []string{req.Msg.Source, req.Msg.Target} {
		if err := checkImageRef(ref); err != nil {
			return nil, toConnect(err)
		}
	}
	img, err := s.Images.Tag(ctx, req.Msg.Source, req.Msg.Target)
	if err != nil {
		return nil, toConnect(err)
	}
	return connect.NewResponse(&cairnv1.ImageServiceTagResponse{Image: imageToProto(img)}), nil
}

func (s *ImageServer) Remove(ctx context.Context, req *connect.Request[cairnv1.ImageServiceRemoveRequest]) (*connect.Response[cairnv1.ImageServiceRemoveResponse], error) {
	if err := checkImageRef(req.Msg.Name); err != nil {
		return nil, toConnect(err)
	}
	removed, err := s.Images.Remove(ctx, req.Msg.Name)
	if err != nil {
		return nil, toConnect(err)
	}
	return connect.NewResponse(&cairnv1.ImageServiceRemoveResponse{Untagged: removed.Untagged, Deleted: removed.Deleted}), nil
}

func (s *ImageServer) Prune(ctx context.Context, req *connect.Request[cairnv1.ImageServicePruneRequest]) (*connect.Response[cairnv1.ImageServicePruneResponse], error) {
	deleted, err := s.Images.Prune(ctx, req.Msg.All)
	if err != nil {
		return nil, toConnect(err)
	}
	return connect.NewResponse(&cairnv1.ImageServicePruneResponse{Deleted: deleted}), nil
}
