package api

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/internal/errdefs"
	sm "github.com/cairn-run/cairn/statemachine"
)

// exitLater makes a running container print and exit, as a shim would.
func (r *rig) exitLater(t *testing.T, id, output string, code int) {
	go func() {
		time.Sleep(20 * time.Millisecond)
		r.logs.write(t, id, output)
		r.machine.set(id, func(c *sm.Container) {
			c.State = sm.StateStopped
			c.Exit = &sm.Exit{Code: &code}
		})
	}()
}

func TestLogs_ReadsTheLogAndFollowsUntilTheExit(t *testing.T) {
	r := newRig(t)
	c := r.machine.add(sm.Container{Name: "c", State: sm.StateRunning})
	r.logs.write(t, c.ID, "before\n")
	read := func(follow bool) (data string, attached bool, exit *cairnv1.WaitResponse) {
		ctx, cancel := context.WithTimeout(bg, 10*time.Second)
		defer cancel()
		stream, err := r.Containers.Logs(ctx, connect.NewRequest(&cairnv1.LogsRequest{Id: "c", Follow: follow}))
		if err != nil {
			t.Fatal(err)
		}
		defer stream.Close()
		var b strings.Builder
		for stream.Receive() {
			m := stream.Msg()
			writeEntries(&b, m.Entries)
			attached = attached || m.Attached
			if m.Exit != nil {
				exit = m.Exit
			}
		}
		if err := stream.Err(); err != nil {
			t.Fatal(err)
		}
		return b.String(), attached, exit
	}
	if data, attached, exit := read(false); data != "before\n" || attached || exit != nil {
		t.Fatalf("logs: %q %v %v", data, attached, exit)
	}
	r.exitLater(t, c.ID, "after\n", 4)
	data, attached, exit := read(true)
	if data != "before\nafter\n" || !attached || exit == nil || exit.ExitCode == nil || *exit.ExitCode != 4 {
		t.Fatalf("logs -f: %q attached %v exit %v", data, attached, exit)
	}
}

