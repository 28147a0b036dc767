package api

import (
	"context"
	"errors"
	"fmt"
	"io"

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

// Import takes the name from the first message and streams the chunks of
// every message into the layer store, which hashes and unpacks in one pass.
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
	go func() {
		if _, err := pw.Write(stream.Msg().Chunk); err != nil {
			return
		}
		for stream.Receive() {
			if _, err := pw.Write(stream.Msg().Chunk); err != nil {
				return // the importer stopped reading: it has its answer
			}
		}
		pw.CloseWithError(stream.Err()) // nil err: a clean EOF
	}()
	img, err := s.Store.Import(ctx, name, pr, s.Options)
	pr.CloseWithError(errors.New("import finished"))
	if err != nil {
		return nil, toConnect(err)
	}
	return connect.NewResponse(&cairnv1.ImageServiceImportResponse{Image: imageToProto(img)}), nil
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
