package api

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"sync"

	"connectrpc.com/connect"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/images"
	"github.com/cairn-run/cairn/internal/errdefs"
	"github.com/cairn-run/cairn/layer"
)

// ImageTransfer is the port to what moves images in and out of the store
// (package images): save, pull, push, commit and export.
type ImageTransfer interface {
	Save(ctx context.Context, refs []string, w io.Writer) error
	Pull(ctx context.Context, req images.PullRequest, progress func(images.Progress)) (layer.Image, error)
	Push(ctx context.Context, req images.PushRequest, progress func(images.Progress)) (string, error)
	Commit(ctx context.Context, req images.CommitRequest) (layer.Image, error)
	Export(ctx context.Context, container string, w io.Writer) error
}

// maxRefs bounds the images one save may name.
const maxRefs = 1024

// streamChunkBytes is the size of the chunks a save or export is sent in.
const streamChunkBytes = 1 << 20

// Save streams the archive of the images named.
func (s *ImageServer) Save(ctx context.Context, req *connect.Request[cairnv1.ImageServiceSaveRequest], stream *connect.ServerStream[cairnv1.ImageServiceSaveResponse]) error {
	if s.Transfer == nil {
		return toConnect(fmt.Errorf("save: %w", errdefs.ErrUnavailable))
	}
	if len(req.Msg.Refs) == 0 || len(req.Msg.Refs) > maxRefs {
		return toConnect(fmt.Errorf("save: name 1 to %d images, not %d: %w", maxRefs, len(req.Msg.Refs), errdefs.ErrInvalidArgument))
	}
	for _, ref := range req.Msg.Refs {
		if err := checkImageRef(ref); err != nil {
			return toConnect(err)
		}
	}
	return sendBytes(func(w io.Writer) error { return s.Transfer.Save(ctx, req.Msg.Refs, w) },
		func(chunk []byte, end *cairnv1.ImportEnd) error {
			return stream.Send(&cairnv1.ImageServiceSaveResponse{Chunk: chunk, End: end})
		})
}

// Export streams the flattened root filesystem of a container.
func (s *ImageServer) Export(ctx context.Context, req *connect.Request[cairnv1.ImageServiceExportRequest], stream *connect.ServerStream[cairnv1.ImageServiceExportResponse]) error {
	if s.Transfer == nil {
		return toConnect(fmt.Errorf("export: %w", errdefs.ErrUnavailable))
	}
	if err := checkContainerRef(req.Msg.Container); err != nil {
		return toConnect(err)
	}
	return sendBytes(func(w io.Writer) error { return s.Transfer.Export(ctx, req.Msg.Container, w) },
		func(chunk []byte, end *cairnv1.ImportEnd) error {
			return stream.Send(&cairnv1.ImageServiceExportResponse{Chunk: chunk, End: end})
		})
}

// sendBytes runs produce on a writer that sends what it writes in chunks,
// counted and hashed, and ends the stream with an end message; a failed
// produce sends no end, so the client cannot take a partial stream for a
// whole one.
func sendBytes(produce func(io.Writer) error, send func([]byte, *cairnv1.ImportEnd) error) error {
	cw := &chunkSender{send: send, sum: sha256.New()}
	bw := bufio.NewWriterSize(cw, streamChunkBytes)
	if err := produce(bw); err != nil {
		return toConnect(err)
	}
	if err := bw.Flush(); err != nil {
		return toConnect(err)
	}
	return send(nil, &cairnv1.ImportEnd{Size: cw.size, Sha256: hex.EncodeToString(cw.sum.Sum(nil))})
}

type chunkSender struct {
	send func([]byte, *cairnv1.ImportEnd) error
	sum  hash.Hash
	size int64
}

func (c *chunkSender) Write(p []byte) (int, error) {
	if err := c.send(p, nil); err != nil {
		return 0, err
	}
	c.sum.Write(p)
	c.size += int64(len(p))
	return len(p), nil
}

func authFromProto(a *cairnv1.RegistryAuth) images.Auth {
	return images.Auth{Username: a.GetUsername(), Password: a.GetPassword(), IdentityToken: a.GetIdentityToken(), Insecure: a.GetInsecure()}
}

