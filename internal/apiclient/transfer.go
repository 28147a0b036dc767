package apiclient

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"

	"connectrpc.com/connect"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/api/cairn/v1/cairnv1connect"
)

// byteStream is a server stream of chunks with an end (save, export).
type byteStream[M interface {
	GetChunk() []byte
	GetEnd() *cairnv1.ImportEnd
}] interface {
	Receive() bool
	Msg() M
	Err() error
	Close() error
}

// receiveBytes writes the chunks of stream to w and returns nil only when
// the stream ended with an end message matching what arrived: a stream cut
// short is an error, never a shorter file taken for the whole.
func receiveBytes[M interface {
	GetChunk() []byte
	GetEnd() *cairnv1.ImportEnd
}](stream byteStream[M], w io.Writer) error {
	defer stream.Close()
	sum := sha256.New()
	var size int64
	for stream.Receive() {
		msg := stream.Msg()
		if chunk := msg.GetChunk(); len(chunk) > 0 {
			if _, err := w.Write(chunk); err != nil {
				return err
			}
			sum.Write(chunk)
			size += int64(len(chunk))
		}
		if end := msg.GetEnd(); end != nil {
			if got := hex.EncodeToString(sum.Sum(nil)); end.Size != size || end.Sha256 != got {
				return fmt.Errorf("received %d bytes with sha256 %s, the daemon sent %d with %s", size, got, end.Size, end.Sha256)
			}
			return nil
		}
	}
	if err := stream.Err(); err != nil {
		return err
	}
	return fmt.Errorf("the stream ended after %d bytes without its end", size)
}

// SaveImages writes the archive of the images refs name to w.
func SaveImages(ctx context.Context, images cairnv1connect.ImageServiceClient, refs []string, w io.Writer) error {
	stream, err := images.Save(ctx, connect.NewRequest(&cairnv1.ImageServiceSaveRequest{Refs: refs}))
	if err != nil {
		return err
	}
	return receiveBytes(stream, w)
}

// ExportContainer writes the flattened root filesystem of a container to w.
func ExportContainer(ctx context.Context, images cairnv1connect.ImageServiceClient, container string, w io.Writer) error {
	stream, err := images.Export(ctx, connect.NewRequest(&cairnv1.ImageServiceExportRequest{Container: container}))
	if err != nil {
		return err
	}
	return receiveBytes(stream, w)
}

// PullImage pulls an image, calling progress with each layer step.
func PullImage(ctx context.Context, images cairnv1connect.ImageServiceClient, req *cairnv1.ImageServicePullRequest, progress func(*cairnv1.LayerProgress)) (*cairnv1.Image, error) {
	stream, err := images.Pull(ctx, connect.NewRequest(req))
	if err != nil {
		return nil, err
	}
	defer stream.Close()
	for stream.Receive() {
		msg := stream.Msg()
		if msg.Progress != nil && progress != nil {
			progress(msg.Progress)
		}
		if msg.Image != nil {
			return msg.Image, nil
		}
	}
	if err := stream.Err(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("the pull ended without its image")
}

// PushImage pushes an image, calling progress with each layer step, and
// returns the manifest digest.
func PushImage(ctx context.Context, images cairnv1connect.ImageServiceClient, req *cairnv1.ImageServicePushRequest, progress func(*cairnv1.LayerProgress)) (string, error) {
	stream, err := images.Push(ctx, connect.NewRequest(req))
	if err != nil {
		return "", err
	}
	defer stream.Close()
	for stream.Receive() {
		msg := stream.Msg()
		if msg.Progress != nil && progress != nil {
			progress(msg.Progress)
		}
		if msg.Digest != "" {
			return msg.Digest, nil
		}
	}
	if err := stream.Err(); err != nil {
		return "", err
	}
	return "", fmt.Errorf("the push ended without its digest")
}
