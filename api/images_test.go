package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"connectrpc.com/connect"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/internal/apiclient"
	"github.com/cairn-run/cairn/internal/errdefs"
)

func TestImages_ImportListRemove(t *testing.T) {
	r := newRig(t)
	data := bytes.Repeat([]byte("tar!"), 200_000) // several chunks
	img, err := apiclient.ImportImage(bg, r.Images, "busybox", bytes.NewReader(data))
	if err != nil || img.Name != "busybox" || img.Size != int64(len(data)) || !bytes.Equal(r.images.read["busybox"], data) {
		t.Fatalf("import: %v %v", img, err)
	}
	list, err := r.Images.List(bg, connect.NewRequest(&cairnv1.ImageServiceListRequest{}))
	if err != nil || len(list.Msg.Images) != 1 || list.Msg.Images[0].ChainId != "sha256:d" || list.Msg.Images[0].CreatedAt == nil {
		t.Fatalf("list: %v %v", list, err)
	}
	_, err = apiclient.ImportImage(bg, r.Images, "busybox", bytes.NewReader(data))
	wantCode(t, "import over a name", err, connect.CodeAlreadyExists)
	if _, err := r.Images.Remove(bg, connect.NewRequest(&cairnv1.ImageServiceRemoveRequest{Name: "busybox"})); err != nil {
		t.Fatal(err)
	}
	_, err = r.Images.Remove(bg, connect.NewRequest(&cairnv1.ImageServiceRemoveRequest{Name: "busybox"}))
	wantCode(t, "remove twice", err, connect.CodeNotFound)
	_, err = r.Images.Remove(bg, connect.NewRequest(&cairnv1.ImageServiceRemoveRequest{}))
	wantCode(t, "remove of no name", err, connect.CodeInvalidArgument)
	_, err = r.Images.Remove(bg, connect.NewRequest(&cairnv1.ImageServiceRemoveRequest{Name: strings.Repeat("n", 1<<20)}))
	wantCode(t, "remove of a 1 MiB name", err, connect.CodeInvalidArgument)

	r.images.fail = fmt.Errorf("bucket: %w", errdefs.ErrUnavailable)
	_, err = r.Images.List(bg, connect.NewRequest(&cairnv1.ImageServiceListRequest{}))
	wantCode(t, "list failing", err, connect.CodeUnavailable)
	_, err = apiclient.ImportImage(bg, r.Images, "other", bytes.NewReader(data))
	wantCode(t, "import failing", err, connect.CodeUnavailable)
}

func sendRaw(r *rig, msgs ...*cairnv1.ImageServiceImportRequest) error {
	stream := r.Images.Import(bg)
	for _, m := range msgs {
		if err := stream.Send(m); err != nil {
			break
		}
	}
	_, err := stream.CloseAndReceive()
	return err
}

func TestImages_ImportStreamProtocol(t *testing.T) {
	r := newRig(t)
	chunk := []byte("some tar bytes")
	sum := sha256.Sum256(chunk)
	end := &cairnv1.ImportEnd{Size: int64(len(chunk)), Sha256: hex.EncodeToString(sum[:])}
	cases := []struct {
		what string
		msgs []*cairnv1.ImageServiceImportRequest
		want connect.Code
	}{
		{"empty stream", nil, connect.CodeInvalidArgument},
		{"no name", []*cairnv1.ImageServiceImportRequest{{Chunk: chunk, End: end}}, connect.CodeInvalidArgument},
		{"overlong name", []*cairnv1.ImageServiceImportRequest{{Name: strings.Repeat("n", MaxImageRefBytes+1), Chunk: chunk, End: end}}, connect.CodeInvalidArgument},
		{"no end", []*cairnv1.ImageServiceImportRequest{{Name: "a"}, {Chunk: chunk}}, connect.CodeInvalidArgument},
		{"wrong size", []*cairnv1.ImageServiceImportRequest{{Name: "a", Chunk: chunk}, {End: &cairnv1.ImportEnd{Size: 1, Sha256: end.Sha256}}}, connect.CodeAborted},
		{"wrong sha256", []*cairnv1.ImageServiceImportRequest{{Name: "a", Chunk: chunk}, {End: &cairnv1.ImportEnd{Size: end.Size, Sha256: strings.Repeat("0", 64)}}}, connect.CodeAborted},
		{"upper-case sha256", []*cairnv1.ImageServiceImportRequest{{Name: "a", Chunk: chunk}, {End: &cairnv1.ImportEnd{Size: end.Size, Sha256: strings.ToUpper(end.Sha256)}}}, connect.CodeInvalidArgument},
		{"a message after the end", []*cairnv1.ImageServiceImportRequest{{Name: "a", Chunk: chunk}, {End: end}, {Chunk: chunk}}, connect.CodeInvalidArgument},
	}
	for _, tc := range cases {
		wantCode(t, tc.what, sendRaw(r, tc.msgs...), tc.want)
	}
	if len(r.images.images) != 0 {
		t.Fatalf("refused streams registered %v", r.images.images)
	}
	if err := sendRaw(r, &cairnv1.ImageServiceImportRequest{Name: "one-message", Chunk: chunk, End: end}); err != nil {
		t.Fatalf("name, chunk and end in one message: %v", err)
	}
}

