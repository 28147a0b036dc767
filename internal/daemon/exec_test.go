package daemon_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/internal/apiclient"
	"github.com/cairn-run/cairn/internal/testenv"
	"github.com/cairn-run/cairn/internal/testenv/scratch"
)

// execResult is what an attached exec stream gave.
type execResult struct {
	session        *cairnv1.ExecSession
	stdout, stderr string
	exit           *cairnv1.ExecSession
	err            error
}

// execute runs an exec session to its end, with input if given.
func execute(t testing.TB, e *scratch.Env, start *cairnv1.ExecStart, input []byte) execResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(bg, 30*time.Second)
	defer cancel()
	stream := e.Containers.Exec(ctx)
	defer func() { _ = stream.CloseResponse() }()
	var r execResult
	if err := stream.Send(&cairnv1.ExecRequest{Start: start}); err != nil && !errors.Is(err, io.EOF) {
		r.err = err
		return r
	}
	if input != nil {
		_ = stream.Send(&cairnv1.ExecRequest{Stdin: input})
		_ = stream.Send(&cairnv1.ExecRequest{CloseStdin: true})
	}
	var out, errOut bytes.Buffer
	for {
		msg, err := stream.Receive()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				r.err = err
			}
			break
		}
		if msg.Session != nil {
			r.session = msg.Session
		}
		out.Write(msg.Stdout)
		errOut.Write(msg.Stderr)
		if msg.Exit != nil {
			r.exit = msg.Exit
		}
	}
	r.stdout, r.stderr = out.String(), errOut.String()
	return r
}

func execCode(r execResult) string {
	if r.exit == nil || r.exit.ExitCode == nil {
		return "none"
	}
	return exitCode(&cairnv1.WaitResponse{ExitCode: r.exit.ExitCode})
}

func execInspect(t testing.TB, e *scratch.Env, id string) *cairnv1.ExecSession {
	t.Helper()
	res, err := e.Containers.ExecInspect(bg, connect.NewRequest(&cairnv1.ExecInspectRequest{Id: id}))
	if err != nil {
		t.Fatalf("exec inspect %s: %v", id, err)
	}
	return res.Msg.Session
}

