package daemon_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/internal/apiclient"
	"github.com/cairn-run/cairn/internal/daemon"
	"github.com/cairn-run/cairn/internal/testenv/scratch"
	"github.com/cairn-run/cairn/journal"
)

func TestBadInput_GetsTheRightCodeAndChangesNothing(t *testing.T) {
	e := scratch.NewDaemon(t)
	taken := create(t, e, "taken", "true")
	before := historyLen(t, e, "")
	createReq := func(name, image string, cmd ...string) func() error {
		return func() error {
			_, err := e.Containers.Create(bg, connect.NewRequest(&cairnv1.CreateRequest{Name: name, Image: image, Command: cmd}))
			return err
		}
	}
	cases := []struct {
		what string
		call func() error
		want connect.Code
	}{
		{"start unknown id", func() error { return verbs[0].call(e, "doesnotexist") }, connect.CodeNotFound},
		{"stop unknown name", func() error { return verbs[3].call(e, "nobody") }, connect.CodeNotFound},
		{"short prefix", func() error { return verbs[0].call(e, taken.Id[:3]) }, connect.CodeNotFound},
		{"empty id", func() error { return verbs[0].call(e, "") }, connect.CodeInvalidArgument},
		{"duplicate name", createReq("taken", "busybox", "true"), connect.CodeAlreadyExists},
		{"bad name", createReq("-nope", "busybox", "true"), connect.CodeInvalidArgument},
		{"name too long", createReq(strings.Repeat("a", 129), "busybox", "true"), connect.CodeInvalidArgument},
		{"name with slash", createReq("a/b", "busybox", "true"), connect.CodeInvalidArgument},
		{"empty command", createReq("", "busybox"), connect.CodeInvalidArgument},
		{"no image", createReq("", "", "true"), connect.CodeInvalidArgument},
		{"unknown image", createReq("", "nosuchimage", "true"), connect.CodeNotFound},
		{"unknown signal", func() error {
			_, err := e.Containers.Kill(bg, connect.NewRequest(&cairnv1.KillRequest{Id: taken.Id, Signal: "SIGNOPE"}))
			return err
		}, connect.CodeInvalidArgument},
		{"negative timeout", func() error {
			neg := int32(-1)
			_, err := e.Containers.Stop(bg, connect.NewRequest(&cairnv1.StopRequest{Id: taken.Id, TimeoutSeconds: &neg}))
			return err
		}, connect.CodeInvalidArgument},
		{"image in use", func() error {
			_, err := e.Images.Remove(bg, connect.NewRequest(&cairnv1.ImageServiceRemoveRequest{Name: "busybox"}))
			return err
		}, connect.CodeFailedPrecondition},
		{"unknown image rm", func() error {
			_, err := e.Images.Remove(bg, connect.NewRequest(&cairnv1.ImageServiceRemoveRequest{Name: "nosuchimage"}))
			return err
		}, connect.CodeNotFound},
	}
	for _, tc := range cases {
		if err := tc.call(); codeOf(err) != tc.want {
			t.Errorf("%s: got %v, want %v", tc.what, err, tc.want)
		}
	}
	if after := historyLen(t, e, ""); after != before {
		t.Fatalf("bad input wrote %d journal records", after-before)
	}
	if got := get(t, e, taken.Id[:4]); got.Id != taken.Id {
		t.Fatalf("a 4-character prefix does not resolve: %s", got.Id)
	}
}

func tarOf(t *testing.T, entries ...*tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range entries {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			_, _ = tw.Write(bytes.Repeat([]byte("x"), int(h.Size)))
		}
	}
	_ = tw.Close()
	return buf.Bytes()
}

func importBytes(e *scratch.Env, name string, data []byte) error {
	_, err := apiclient.ImportImage(bg, e.Images, name, bytes.NewReader(data))
	return err
}

