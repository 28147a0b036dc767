package apiclient

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/api/cairn/v1/cairnv1connect"
)

// ImportChunk is how many bytes one import message carries.
const ImportChunk = 256 << 10

// ImportImage streams the tar r (plain or gzip) to the daemon as image
// name: the name first, then chunks, then an end with the size and sha256
// of every byte sent, counted and hashed in the same pass (so r may be a
// pipe or stdin). The daemon registers the image only if that end arrives
// and matches. If reading r fails, the stream is cancelled without an end
// and nothing is registered.
func ImportImage(ctx context.Context, images cairnv1connect.ImageServiceClient, name string, r io.Reader) (*cairnv1.Image, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream := images.Import(ctx)
	// A failed Send only says the stream broke; CloseAndReceive says why.
	sendErr := stream.Send(&cairnv1.ImageServiceImportRequest{Name: name})
	if err := sendChunks(r, sendErr, cancel, func(chunk []byte, end *cairnv1.ImportEnd) error {
		return stream.Send(&cairnv1.ImageServiceImportRequest{Chunk: chunk, End: end})
	}); err != nil {
		_, _ = stream.CloseAndReceive()
		return nil, err
	}
	res, err := stream.CloseAndReceive()
	if err != nil {
		return nil, err
	}
	return res.Msg.Image, nil
}

// LoadImage streams the image archive r to the daemon as ImportImage
// streams a tar: chunks, then an end with the size and sha256 of every
// byte sent. It returns the images the archive held.
func LoadImage(ctx context.Context, images cairnv1connect.ImageServiceClient, r io.Reader) ([]*cairnv1.Image, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream := images.Load(ctx)
	if err := sendChunks(r, nil, cancel, func(chunk []byte, end *cairnv1.ImportEnd) error {
		return stream.Send(&cairnv1.ImageServiceLoadRequest{Chunk: chunk, End: end})
	}); err != nil {
		_, _ = stream.CloseAndReceive()
		return nil, err
	}
	res, err := stream.CloseAndReceive()
	if err != nil {
		return nil, err
	}
	return res.Msg.Images, nil
}

// sendChunks sends r in chunks and then the end, counted and hashed in the
// same pass. A read error cancels the stream (no end is sent) and is
// returned; a send error just stops sending (the stream's answer says why).
func sendChunks(r io.Reader, sendErr error, cancel func(), send func(chunk []byte, end *cairnv1.ImportEnd) error) error {
	sum := sha256.New()
	var size int64
	buf := make([]byte, ImportChunk)
	for sendErr == nil {
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			sum.Write(buf[:n])
			size += int64(n)
			sendErr = send(buf[:n], nil)
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			break
		}
		if rerr != nil {
			cancel()
			return fmt.Errorf("read image: %w", rerr)
		}
	}
	if sendErr == nil {
		_ = send(nil, &cairnv1.ImportEnd{Size: size, Sha256: hex.EncodeToString(sum.Sum(nil))})
	}
	return nil
}