func TestLogs_FollowOfAnAutoRemovedContainerSettlesFirst(t *testing.T) {
	r := newRig(t)
	code := 0
	c := r.machine.add(sm.Container{Name: "c", State: sm.StateStopped, AutoRemove: true, Exit: &sm.Exit{Code: &code}})
	stream, err := r.Containers.Logs(bg, connect.NewRequest(&cairnv1.LogsRequest{Id: c.ID, Follow: true}))
	if err != nil {
		t.Fatal(err)
	}
	for stream.Receive() {
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	settled := false
	for _, call := range r.machine.called() {
		settled = settled || call == "settle "+c.ID
	}
	if !settled {
		t.Errorf("follow did not let the auto-remove finish: %v", r.machine.called())
	}
}

func TestLogs_ErrorsAndCancellation(t *testing.T) {
	r := newRig(t)
	r.machine.add(sm.Container{Name: "c", State: sm.StateRunning})
	stream, err := r.Containers.Logs(bg, connect.NewRequest(&cairnv1.LogsRequest{Id: "nobody"}))
	if err == nil {
		for stream.Receive() {
		}
		err = stream.Err()
	}
	wantCode(t, "logs of nobody", err, connect.CodeNotFound)

	ctx, cancel := context.WithTimeout(bg, 100*time.Millisecond)
	defer cancel()
	stream, err = r.Containers.Logs(ctx, connect.NewRequest(&cairnv1.LogsRequest{Id: "c", Follow: true}))
	if err == nil {
		for stream.Receive() {
		}
		err = stream.Err()
	}
	if code := connect.CodeOf(err); code != connect.CodeDeadlineExceeded && code != connect.CodeCanceled {
		t.Errorf("follow past the deadline: %v", err)
	}
}

func runAll(t *testing.T, r *rig, req *cairnv1.CreateRequest) (created *cairnv1.Container, data string, exit *cairnv1.WaitResponse, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(bg, 10*time.Second)
	defer cancel()
	stream, err := r.Containers.Run(ctx, connect.NewRequest(&cairnv1.RunRequest{Create: req}))
	if err != nil {
		return nil, "", nil, err
	}
	defer stream.Close()
	var b strings.Builder
	for stream.Receive() {
		m := stream.Msg()
		if m.Container != nil {
			created = m.Container
		}
		writeEntries(&b, m.Entries)
		if m.Exit != nil {
			exit = m.Exit
		}
	}
	return created, b.String(), exit, stream.Err()
}

func TestRun_CreatesStartsStreamsAndEndsWithTheExit(t *testing.T) {
	r := newRig(t)
	r.machine.onStart = func(id string) { r.exitLater(t, id, "hello\n", 7) }
	created, data, exit, err := runAll(t, r, &cairnv1.CreateRequest{Image: "busybox", Command: []string{"echo", "hello"}})
	if err != nil || created == nil || data != "hello\n" || exit == nil || *exit.ExitCode != 7 {
		t.Fatalf("run: %v %q %v %v", created, data, exit, err)
	}
}

func TestRun_RefusalsAndAFailedStart(t *testing.T) {
	r := newRig(t)
	_, _, _, err := runAll(t, r, nil)
	wantCode(t, "run without a create", err, connect.CodeInvalidArgument)
	_, _, _, err = runAll(t, r, &cairnv1.CreateRequest{Image: strings.Repeat("i", MaxImageRefBytes+1), Command: []string{"true"}})
	wantCode(t, "run of an overlong image", err, connect.CodeInvalidArgument)

	r.machine.fail["start"] = errdefs.ErrCommandNotExecutable
	_, _, _, err = runAll(t, r, &cairnv1.CreateRequest{Image: "busybox", Command: []string{"/etc"}, AutoRemove: true})
	wantCode(t, "run of a command that cannot run", err, connect.CodeFailedPrecondition)
	if cs := r.machine.Containers(); len(cs) != 0 {
		t.Errorf("an auto-remove container whose start failed was kept: %v %v", cs, r.machine.called())
	}
}

func TestLogs_AContainerThatHasNotRunHasNoLogYet(t *testing.T) {
	r := newRig(t)
	c := r.machine.add(sm.Container{Name: "c", State: sm.StateCreated})
	stream, err := r.Containers.Logs(bg, connect.NewRequest(&cairnv1.LogsRequest{Id: "c"}))
	if err != nil {
		t.Fatal(err)
	}
	for stream.Receive() {
		if len(stream.Msg().Entries) > 0 {
			t.Errorf("output from a container that never ran: %v", stream.Msg().Entries)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("logs of a created container: %v", err)
	}
	if _, err := os.Stat(r.logs.path(c.ID)); !os.IsNotExist(err) {
		t.Fatalf("reading the log created it: %v", err)
	}
	// A follower waits for the log to appear and reads it from the start.
	go func() {
		time.Sleep(30 * time.Millisecond)
		r.machine.set(c.ID, func(c *sm.Container) { c.State = sm.StateRunning })
		r.exitLater(t, c.ID, "first line\n", 0)
	}()
	ctx, cancel := context.WithTimeout(bg, 10*time.Second)
	defer cancel()
	stream, err = r.Containers.Logs(ctx, connect.NewRequest(&cairnv1.LogsRequest{Id: "c", Follow: true}))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for stream.Receive() {
		writeEntries(&b, stream.Msg().Entries)
	}
	if err := stream.Err(); err != nil || b.String() != "first line\n" {
		t.Fatalf("follow from before the start: %q %v", b.String(), err)
	}
}

func TestRun_OpensTheLogBeforeAnExitCanRemoveIt(t *testing.T) {
	r := newRig(t)
	// The process writes and exits while the start is still being
	// journaled; the auto-remove deletes the log as soon as the machine
	// lets it, which is once Run's started callback has opened it.
	r.machine.onStart = func(id string) { r.logs.write(t, id, "quick\n") }
	r.machine.afterStarted = func(id string) {
		code := 0
		r.machine.set(id, func(c *sm.Container) { c.State = sm.StateStopped; c.Exit = &sm.Exit{Code: &code} })
		_ = os.Remove(r.logs.path(id))
		_, _ = r.machine.Remove(bg, id, true)
	}
	_, data, exit, err := runAll(t, r, &cairnv1.CreateRequest{Image: "busybox", Command: []string{"echo", "quick"}, AutoRemove: true})
	if err != nil || data != "quick\n" || exit == nil {
		t.Fatalf("run of a quick auto-remove container: %q %v %v", data, exit, err)
	}
}

// writeEntries writes what the entries hold, both streams together.
func writeEntries(b *strings.Builder, entries []*cairnv1.LogEntry) {
	for _, e := range entries {
		b.Write(e.Data)
	}
}
