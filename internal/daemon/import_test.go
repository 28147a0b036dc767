package daemon_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/internal/daemon"
	"github.com/cairn-run/cairn/internal/testenv"
	"github.com/cairn-run/cairn/internal/testenv/scratch"
)

func imageNames(t *testing.T, e *scratch.Env) []string {
	t.Helper()
	res, err := e.Images.List(bg, connect.NewRequest(&cairnv1.ImageServiceListRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, img := range res.Msg.Images {
		names = append(names, img.Name)
	}
	return names
}

// assertOnlyBusybox checks that no refused import left an image, a layer
// directory or an import in progress.
func assertOnlyBusybox(t *testing.T, e *scratch.Env) {
	t.Helper()
	if names := imageNames(t, e); len(names) != 1 || names[0] != "docker.io/library/busybox:latest" {
		t.Errorf("images: %v, want only busybox", names)
	}
	store := filepath.Join(e.Config.Root, "layer")
	eventually(t, "no import left in tmp/", func() bool {
		entries, err := os.ReadDir(filepath.Join(store, "tmp"))
		return err == nil && len(entries) == 0
	})
	if layers, err := os.ReadDir(filepath.Join(store, "layers")); err != nil || len(layers) != 1 {
		t.Errorf("layer directories: %v %v, want busybox's one", layers, err)
	}
}

// sendImport streams data in chunks and then, if end is not nil, the end.
func sendImport(ctx context.Context, e *scratch.Env, name string, data []byte, end *cairnv1.ImportEnd) error {
	stream := e.Images.Import(ctx)
	err := stream.Send(&cairnv1.ImageServiceImportRequest{Name: name})
	for len(data) > 0 && err == nil {
		n := min(len(data), 64<<10)
		err = stream.Send(&cairnv1.ImageServiceImportRequest{Chunk: data[:n]})
		data = data[n:]
	}
	if err == nil && end != nil {
		_ = stream.Send(&cairnv1.ImageServiceImportRequest{End: end})
	}
	_, err = stream.CloseAndReceive()
	return err
}

func endOf(data []byte) *cairnv1.ImportEnd {
	sum := sha256.Sum256(data)
	return &cairnv1.ImportEnd{Size: int64(len(data)), Sha256: hex.EncodeToString(sum[:])}
}

func TestImport_OnlyACompleteMatchingStreamRegisters(t *testing.T) {
	e := scratch.NewDaemon(t)
	tarball, err := os.ReadFile(testenv.BusyboxTar(t))
	if err != nil {
		t.Fatal(err)
	}
	wrongSum := endOf(tarball)
	wrongSum.Sha256 = hex.EncodeToString(make([]byte, 32))
	wrongSize := endOf(tarball)
	wrongSize.Size--
	cases := []struct {
		what string
		data []byte
		end  *cairnv1.ImportEnd
		want connect.Code
	}{
		{"no end message", tarball, nil, connect.CodeInvalidArgument},
		{"mismatched sha256", tarball, wrongSum, connect.CodeAborted},
		{"mismatched size", tarball, wrongSize, connect.CodeAborted},
		{"sha256 not hex", tarball, &cairnv1.ImportEnd{Size: int64(len(tarball)), Sha256: "nope"}, connect.CodeInvalidArgument},
		{"head -c 4096, honest end", tarball[:4096], endOf(tarball[:4096]), connect.CodeInvalidArgument},
	}
	for _, tc := range cases {
		if err := sendImport(bg, e, "x", tc.data, tc.end); codeOf(err) != tc.want {
			t.Errorf("%s: got %v, want %v", tc.what, err, tc.want)
		}
	}
	assertOnlyBusybox(t, e)
	if err := sendImport(bg, e, "x", tarball, endOf(tarball)); err != nil {
		t.Fatalf("a complete stream: %v", err)
	}
}

// headerOffsets are the offsets at which tarball's headers start, and the
// offset of its end-of-archive marker.
func headerOffsets(t *testing.T, tarball []byte) []int {
	t.Helper()
	r := bytes.NewReader(tarball)
	tr := tar.NewReader(r)
	var offsets []int
	for {
		// Next skips the previous entry's padding first.
		_, err := tr.Next()
		offset := len(tarball) - r.Len() - 512
		if err == io.EOF {
			return append(offsets, offset-512)
		}
		if err != nil {
			t.Fatal(err)
		}
		offsets = append(offsets, offset)
		if _, err := io.Copy(io.Discard, tr); err != nil {
			t.Fatal(err)
		}
	}
}

func TestImport_CancelledStreamsNeverRegister(t *testing.T) {
	e := scratch.NewDaemon(t)
	tarball, err := os.ReadFile(testenv.BusyboxTar(t))
	if err != nil {
		t.Fatal(err)
	}
	boundaries := headerOffsets(t, tarball)
	rng := rand.New(rand.NewPCG(1, 2))
	type attempt struct {
		cut       int
		closeSend bool // close the stream (no end message) before cancelling
		delay     time.Duration
	}
	attempts := make(chan attempt)
	var wg sync.WaitGroup
	var mu sync.Mutex
	registered := 0
	for range 4 {
		wg.Go(func() {
			for a := range attempts {
				ctx, cancel := context.WithCancel(bg)
				stream := e.Images.Import(ctx)
				sendErr := stream.Send(&cairnv1.ImageServiceImportRequest{Name: "cancelled"})
				data := tarball[:a.cut]
				for len(data) > 0 && sendErr == nil {
					n := min(len(data), 32<<10)
					sendErr = stream.Send(&cairnv1.ImageServiceImportRequest{Chunk: data[:n]})
					data = data[n:]
				}
				// The client gives up before its end message: mid-stream,
				// or after closing its side, at once or a little later.
				answer := make(chan error, 1)
				if a.closeSend {
					go func() { _, err := stream.CloseAndReceive(); answer <- err }()
				}
				time.Sleep(a.delay)
				cancel()
				if !a.closeSend {
					_, err := stream.CloseAndReceive()
					answer <- err
				}
				if err := <-answer; err == nil {
					mu.Lock()
					registered++
					mu.Unlock()
				}
			}
		})
	}
	for i := range 200 {
		// Half the cuts where a header would start, where archive/tar
		// alone sees a clean end.
		cut := rng.IntN(len(tarball) + 1)
		if i%2 == 0 {
			cut = boundaries[rng.IntN(len(boundaries))]
		}
		attempts <- attempt{cut: cut, closeSend: rng.IntN(2) == 0, delay: time.Duration(rng.IntN(30_000)) * time.Microsecond}
	}
	close(attempts)
	wg.Wait()
	if registered != 0 {
		t.Errorf("%d of 200 cancelled imports were registered", registered)
	}
	assertOnlyBusybox(t, e)
}

func TestImport_MaxImportBytesBoundsTheUnpackedSize(t *testing.T) {
	e := scratch.NewDaemon(t, func(c *daemon.Config) { c.MaxImportBytes = 4 << 20 })
	big := tarOf(t, &tar.Header{Name: "big", Typeflag: tar.TypeReg, Size: 5 << 20, Mode: 0o644})
	err := importBytes(e, "big", big)
	if codeOf(err) != connect.CodeResourceExhausted || !strings.Contains(err.Error(), "exceeds 4194304 bytes") {
		t.Fatalf("a 5 MiB tar with --max-import-bytes 4MiB: %v", err)
	}
	assertOnlyBusybox(t, e)
}