func TestImport_EscapingTarIsRefusedAndNothingRegistered(t *testing.T) {
	e := scratch.NewDaemon(t)
	bad := map[string][]byte{
		"dotdot":        tarOf(t, &tar.Header{Name: "../evil", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644}),
		"absolute":      tarOf(t, &tar.Header{Name: "/etc/evil", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644}),
		"hardlink-out":  tarOf(t, &tar.Header{Name: "link", Typeflag: tar.TypeLink, Linkname: "../../etc/passwd"}),
		"symlink-out":   tarOf(t, &tar.Header{Name: "a/link", Typeflag: tar.TypeSymlink, Linkname: "../../../etc"}),
		"through-link":  tarOf(t, &tar.Header{Name: "dir", Typeflag: tar.TypeSymlink, Linkname: "/etc"}, &tar.Header{Name: "dir/evil", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644}),
		"device":        tarOf(t, &tar.Header{Name: "dev/sda", Typeflag: tar.TypeBlock, Devmajor: 8, Mode: 0o600}),
		"garbage":       []byte(strings.Repeat("not a tar ", 200)),
		"truncated tar": tarOf(t, &tar.Header{Name: "f", Typeflag: tar.TypeReg, Size: 4000, Mode: 0o644})[:2000],
	}
	for name, data := range bad {
		if err := importBytes(e, "bad-"+strings.ReplaceAll(name, " ", "-"), data); codeOf(err) != connect.CodeInvalidArgument {
			t.Errorf("%s: got %v, want InvalidArgument", name, err)
		}
	}
	res, err := e.Images.List(bg, connect.NewRequest(&cairnv1.ImageServiceListRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Msg.Images) != 1 || res.Msg.Images[0].Name != "docker.io/library/busybox:latest" {
		t.Fatalf("images after refused imports: %v", res.Msg.Images)
	}
	if err := importBytes(e, "busybox", tarOf(t, &tar.Header{Name: "f", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644})); codeOf(err) != connect.CodeAlreadyExists {
		t.Fatalf("import over an existing name: %v", err)
	}
}

func TestDaemon_SecondDaemonOnTheSameRootRefusesQuickly(t *testing.T) {
	e := scratch.NewDaemon(t)
	cfg := e.Config
	cfg.Socket = e.Root + "/other.sock"
	start := time.Now()
	_, err := daemon.Start(cfg)
	if !errors.Is(err, journal.ErrLocked) {
		t.Fatalf("second daemon: got %v, want ErrLocked", err)
	}
	if !strings.Contains(err.Error(), "another cairnd") || time.Since(start) > 10*time.Second {
		t.Fatalf("second daemon took %v, message %q", time.Since(start), err)
	}
}

func TestDaemon_ServesConnectGRPCAndGRPCWebWithHealth(t *testing.T) {
	e := scratch.NewDaemon(t)
	c := create(t, e, "proto", "true")
	for name, opt := range map[string]connect.ClientOption{"grpc": connect.WithGRPC(), "grpc-web": connect.WithGRPCWeb()} {
		clients := apiclient.New(e.Socket, opt)
		res, err := clients.Containers.Get(bg, connect.NewRequest(&cairnv1.GetRequest{Id: "proto"}))
		if err != nil || res.Msg.Container.Id != c.Id {
			t.Errorf("%s: %v", name, err)
		}
		_, err = clients.Containers.Get(bg, connect.NewRequest(&cairnv1.GetRequest{Id: "nobody"}))
		if codeOf(err) != connect.CodeNotFound {
			t.Errorf("%s: NotFound did not round-trip: %v", name, err)
		}
	}
	health := grpchealth.NewClient(e.HTTP, apiclient.BaseURL, connect.WithGRPC())
	for _, service := range []string{"", "cairn.v1.ContainerService"} {
		res, err := health.Check(context.Background(), &grpchealth.CheckRequest{Service: service})
		if err != nil || res.Status != grpchealth.StatusServing {
			t.Errorf("health of %q: %v %v", service, res, err)
		}
	}
	req, _ := http.NewRequest("GET", apiclient.BaseURL+"/metrics", nil)
	resp, err := e.HTTP.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/metrics on the socket: %v %v", resp, err)
	}
	resp.Body.Close()
}

func TestDaemon_StoppingTheDaemonLeavesContainersRunning(t *testing.T) {
	e := scratch.NewDaemon(t)
	running := runDetached(t, e, "sh", "-c", forever)
	paused := runDetached(t, e, "sh", "-c", forever)
	if err := verbs[1].call(e, paused.Id); err != nil {
		t.Fatal(err)
	}
	e.Stop()
	time.Sleep(200 * time.Millisecond)
	for _, c := range []*cairnv1.Container{running, paused} {
		if !processAlive(c.Pid) {
			t.Fatalf("container %s (pid %d) died with the daemon", c.Id, c.Pid)
		}
	}
	if got := freezerState(t, e, paused.Id); got != "FROZEN" {
		t.Fatalf("paused container is %s after the daemon stopped", got)
	}
	e.Start()
	if got := get(t, e, running.Id); got.Pid != running.Pid || got.State != cairnv1.ContainerState_CONTAINER_STATE_RUNNING {
		t.Fatalf("after restart: %+v", got)
	}
	if got := stop(t, e, running.Id, 10); got.ExitCode == nil || *got.ExitCode != 0 {
		t.Fatalf("stop after daemon restart: %+v", got)
	}
}