func progressToProto(p images.Progress) *cairnv1.LayerProgress {
	return &cairnv1.LayerProgress{Digest: p.Digest, Size: p.Size, Done: p.Done, Status: p.Status}
}

// Pull pulls an image, streaming its layers' progress.
func (s *ImageServer) Pull(ctx context.Context, req *connect.Request[cairnv1.ImageServicePullRequest], stream *connect.ServerStream[cairnv1.ImageServicePullResponse]) error {
	if s.Transfer == nil {
		return toConnect(fmt.Errorf("pull: %w", errdefs.ErrUnavailable))
	}
	if err := checkImageRef(req.Msg.Ref); err != nil {
		return toConnect(err)
	}
	var mu sync.Mutex // layers move in parallel; a stream takes one Send at a time
	progress := func(p images.Progress) {
		mu.Lock()
		defer mu.Unlock()
		// A client that stops reading progress still gets its pull.
		_ = stream.Send(&cairnv1.ImageServicePullResponse{Progress: progressToProto(p)})
	}
	img, err := s.Transfer.Pull(ctx, images.PullRequest{Ref: req.Msg.Ref, Platform: req.Msg.Platform, Auth: authFromProto(req.Msg.Auth)}, progress)
	if err != nil {
		return toConnect(err)
	}
	return stream.Send(&cairnv1.ImageServicePullResponse{Image: imageToProto(img)})
}

// Push pushes an image, streaming its layers' progress.
func (s *ImageServer) Push(ctx context.Context, req *connect.Request[cairnv1.ImageServicePushRequest], stream *connect.ServerStream[cairnv1.ImageServicePushResponse]) error {
	if s.Transfer == nil {
		return toConnect(fmt.Errorf("push: %w", errdefs.ErrUnavailable))
	}
	if err := checkImageRef(req.Msg.Ref); err != nil {
		return toConnect(err)
	}
	var mu sync.Mutex // go-containerregistry uploads layers in parallel
	progress := func(p images.Progress) {
		mu.Lock()
		defer mu.Unlock()
		_ = stream.Send(&cairnv1.ImageServicePushResponse{Progress: progressToProto(p)})
	}
	d, err := s.Transfer.Push(ctx, images.PushRequest{Ref: req.Msg.Ref, Auth: authFromProto(req.Msg.Auth)}, progress)
	if err != nil {
		return toConnect(err)
	}
	return stream.Send(&cairnv1.ImageServicePushResponse{Digest: d})
}

// maxChanges bounds a commit's config changes.
const maxChanges = 256

// Commit makes an image of a container.
func (s *ImageServer) Commit(ctx context.Context, req *connect.Request[cairnv1.ImageServiceCommitRequest]) (*connect.Response[cairnv1.ImageServiceCommitResponse], error) {
	if s.Transfer == nil {
		return nil, toConnect(fmt.Errorf("commit: %w", errdefs.ErrUnavailable))
	}
	if err := checkContainerRef(req.Msg.Container); err != nil {
		return nil, toConnect(err)
	}
	if req.Msg.Ref != "" {
		if err := checkImageRef(req.Msg.Ref); err != nil {
			return nil, toConnect(err)
		}
	}
	if len(req.Msg.Changes) > maxChanges {
		return nil, toConnect(fmt.Errorf("commit: %d changes, at most %d: %w", len(req.Msg.Changes), maxChanges, errdefs.ErrInvalidArgument))
	}
	img, err := s.Transfer.Commit(ctx, images.CommitRequest{Container: req.Msg.Container, Ref: req.Msg.Ref, Changes: req.Msg.Changes,
		Comment: req.Msg.Comment, Author: req.Msg.Author})
	if err != nil {
		return nil, toConnect(err)
	}
	return connect.NewResponse(&cairnv1.ImageServiceCommitResponse{Image: imageToProto(img)}), nil
}

// checkContainerRef refuses an empty or oversized container reference.
func checkContainerRef(ref string) error {
	if ref == "" || len(ref) > 256 {
		return fmt.Errorf("container reference %s: want an id, id prefix or name: %w", errdefs.Quote(ref), errdefs.ErrInvalidArgument)
	}
	return nil
}