func TestExec_CodesUsersWorkdirsStreamsAndPreconditions(t *testing.T) {
	testenv.RequireRoot(t)
	e := scratch.NewDaemon(t)
	c := runDetached(t, e, "sleep", "600")
	run := func(user, dir string, cmd ...string) execResult {
		return execute(t, e, &cairnv1.ExecStart{Container: c.Id, Command: cmd, User: user, Workdir: dir}, nil)
	}
	if r := run("", "", "true"); r.err != nil || execCode(r) != "0" {
		t.Fatalf("exec true: %v %s", r.err, execCode(r))
	}
	if r := run("", "", "sh", "-c", "echo out; echo err >&2; exit 3"); r.err != nil || execCode(r) != "3" || r.stdout != "out\n" || r.stderr != "err\n" {
		t.Fatalf("exec exit 3: %v code %s out %q err %q", r.err, execCode(r), r.stdout, r.stderr)
	}
	if r := run("", "", "/etc/passwd"); apiclient.ReasonOf(r.err) != cairnv1.ErrorReason_ERROR_REASON_COMMAND_NOT_EXECUTABLE {
		t.Fatalf("exec of a file that is not executable: %v", r.err)
	}
	if r := run("", "", "no-such-command"); apiclient.ReasonOf(r.err) != cairnv1.ErrorReason_ERROR_REASON_COMMAND_NOT_FOUND {
		t.Fatalf("exec of a missing command: %v", r.err)
	}
	if r := run("nobody", "", "id"); r.err != nil || !strings.HasPrefix(r.stdout, "uid=65534(nobody)") {
		t.Fatalf("exec -u nobody id: %v %q", r.err, r.stdout)
	}
	if r := run("", "/tmp", "pwd"); r.err != nil || r.stdout != "/tmp\n" {
		t.Fatalf("exec -w /tmp pwd: %v %q", r.err, r.stdout)
	}
	// By default an exec runs as the container's user, as in Docker.
	res, err := e.Containers.Create(bg, connect.NewRequest(&cairnv1.CreateRequest{Image: "busybox", User: "nobody", Command: []string{"sleep", "600"}}))
	if err != nil {
		t.Fatal(err)
	}
	start(t, e, res.Msg.Container.Id)
	if r := execute(t, e, &cairnv1.ExecStart{Container: res.Msg.Container.Id, Command: []string{"id", "-un"}}, nil); r.err != nil || r.stdout != "nobody\n" {
		t.Fatalf("exec in a container of user nobody: %v %q", r.err, r.stdout)
	}
	if r := execute(t, e, &cairnv1.ExecStart{Container: res.Msg.Container.Id, Command: []string{"id", "-un"}, User: "root"}, nil); r.err != nil || r.stdout != "root\n" {
		t.Fatalf("exec -u root in a container of user nobody: %v %q", r.err, r.stdout)
	}
	remove(t, e, res.Msg.Container.Id, true)
	if r := run("no-such-user", "", "id"); codeOf(r.err) != connect.CodeInvalidArgument {
		t.Fatalf("exec as an unknown user: %v", r.err)
	}
	payload := bytes.Repeat([]byte{0, 1, 2, 0x10, 0x11, 255, '\n', 'x'}, 50_000)
	if r := execute(t, e, &cairnv1.ExecStart{Container: c.Id, Command: []string{"cat"}, Stdin: true}, payload); r.err != nil || r.stdout != string(payload) {
		t.Fatalf("exec -i cat: %v, %d bytes back of %d", r.err, len(r.stdout), len(payload))
	}
	// 50 at once on one container, each with its own code.
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := range 50 {
		wg.Go(func() {
			n := 10 + i%10
			r := execute(t, e, &cairnv1.ExecStart{Container: c.Id, Command: []string{"sh", "-c", "echo $0; exit $(($0 % 7))", strconv.Itoa(n)}}, nil)
			if want := strconv.Itoa(n % 7); r.err != nil || execCode(r) != want || r.stdout != strconv.Itoa(n)+"\n" {
				errs <- fmt.Errorf("exec %d: %v, output %q, code %s, want %s", n, r.err, r.stdout, execCode(r), want)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	pause(t, e, c.Id)
	if r := run("", "", "true"); codeOf(r.err) != connect.CodeFailedPrecondition {
		t.Fatalf("exec into a paused container: %v", r.err)
	}
	if _, err := e.Containers.Unpause(bg, connect.NewRequest(&cairnv1.UnpauseRequest{Id: c.Id})); err != nil {
		t.Fatal(err)
	}
	top, err := e.Containers.Top(bg, connect.NewRequest(&cairnv1.TopRequest{Id: c.Id}))
	if err != nil || len(top.Msg.Processes) == 0 || strings.Join(top.Msg.Processes[0].Args, " ") != "sleep 600" {
		t.Fatalf("top: %v %v", top, err)
	}
	stop(t, e, c.Id, 1)
	if r := run("", "", "true"); codeOf(r.err) != connect.CodeFailedPrecondition {
		t.Fatalf("exec into a stopped container: %v", r.err)
	}
	// Every session is exited in the journal, and its exit record released.
	sessions := get(t, e, c.Id).ExecIds
	if len(sessions) != 55 { // the starts that failed left no session
		t.Fatalf("%d exec sessions in the view", len(sessions))
	}
	for _, id := range sessions {
		if s := execInspect(t, e, id); s.State != cairnv1.ExecState_EXEC_STATE_EXITED || s.PendingEvent != "" {
			t.Errorf("session %s: %v pending %q", id[:12], s.State, s.PendingEvent)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(e.Config.Root, "exec", "containers", c.Id, "execs", "*")); len(left) != 0 {
		t.Errorf("exit records left: %v", left)
	}
}

func TestExec_SurvivesADaemonKillAndItsExitIsRecorded(t *testing.T) {
	testenv.RequireRoot(t)
	e := scratch.NewBinaryDaemon(t)
	c := runDetached(t, e, "sleep", "600")
	detached := execute(t, e, &cairnv1.ExecStart{Container: c.Id, Command: []string{"sh", "-c", "sleep 2; exit 5"}, Detach: true}, nil)
	if detached.err != nil || detached.session == nil {
		t.Fatalf("exec -d: %v", detached.err)
	}
	attached := make(chan execResult, 1)
	go func() {
		attached <- execute(t, e, &cairnv1.ExecStart{Container: c.Id, Command: []string{"sh", "-c", "echo early; sleep 3; echo late; exit 4"}}, nil)
	}()
	eventually(t, "two sessions running", func() bool { return len(get(t, e, c.Id).ExecIds) == 2 })
	time.Sleep(300 * time.Millisecond)
	e.Kill()
	r := <-attached
	if r.err == nil || r.session == nil || r.stdout != "early\n" {
		t.Fatalf("attached exec across the kill: %v %v %q", r.err, r.session, r.stdout)
	}
	time.Sleep(3500 * time.Millisecond) // both end while the daemon is down
	e.Start()
	for id, want := range map[string]string{detached.session.Id: "5", r.session.Id: "4"} {
		eventually(t, "exit of "+id[:12]+" recorded", func() bool {
			s := execInspect(t, e, id)
			return s.State == cairnv1.ExecState_EXEC_STATE_EXITED && s.ExitCode != nil
		})
		if s := execInspect(t, e, id); exitCode(&cairnv1.WaitResponse{ExitCode: s.ExitCode}) != want {
			t.Errorf("session %s after the restart: code %v, want %s", id[:12], s.ExitCode, want)
		}
	}
	// Attach works on the reattached container: an exec's output to the
	// init's stdout reaches an attached client.
	actx, acancel := context.WithTimeout(bg, 20*time.Second)
	a, _ := attach(t, actx, e, &cairnv1.AttachStart{Id: c.Id})
	if r := execute(t, e, &cairnv1.ExecStart{Container: c.Id, Command: []string{"sh", "-c", "echo to-init > /proc/1/fd/1"}}, nil); r.err != nil || execCode(r) != "0" {
		t.Fatalf("exec writing to the init's stdout: %v %s", r.err, execCode(r))
	}
	readUntil(t, a, "to-init")
	_ = a.CloseRequest()
	acancel()
	// A session still running across a kill is watched again.
	running := execute(t, e, &cairnv1.ExecStart{Container: c.Id, Command: []string{"sh", "-c", "sleep 2; exit 6"}, Detach: true}, nil)
	e.Kill()
	e.Start()
	eventually(t, "exit of the session that ran across the restart", func() bool {
		s := execInspect(t, e, running.session.Id)
		return s.State == cairnv1.ExecState_EXEC_STATE_EXITED && s.ExitCode != nil && *s.ExitCode == 6
	})
	if left, _ := filepath.Glob(filepath.Join(e.Config.Root, "exec", "containers", c.Id, "execs", "*")); len(left) != 0 {
		t.Errorf("exit records left: %v", left)
	}
	remove(t, e, c.Id, true)
	if _, err := e.Containers.ExecInspect(bg, connect.NewRequest(&cairnv1.ExecInspectRequest{Id: running.session.Id})); codeOf(err) != connect.CodeNotFound {
		t.Errorf("a session outlived its container: %v", err)
	}
}

// attach opens an Attach stream and returns its first message.
func attach(t testing.TB, ctx context.Context, e *scratch.Env, start *cairnv1.AttachStart) (*connect.BidiStreamForClient[cairnv1.AttachRequest, cairnv1.AttachResponse], *cairnv1.Container) {
	t.Helper()
	stream := e.Containers.Attach(ctx)
	if err := stream.Send(&cairnv1.AttachRequest{Start: start}); err != nil {
		t.Fatal(err)
	}
	msg, err := stream.Receive()
	if err != nil || msg.Container == nil {
		t.Fatalf("attach: %v %v", msg, err)
	}
	return stream, msg.Container
}

// readUntil reads stdout until it contains want, or fails.
func readUntil(t testing.TB, stream *connect.BidiStreamForClient[cairnv1.AttachRequest, cairnv1.AttachResponse], want string) string {
	t.Helper()
	var b strings.Builder
	for !strings.Contains(b.String(), want) {
		msg, err := stream.Receive()
		if err != nil {
			t.Fatalf("waiting for %q, got %q: %v", want, b.String(), err)
		}
		b.Write(msg.Stdout)
	}
	return b.String()
}

func TestAttach_RunWithStdinTwoAttachersDetachKeysAndWaitConditions(t *testing.T) {
	testenv.RequireRoot(t)
	e := scratch.NewDaemon(t)
	ctx, cancel := context.WithTimeout(bg, 60*time.Second)
	defer cancel()
	// run -i: stdin streamed, EOF delivered, the exit at the end.
	payload := bytes.Repeat([]byte("binary\x00\x10\x11\xff\r\n"), 100_000)
	stream, c := attach(t, ctx, e, &cairnv1.AttachStart{Run: &cairnv1.CreateRequest{Image: "busybox", Command: []string{"cat"}, OpenStdin: true, StdinOnce: true}, Stdin: true})
	go func() {
		for off := 0; off < len(payload); off += 64 << 10 {
			_ = stream.Send(&cairnv1.AttachRequest{Stdin: payload[off:min(off+64<<10, len(payload))]})
		}
		_ = stream.Send(&cairnv1.AttachRequest{CloseStdin: true})
	}()
	var got bytes.Buffer
	var exit *cairnv1.WaitResponse
	for {
		msg, err := stream.Receive()
		if err != nil {
			break
		}
		got.Write(msg.Stdout)
		if msg.Exit != nil {
			exit = msg.Exit
		}
	}
	if !bytes.Equal(got.Bytes(), payload) || exitCode(exit) != "0" {
		t.Fatalf("run -i cat: %d bytes back of %d, exit %v", got.Len(), len(payload), exit)
	}
	if got := get(t, e, c.Id); got.State != cairnv1.ContainerState_CONTAINER_STATE_STOPPED {
		t.Fatalf("after run -i: %v", got.State)
	}

	// Two attachers of a running container with a terminal both see the
	// output of one's input.
	res, err := e.Containers.Create(bg, connect.NewRequest(&cairnv1.CreateRequest{Image: "busybox", OpenStdin: true, Tty: true,
		Command: []string{"sh", "-c", "while read l; do echo got $l; done; echo bye"}}))
	if err != nil {
		t.Fatal(err)
	}
	id := res.Msg.Container.Id
	start(t, e, id)
	a, _ := attach(t, ctx, e, &cairnv1.AttachStart{Id: id, Stdin: true, DetachKeys: "ctrl-p,ctrl-q"})
	b, _ := attach(t, ctx, e, &cairnv1.AttachStart{Id: id})
	if err := a.Send(&cairnv1.AttachRequest{Stdin: []byte("one\n")}); err != nil {
		t.Fatal(err)
	}
	readUntil(t, a, "got one")
	readUntil(t, b, "got one")
	// The detach keys detach a; the container runs on and b still sees it.
	if err := a.Send(&cairnv1.AttachRequest{Stdin: []byte("two\n\x10\x11three\n")}); err != nil {
		t.Fatal(err)
	}
	for {
		msg, err := a.Receive()
		if err != nil {
			t.Fatalf("no detach: %v", err)
		}
		if msg.Detached {
			break
		}
	}
	readUntil(t, b, "got two")
	if got := get(t, e, id); got.State != cairnv1.ContainerState_CONTAINER_STATE_RUNNING {
		t.Fatalf("after a detach: %v", got.State)
	}
	nextExit := make(chan *cairnv1.WaitResponse, 1)
	go func() {
		w, err := e.Containers.Wait(ctx, connect.NewRequest(&cairnv1.WaitRequest{Id: id, Condition: cairnv1.WaitCondition_WAIT_CONDITION_NEXT_EXIT}))
		if err != nil {
			t.Error(err)
			nextExit <- nil
			return
		}
		nextExit <- w.Msg
	}()
	removed := make(chan *cairnv1.WaitResponse, 1)
	go func() {
		w, err := e.Containers.Wait(ctx, connect.NewRequest(&cairnv1.WaitRequest{Id: id, Condition: cairnv1.WaitCondition_WAIT_CONDITION_REMOVED}))
		if err != nil {
			t.Error(err)
			removed <- nil
			return
		}
		removed <- w.Msg
	}()
	time.Sleep(200 * time.Millisecond)
	stop(t, e, id, 1)
	if w := <-nextExit; w == nil || w.State != cairnv1.ContainerState_CONTAINER_STATE_STOPPED {
		t.Fatalf("wait --condition next-exit: %v", w)
	}
	select {
	case w := <-removed:
		t.Fatalf("wait --condition removed returned before the remove: %v", w)
	case <-time.After(200 * time.Millisecond):
	}
	remove(t, e, id, false)
	if w := <-removed; w == nil || w.State != cairnv1.ContainerState_CONTAINER_STATE_REMOVED {
		t.Fatalf("wait --condition removed: %v", w)
	}
}

func TestLogs_StreamsApartTailSinceAndRotation(t *testing.T) {
	testenv.RequireRoot(t)
	e := scratch.NewDaemon(t)
	res, err := e.Containers.Create(bg, connect.NewRequest(&cairnv1.CreateRequest{Image: "busybox", LogMaxSize: 4096, LogMaxFiles: 3,
		Command: []string{"sh", "-c", `i=0; while [ $i -lt 400 ]; do echo "out $i"; i=$((i+1)); done; sleep 0.3; echo "the error" >&2; sleep 1; echo last`}}))
	if err != nil {
		t.Fatal(err)
	}
	id := res.Msg.Container.Id
	start(t, e, id)
	wait(t, e, id)
	files, _ := filepath.Glob(filepath.Join(e.Config.Root, "exec", "containers", id, "container.log*"))
	if len(files) != 3 {
		t.Fatalf("log files %v, want 3", files)
	}
	for _, f := range files {
		if st, err := os.Stat(f); err != nil || st.Size() > 4096 {
			t.Errorf("log file %s: %v bytes %v", f, st.Size(), err)
		}
	}
	read := func(req *cairnv1.LogsRequest) (out, errOut string, times []time.Time) {
		req.Id = id
		stream, err := e.Containers.Logs(bg, connect.NewRequest(req))
		if err != nil {
			t.Fatal(err)
		}
		var o, eo strings.Builder
		for stream.Receive() {
			for _, en := range stream.Msg().Entries {
				if en.Stream == cairnv1.LogStream_LOG_STREAM_STDERR {
					eo.Write(en.Data)
				} else {
					o.Write(en.Data)
				}
				times = append(times, en.Time.AsTime())
			}
		}
		if err := stream.Err(); err != nil {
			t.Fatal(err)
		}
		return o.String(), eo.String(), times
	}
	out, errOut, times := read(&cairnv1.LogsRequest{})
	if errOut != "the error\n" || !strings.HasSuffix(out, "out 399\nlast\n") || strings.Contains(out, "out 0\n") {
		t.Fatalf("logs: stderr %q, stdout ...%q", errOut, out[max(0, len(out)-40):])
	}
	tail := int64(3)
	out, errOut, _ = read(&cairnv1.LogsRequest{Tail: &tail})
	if !(out == "out 399\nlast\n" && errOut == "the error\n") && !(out == "out 398\nout 399\nlast\n" && errOut == "") {
		t.Fatalf("--tail 3: %q %q", out, errOut)
	}
	// --since the last entry's time: only what came after the sleep.
	since := times[len(times)-1]
	if out, errOut, _ := read(&cairnv1.LogsRequest{Since: timestamppb.New(since)}); out != "last\n" || errOut != "" {
		t.Fatalf("--since: %q %q", out, errOut)
	}
	if out, _, _ := read(&cairnv1.LogsRequest{Until: timestamppb.New(since)}); strings.Contains(out, "last") || !strings.HasSuffix(out, "out 399\n") {
		t.Fatalf("--until: ...%q", out[max(0, len(out)-40):])
	}
}
