package executor

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairn-run/cairn/internal/errdefs"
)

// fakeShim runs the shim's socket server without a container, so the
// protocol can be tested without root.
func fakeShim(t *testing.T) (*shim, string) {
	t.Helper()
	dir := t.TempDir()
	ln, err := listenUnixIn(dir, socketName)
	if err != nil {
		t.Fatal(err)
	}
	s := newShim(shimOptions{dir: dir}, slog.New(slog.NewTextHandler(io.Discard, nil)), ln, 4242, 99, 0, startTimings{})
	s.io = newStdioHub()
	go s.acceptLoop(slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(func() { _ = ln.Close() })
	return s, dir
}

func (s *shim) fakeExit(rec *exitRecord, reason string) {
	s.mu.Lock()
	s.exit, s.reason = rec, reason
	s.mu.Unlock()
	close(s.done)
}

func TestShimProtocol_StateThenWait(t *testing.T) {
	s, dir := fakeShim(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	st, err := callShim(ctx, dir, shimRequest{Op: opState})
	if err != nil || st.Status != statusRunning || st.PID != 4242 || st.StartTime != 99 || st.ExitCode != nil {
		t.Fatalf("state = %+v, %v", st, err)
	}

	got := make(chan shimResponse, 1)
	go func() {
		r, err := callShim(ctx, dir, shimRequest{Op: opWait})
		if err != nil {
			t.Error(err)
		}
		got <- r
	}()
	select {
	case r := <-got:
		t.Fatalf("wait answered before the exit: %+v", r)
	case <-time.After(100 * time.Millisecond):
	}
	at := time.Now().UTC()
	s.fakeExit(&exitRecord{ExitCode: 3, FinishedAt: at}, "")
	r := <-got
	x := exitFromResponse(r)
	if r.Status != statusExited || x.Code == nil || *x.Code != 3 || !x.FinishedAt.Equal(at) {
		t.Fatalf("wait = %+v", r)
	}

	s.shutdown()
	if _, err := callShim(ctx, dir, shimRequest{Op: opState}); !errors.Is(err, errShimUnreachable) {
		t.Fatalf("after shutdown: %v, want errShimUnreachable", err)
	}
	if fileExists(dir + "/" + socketName) {
		t.Error("socket file left after shutdown")
	}
}

func TestShimProtocol_UnknownStatus(t *testing.T) {
	s, dir := fakeShim(t)
	s.fakeExit(nil, "shim could not read the exit status: boom")
	r, err := callShim(context.Background(), dir, shimRequest{Op: opWait})
	if err != nil {
		t.Fatal(err)
	}
	if x := exitFromResponse(r); x.Code != nil || x.Reason == "" {
		t.Fatalf("exit = %+v, want unknown code with reason", x)
	}
}

func TestShimProtocol_BadRequests(t *testing.T) {
	_, dir := fakeShim(t)
	if _, err := callShim(context.Background(), dir, shimRequest{Op: "explode"}); err == nil {
		t.Fatal("unknown op accepted")
	}
	c, err := dialUnixIn(context.Background(), dir, socketName)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = c.Write([]byte("not json\n{\"op\":\"state\"}\n"))
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	n, _ := io.ReadAtLeast(c, buf, 1)
	if n == 0 {
		t.Fatal("no answer to a bad request")
	}
}

func TestCallShim_ContextCancelled(t *testing.T) {
	_, dir := fakeShim(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := callShim(ctx, dir, shimRequest{Op: opWait}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait with expiring context: %v", err)
	}
}

func TestCheckVersion(t *testing.T) {
	for _, tc := range []struct {
		in, want int
		tooNew   bool
		bad      bool
	}{
		{0, 1, false, false}, // absent: version 1
		{1, 1, false, false},
		{2, 2, false, false},
		{3, 3, false, false},
		{4, 0, true, false},
		{99, 0, true, false},
		{-1, 0, false, true},
	} {
		got, err := checkVersion("msg", tc.in)
		switch {
		case tc.tooNew:
			if !errors.Is(err, errProtocolTooNew) || !strings.Contains(err.Error(), "version "+strconv.Itoa(tc.in)) {
				t.Errorf("checkVersion(%d) = %d, %v; want a too-new error naming the version", tc.in, got, err)
			}
		case tc.bad:
			if err == nil || errors.Is(err, errProtocolTooNew) {
				t.Errorf("checkVersion(%d) = %d, %v; want an invalid-version error", tc.in, got, err)
			}
		case err != nil || got != tc.want:
			t.Errorf("checkVersion(%d) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}

// The version 1 messages and files below are exactly what commit 85b056e
// writes.
func TestDecode_Version1MessagesAndFiles(t *testing.T) {
	var ready readyMessage
	if err := decodeMessage("ready", []byte(`{"pid":5,"start_time":6}`), &ready); err != nil || ready.PID != 5 || ready.StartTime != 6 {
		t.Fatalf("v1 ready = %+v, %v", ready, err)
	}
	var failed readyMessage
	if err := decodeMessage("ready", []byte(`{"error":"run container: boom"}`), &failed); err != nil {
		t.Fatal(err)
	}
	if err := failed.startError(); err == nil || err.Error() != "run container: boom" ||
		errors.Is(err, errdefs.ErrCommandNotFound) || errors.Is(err, errdefs.ErrCommandNotExecutable) {
		t.Fatalf("v1 failed ready: %v", err)
	}
	var resp shimResponse
	v1Wait := `{"pid":7,"start_time":8,"status":"exited","exit_code":3,"finished_at":"2026-11-25T12:00:00Z"}`
	if err := decodeMessage("answer", []byte(v1Wait), &resp); err != nil || resp.ExecID != "" {
		t.Fatalf("v1 answer = %+v, %v", resp, err)
	}
	if x := exitFromResponse(resp); x.Code == nil || *x.Code != 3 || x.FinishedAt.IsZero() {
		t.Fatalf("v1 answer exit = %+v", x)
	}
	var req shimRequest
	if err := decodeMessage("request", []byte(`{"op":"wait"}`), &req); err != nil || req.Op != opWait || req.ExecID != "" {
		t.Fatalf("v1 request = %+v, %v", req, err)
	}
}

func TestReadyMessage_ErrorKindsMapToSentinels(t *testing.T) {
	for kind, want := range map[string]error{
		readyErrorCommandNotFound:      errdefs.ErrCommandNotFound,
		readyErrorCommandNotExecutable: errdefs.ErrCommandNotExecutable,
	} {
		err := readyMessage{Version: 2, Error: "exec: nope", ErrorKind: kind}.startError()
		if !errors.Is(err, want) || !strings.Contains(err.Error(), "exec: nope") {
			t.Errorf("kind %q: %v, want %v with the shim's message", kind, err, want)
		}
	}
	err := readyMessage{Version: 2, Error: "cgroup: boom", ErrorKind: "some_future_kind"}.startError()
	if errors.Is(err, errdefs.ErrInvalidArgument) || errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("unknown kind mapped to a sentinel: %v", err)
	}
}

func TestDecode_NewerVersionIsRefusedBeforeItsFields(t *testing.T) {
	// exit_code changed type in this imaginary version 4: the refusal must
	// be about the version, not the field.
	var rec exitRecord
	err := decodeMessage(exitFileName, []byte(`{"version":4,"exit_code":"137"}`), &rec)
	if !errors.Is(err, errProtocolTooNew) || !strings.Contains(err.Error(), exitFileName) {
		t.Fatalf("v4 exit record: %v, want a too-new error naming the file", err)
	}
	if err := decodeMessage("ready", []byte(`{"version":"2"}`), &readyMessage{}); err == nil {
		t.Fatal("a string version was accepted")
	}
}

// v1Shim answers every request line with answer and hands the request lines
// it got to the test.
func v1Shim(t *testing.T, answer string) (dir string, requests <-chan string) {
	t.Helper()
	dir = t.TempDir()
	ln, err := listenUnixIn(dir, socketName)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	got := make(chan string, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					got <- line
					_, _ = c.Write([]byte(answer + "\n"))
				}
			}()
		}
	}()
	return dir, got
}

// A wait is of version 2, which introduced its exec_id: a version 2 shim
// (the previous release) serves it, and a version 1 shim ignores both.
func TestCallShim_WaitIsOfVersion2AndReadsVersion1Answers(t *testing.T) {
	dir, requests := v1Shim(t, `{"pid":7,"start_time":8,"status":"exited","exit_code":42,"finished_at":"2026-11-25T12:00:00Z"}`)
	resp, err := callShim(context.Background(), dir, shimRequest{Op: opWait})
	if err != nil {
		t.Fatal(err)
	}
	if x := exitFromResponse(resp); x.Code == nil || *x.Code != 42 || resp.PID != 7 || resp.StartTime != 8 {
		t.Fatalf("answer of a version 1 shim read as %+v", resp)
	}
	var sent map[string]any
	if err := json.Unmarshal([]byte(<-requests), &sent); err != nil {
		t.Fatal(err)
	}
	if sent["version"] != float64(2) || sent["op"] != opWait {
		t.Errorf("request = %v, want version 2 and op wait", sent)
	}
	if id, ok := sent["exec_id"]; !ok || id != "" {
		t.Errorf("request = %v, want an empty exec_id (the init)", sent)
	}
}

func TestCallShim_RefusesANewerAnswer(t *testing.T) {
	dir, _ := v1Shim(t, `{"version":4,"status":"exited","exit_code":{"code":1}}`)
	if _, err := callShim(context.Background(), dir, shimRequest{Op: opWait}); !errors.Is(err, errProtocolTooNew) {
		t.Fatalf("answer of version 4: %v, want errProtocolTooNew", err)
	}
}

func TestShimProtocol_ServesVersion1RequestsAndRefusesNewerOnes(t *testing.T) {
	_, dir := fakeShim(t)
	c, err := dialUnixIn(context.Background(), dir, socketName)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	roundTrip := func(line string) map[string]any {
		t.Helper()
		if _, err := c.Write([]byte(line + "\n")); err != nil {
			t.Fatal(err)
		}
		out, err := r.ReadBytes('\n')
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(out, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	// What an old daemon sends.
	if m := roundTrip(`{"op":"state"}`); m["status"] != statusRunning || m["pid"] != float64(4242) ||
		m["version"] != float64(protocolVersion) || m["exec_id"] != "" || m["error"] != nil {
		t.Errorf("version 1 request answered %v", m)
	}
	if m := roundTrip(`{"version":4,"op":"state","exec_id":""}`); m["error_kind"] != socketErrorUnsupportedVersion ||
		!strings.Contains(fmt.Sprint(m["error"]), "version 4") || m["status"] != nil {
		t.Errorf("version 4 request answered %v", m)
	}
	if m := roundTrip(`not json`); m["error_kind"] != socketErrorBadRequest {
		t.Errorf("garbage answered %v", m)
	}
}

func TestShimProtocol_UnknownExecIDIsAClearNotFound(t *testing.T) {
	_, dir := fakeShim(t)
	for _, op := range []string{opState, opWait} {
		_, err := callShim(context.Background(), dir, shimRequest{Op: op, ExecID: "exec-1"})
		if !errors.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), `"exec-1"`) {
			t.Errorf("%s of an unknown exec session: %v, want ErrNotFound naming it", op, err)
		}
	}
	huge := strings.Repeat("x", 10_000)
	_, err := callShim(context.Background(), dir, shimRequest{Op: opState, ExecID: huge})
	if err == nil || len(err.Error()) > 1000 {
		t.Errorf("a 10 kB exec id came back in full: %d bytes", len(err.Error()))
	}
}
