package daemon_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/internal/testenv/scratch"
)

var bg = context.Background()

func create(t testing.TB, e *scratch.Env, name string, cmd ...string) *cairnv1.Container {
	t.Helper()
	res, err := e.Containers.Create(bg, connect.NewRequest(&cairnv1.CreateRequest{Name: name, Image: "busybox", Command: cmd}))
	if err != nil {
		t.Fatalf("create %v: %v", cmd, err)
	}
	return res.Msg.Container
}

func start(t testing.TB, e *scratch.Env, id string) *cairnv1.Container {
	t.Helper()
	res, err := e.Containers.Start(bg, connect.NewRequest(&cairnv1.StartRequest{Id: id}))
	if err != nil {
		t.Fatalf("start %s: %v", id, err)
	}
	return res.Msg.Container
}

func runDetached(t testing.TB, e *scratch.Env, cmd ...string) *cairnv1.Container {
	t.Helper()
	return start(t, e, create(t, e, "", cmd...).Id)
}

func get(t testing.TB, e *scratch.Env, id string) *cairnv1.Container {
	t.Helper()
	res, err := e.Containers.Get(bg, connect.NewRequest(&cairnv1.GetRequest{Id: id}))
	if err != nil {
		t.Fatalf("get %s: %v", id, err)
	}
	return res.Msg.Container
}

func stop(t testing.TB, e *scratch.Env, id string, seconds int32) *cairnv1.Container {
	t.Helper()
	res, err := e.Containers.Stop(bg, connect.NewRequest(&cairnv1.StopRequest{Id: id, TimeoutSeconds: &seconds}))
	if err != nil {
		t.Fatalf("stop %s: %v", id, err)
	}
	return res.Msg.Container
}

func wait(t testing.TB, e *scratch.Env, id string) *cairnv1.WaitResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(bg, 30*time.Second)
	defer cancel()
	res, err := e.Containers.Wait(ctx, connect.NewRequest(&cairnv1.WaitRequest{Id: id}))
	if err != nil {
		t.Fatalf("wait %s: %v", id, err)
	}
	return res.Msg
}

func remove(t testing.TB, e *scratch.Env, id string, force bool) {
	t.Helper()
	if _, err := e.Containers.Remove(bg, connect.NewRequest(&cairnv1.RemoveRequest{Id: id, Force: force})); err != nil {
		t.Fatalf("remove %s: %v", id, err)
	}
}

func logs(t testing.TB, e *scratch.Env, id string, follow bool) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(bg, 30*time.Second)
	defer cancel()
	stream, err := e.Containers.Logs(ctx, connect.NewRequest(&cairnv1.LogsRequest{Id: id, Follow: follow}))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	var b strings.Builder
	for stream.Receive() {
		b.Write(entriesData(stream.Msg().Entries))
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("logs %s: %v", id, err)
	}
	return b.String()
}

func codeOf(err error) connect.Code {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce.Code()
	}
	return connect.CodeUnknown
}

func freezerState(t testing.TB, e *scratch.Env, id string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/freezer", e.CgroupParent, id, "freezer.state"))
	if err != nil {
		t.Fatalf("freezer state of %s: %v", id, err)
	}
	return strings.TrimSpace(string(data))
}

func processAlive(pid int64) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] != 'Z'
}

func isMounted(path string) bool {
	data, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == path {
			return true
		}
	}
	return false
}

// eventually polls cond until it holds or 10 seconds pass.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func exitCode(w *cairnv1.WaitResponse) string {
	if w.ExitCode == nil {
		return "unknown(" + w.ExitReason + ")"
	}
	return fmt.Sprint(*w.ExitCode)
}

// entriesData is what log entries hold, both streams together.
func entriesData(entries []*cairnv1.LogEntry) []byte {
	var out []byte
	for _, e := range entries {
		out = append(out, e.Data...)
	}
	return out
}
