package executor

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"
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
	s := &shim{
		o:   shimOptions{dir: dir},
		ln:  ln,
		pid: 4242, startTime: 99,
		done:  make(chan struct{}),
		conns: map[*net.UnixConn]struct{}{},
	}
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

	st, err := callShim(ctx, dir, opState)
	if err != nil || st.Status != statusRunning || st.PID != 4242 || st.StartTime != 99 || st.ExitCode != nil {
		t.Fatalf("state = %+v, %v", st, err)
	}

	got := make(chan shimResponse, 1)
	go func() {
		r, err := callShim(ctx, dir, opWait)
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
	if _, err := callShim(ctx, dir, opState); !errors.Is(err, errShimUnreachable) {
		t.Fatalf("after shutdown: %v, want errShimUnreachable", err)
	}
	if fileExists(dir + "/" + socketName) {
		t.Error("socket file left after shutdown")
	}
}

func TestShimProtocol_UnknownStatus(t *testing.T) {
	s, dir := fakeShim(t)
	s.fakeExit(nil, "shim could not read the exit status: boom")
	r, err := callShim(context.Background(), dir, opWait)
	if err != nil {
		t.Fatal(err)
	}
	if x := exitFromResponse(r); x.Code != nil || x.Reason == "" {
		t.Fatalf("exit = %+v, want unknown code with reason", x)
	}
}

func TestShimProtocol_BadRequests(t *testing.T) {
	_, dir := fakeShim(t)
	if _, err := callShim(context.Background(), dir, "explode"); err == nil {
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
	if _, err := callShim(ctx, dir, opWait); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait with expiring context: %v", err)
	}
}
