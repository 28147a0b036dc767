package daemon_test

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"connectrpc.com/connect"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/internal/apiclient"
	"github.com/cairn-run/cairn/internal/testenv/scratch"
)

// gzipBomb is a gzip body of 512 MiB of zeros in about 540 KB: one member
// of 1 MiB of zeros, repeated (gzip readers read concatenated members).
func gzipBomb(t *testing.T) []byte {
	t.Helper()
	var one bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&one, gzip.BestCompression)
	if _, err := zw.Write(make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	_ = zw.Close()
	return bytes.Repeat(one.Bytes(), 512)
}

// allocated is how much the whole test process (the in-process daemon
// included) has allocated since it started.
func allocated() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.TotalAlloc
}

func TestLimits_GzipBombIsRefusedWithoutInflating(t *testing.T) {
	e := scratch.NewDaemon(t)
	bomb := gzipBomb(t)
	// gRPC frames the same bomb in a length-prefixed, compressed envelope.
	envelope := binary.BigEndian.AppendUint32([]byte{1}, uint32(len(bomb)))
	envelope = append(envelope, bomb...)
	protocols := []struct {
		name    string
		body    []byte
		headers map[string]string
	}{
		{"connect", bomb, map[string]string{"Content-Type": "application/proto", "Content-Encoding": "gzip", "Connect-Protocol-Version": "1"}},
		{"grpc", envelope, map[string]string{"Content-Type": "application/grpc", "Grpc-Encoding": "gzip", "Te": "trailers"}},
	}
	for _, p := range protocols {
		runtime.GC()
		before := allocated()
		req, _ := http.NewRequest("POST", apiclient.BaseURL+"/cairn.v1.ContainerService/List", bytes.NewReader(p.body))
		for k, v := range p.headers {
			req.Header.Set(k, v)
		}
		resp, err := e.HTTP.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", p.name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		grew := allocated() - before
		var code string
		switch p.name {
		case "connect":
			var answer struct{ Code string }
			_ = json.Unmarshal(body, &answer)
			code = answer.Code
		case "grpc":
			code = resp.Trailer.Get("Grpc-Status") // 8 is RESOURCE_EXHAUSTED
		}
		if code != "resource_exhausted" && code != "8" {
			t.Errorf("%s: status %d, code %q, body %.200q; want resource_exhausted", p.name, resp.StatusCode, code, body)
		}
		// Inflating the bomb would allocate at least its 512 MiB (the
		// unbounded daemon allocated ~2 GB); the bound keeps it to a few
		// buffers of MaxMessageBytes.
		if grew > 64<<20 {
			t.Errorf("%s: the process allocated %d MiB answering a %d KB bomb", p.name, grew>>20, len(p.body)>>10)
		}
		t.Logf("%s: %d KB body refused with %s; %d MiB allocated meanwhile", p.name, len(p.body)>>10, code, grew>>20)
	}
}

func TestLimits_HugeCreateIsRefusedAndTheJournalDoesNotGrow(t *testing.T) {
	e := scratch.NewDaemon(t)
	create(t, e, "kept", "true")
	db := filepath.Join(e.Config.Root, "cairn.db")
	size := func() int64 {
		fi, err := os.Stat(db)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	beforeSize, beforeRecords := size(), historyLen(t, e, "")
	createWith := func(name, image string, command, env []string) error {
		_, err := e.Containers.Create(bg, connect.NewRequest(&cairnv1.CreateRequest{Name: name, Image: image, Command: command, Env: env}))
		return err
	}
	mib := strings.Repeat("x", 1<<20)
	cases := []struct {
		what string
		err  error
		want connect.Code
	}{
		{"100 MB command", createWith("", "busybox", []string{"echo", strings.Repeat("x", 100<<20)}, nil), connect.CodeResourceExhausted},
		{"3 MiB of arguments", createWith("", "busybox", []string{"echo", mib[:100<<10], mib[:100<<10], mib, mib, mib}, nil), connect.CodeInvalidArgument},
		{"one argument over MAX_ARG_STRLEN", createWith("", "busybox", []string{"echo", mib[:128<<10+1]}, nil), connect.CodeInvalidArgument},
		{"5000 env entries", createWith("", "busybox", []string{"true"}, strings.Split(strings.Repeat("A=1 ", 5000), " ")), connect.CodeInvalidArgument},
		{"1 MiB name", createWith(mib, "busybox", []string{"true"}, nil), connect.CodeInvalidArgument},
		{"1 MiB image", createWith("", mib, []string{"true"}, nil), connect.CodeInvalidArgument},
		{"id-like name", createWith("c0ffee", "busybox", []string{"true"}, nil), connect.CodeInvalidArgument},
		{"1 MiB reference", func() error {
			_, err := e.Containers.Start(bg, connect.NewRequest(&cairnv1.StartRequest{Id: mib}))
			return err
		}(), connect.CodeInvalidArgument},
		{"1 MiB signal", func() error {
			_, err := e.Containers.Kill(bg, connect.NewRequest(&cairnv1.KillRequest{Id: "kept", Signal: mib}))
			return err
		}(), connect.CodeInvalidArgument},
	}
	for _, tc := range cases {
		if got := codeOf(tc.err); got != tc.want {
			t.Errorf("%s: got %.300v, want %v", tc.what, tc.err, tc.want)
		}
		if tc.err != nil && len(tc.err.Error()) > 400 {
			t.Errorf("%s: the error echoes %d bytes: %.300s...", tc.what, len(tc.err.Error()), tc.err)
		}
	}
	if after := historyLen(t, e, ""); after != beforeRecords {
		t.Errorf("refused creates wrote %d journal records", after-beforeRecords)
	}
	if after := size(); after != beforeSize {
		t.Errorf("cairn.db grew from %d to %d bytes", beforeSize, after)
	}
}