func TestImportImage_ReadErrorSendsNoEnd(t *testing.T) {
	r := newRig(t)
	_, err := apiclient.ImportImage(bg, r.Images, "broken", &failingReader{})
	if err == nil || !strings.Contains(err.Error(), "disk read failed") {
		t.Fatalf("got %v", err)
	}
	if len(r.images.images) != 0 {
		t.Fatalf("registered %v", r.images.images)
	}
	ctx, cancel := context.WithCancel(bg)
	cancel()
	if _, err := apiclient.ImportImage(ctx, r.Images, "cancelled", bytes.NewReader(make([]byte, 10))); err == nil {
		t.Fatal("a cancelled import succeeded")
	}
}

type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n > 0 {
		return 0, fmt.Errorf("disk read failed")
	}
	f.n++
	return copy(p, "abc"), nil
}

func TestImages_LoadStreamsAnArchiveAndItsEnd(t *testing.T) {
	r := newRig(t)
	data := append([]byte("docker.io/library/loaded:1\n"), bytes.Repeat([]byte("blob"), 100_000)...)
	imgs, err := apiclient.LoadImage(bg, r.Images, bytes.NewReader(data))
	if err != nil || len(imgs) != 1 || imgs[0].Name != "docker.io/library/loaded:1" || !bytes.Equal(r.images.read["docker.io/library/loaded:1"], data) {
		t.Fatalf("load: %v %v", imgs, err)
	}
	// Like an import, a stream without its end, or one whose end does not
	// match, registers nothing.
	stream := r.Images.Load(bg)
	_ = stream.Send(&cairnv1.ImageServiceLoadRequest{Chunk: []byte("cut\n")})
	_, err = stream.CloseAndReceive()
	wantCode(t, "a load without its end", err, connect.CodeInvalidArgument)
	stream = r.Images.Load(bg)
	_ = stream.Send(&cairnv1.ImageServiceLoadRequest{Chunk: []byte("bad\n"), End: &cairnv1.ImportEnd{Size: 4, Sha256: strings.Repeat("0", 64)}})
	_, err = stream.CloseAndReceive()
	wantCode(t, "a load whose end does not match", err, connect.CodeAborted)
	if _, ok := r.images.images["cut"]; ok {
		t.Fatal("a cut load registered")
	}
	if _, ok := r.images.images["bad"]; ok {
		t.Fatal("a mismatched load registered")
	}
}

func TestImages_GetTagPruneAndBadReferences(t *testing.T) {
	r := newRig(t)
	if _, err := apiclient.ImportImage(bg, r.Images, "busybox", bytes.NewReader([]byte("tar"))); err != nil {
		t.Fatal(err)
	}
	got, err := r.Images.Get(bg, connect.NewRequest(&cairnv1.ImageServiceGetRequest{Ref: "busybox"}))
	if err != nil || got.Msg.Image.ChainId != "sha256:d" {
		t.Fatalf("get: %v %v", got, err)
	}
	_, err = r.Images.Get(bg, connect.NewRequest(&cairnv1.ImageServiceGetRequest{Ref: "nope"}))
	wantCode(t, "get of no image", err, connect.CodeNotFound)
	_, err = r.Images.Get(bg, connect.NewRequest(&cairnv1.ImageServiceGetRequest{Ref: strings.Repeat("r", MaxImageRefBytes+1)}))
	wantCode(t, "get of an overlong reference", err, connect.CodeInvalidArgument)
	if _, err := r.Images.Tag(bg, connect.NewRequest(&cairnv1.ImageServiceTagRequest{Source: "busybox", Target: "other"})); err != nil {
		t.Fatal(err)
	}
	_, err = r.Images.Tag(bg, connect.NewRequest(&cairnv1.ImageServiceTagRequest{Source: "busybox"}))
	wantCode(t, "tag without a target", err, connect.CodeInvalidArgument)
	if _, err := r.Images.Prune(bg, connect.NewRequest(&cairnv1.ImageServicePruneRequest{All: true})); err != nil {
		t.Fatal(err)
	}
}
