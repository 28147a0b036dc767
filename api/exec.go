package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/internal/errdefs"
	sm "github.com/cairn-run/cairn/statemachine"
)

// Stream is the stdio of a container's process through its shim (the
// executor's Stream): output comes from Recv until io.EOF, input goes to
// Write. Close detaches; the process runs on.
type Stream interface {
	Recv() (stream int, data []byte, err error)
	Write(p []byte) (int, error)
	CloseStdin() error
	Resize(rows, cols uint16) error
	Close() error
}

// Streams of Stream.Recv.
const (
	streamStdout = 1
	streamStderr = 2
)

// Process is one process of a container, for Top.
type Process struct {
	PID, PPID, UID int
	State          string
	Args           []string
}

// Stdio attaches to a container's init, resizes terminals and lists
// processes, through the container's shim.
type Stdio interface {
	// Attach: a container whose shim is gone is ErrFailedPrecondition.
	Attach(ctx context.Context, id string, stdin bool) (Stream, error)
	Resize(ctx context.Context, id, execID string, rows, cols uint16) error
	Top(id string) ([]Process, error)
}

// ExecDriver is the part of the transition driver that runs exec sessions
// and attached runs.
type ExecDriver interface {
	Exec(ctx context.Context, req sm.ExecRequest) (sm.Exec, sm.ExecIO, error)
	WaitExec(ctx context.Context, id string) (sm.Exec, error)
	// RunAttached is Run whose output waits for an attach in started.
	RunAttached(ctx context.Context, req sm.CreateRequest, started func(sm.Container)) (sm.Container, error)
}

// ExecView is the journal's view of exec sessions.
type ExecView interface {
	Exec(id string) (sm.Exec, bool)
	Execs(container string) []sm.Exec
	ResolveExec(ref string) (string, error)
}

func errNoInteractive() error {
	return toConnect(fmt.Errorf("this daemon serves no attach or exec: %w", errdefs.ErrFailedPrecondition))
}

// maxDetachKeys bounds a detach key sequence.
const maxDetachKeys = 16

// parseDetachKeys reads Docker's notation: comma separated keys, each a
// single character or ctrl-<a-z, @, [, \, ], ^, _>.
func parseDetachKeys(s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	var out []byte
	for _, k := range strings.Split(s, ",") {
		switch {
		case len(k) == 1:
			out = append(out, k[0])
		case strings.HasPrefix(k, "ctrl-") && len(k) == 6:
			c := k[5]
			switch {
			case c >= 'a' && c <= 'z':
				out = append(out, c-'a'+1)
			case c >= '@' && c <= '_':
				out = append(out, c-'@')
			default:
				return nil, fmt.Errorf("detach keys %s: unknown key %s: %w", errdefs.Quote(s), errdefs.Quote(k), errdefs.ErrInvalidArgument)
			}
		default:
			return nil, fmt.Errorf("detach keys %s: unknown key %s: %w", errdefs.Quote(s), errdefs.Quote(k), errdefs.ErrInvalidArgument)
		}
	}
	if len(out) > maxDetachKeys {
		return nil, fmt.Errorf("detach keys %s: more than %d keys: %w", errdefs.Quote(s), maxDetachKeys, errdefs.ErrInvalidArgument)
	}
	return out, nil
}

// detachScanner finds a key sequence in input that arrives in pieces: the
// bytes that may begin it are held back until they turn out not to.
type detachScanner struct {
	keys    []byte
	matched int
}

// scan returns the input to pass on and whether the sequence was typed
// (what follows it is dropped).
func (d *detachScanner) scan(in []byte) (pass []byte, detach bool) {
	if len(d.keys) == 0 {
		return in, false
	}
	for _, b := range in {
		if b == d.keys[d.matched] {
			d.matched++
			if d.matched == len(d.keys) {
				return pass, true
			}
			continue
		}
		// Not the sequence: what was held back goes on, and b may start
		// it again.
		pass = append(pass, d.keys[:d.matched]...)
		d.matched = 0
		if b == d.keys[0] {
			d.matched = 1
			if len(d.keys) == 1 {
				return pass, true
			}
			continue
		}
		pass = append(pass, b)
	}
	return pass, false
}

// clientInput is one message of an attach or exec client after its first.
type clientInput struct {
	stdin  []byte
	close  bool
	resize *cairnv1.TerminalSize
}

// pumpInput passes the client's input to st until the client's stream
// ends (its input then ends too, when it sent any) or it types the detach
// keys (detached is closed). It returns when recv fails.
func pumpInput(recv func() (clientInput, error), st Stream, withStdin bool, keys []byte, detached chan<- struct{}) {
	scan := &detachScanner{keys: keys}
	for {
		in, err := recv()
		if err != nil {
			if errors.Is(err, io.EOF) && withStdin {
				_ = st.CloseStdin()
			}
			return
		}
		if in.resize != nil {
			_ = st.Resize(uint16(in.resize.Rows), uint16(in.resize.Cols))
		}
		if len(in.stdin) > 0 && withStdin {
			pass, detach := scan.scan(in.stdin)
			if len(pass) > 0 {
				if _, err := st.Write(pass); err != nil {
					return
				}
			}
			if detach {
				close(detached)
				return
			}
		}
		if in.close && withStdin {
			_ = st.CloseStdin()
		}
	}
}

// pumpOutput sends st's output until it is over (nil) or the client
// detached (errDetached). It closes st.
func pumpOutput(st Stream, send func(stream int, data []byte) error, detached <-chan struct{}) error {
	done := make(chan struct{})
	var once sync.Once
	closeStream := func() { once.Do(func() { _ = st.Close() }) }
	defer closeStream()
	go func() {
		select {
		case <-detached:
			closeStream()
		case <-done:
		}
	}()
	defer close(done)
	for {
		stream, data, err := st.Recv()
		if err != nil {
			select {
			case <-detached:
				return errDetached
			default:
			}
			if errors.Is(err, io.EOF) {
				return nil
			}
			return toConnect(err)
		}
		if err := send(stream, data); err != nil {
			return err
		}
	}
}

var errDetached = errors.New("detached")

func attachInput(m *cairnv1.AttachRequest) clientInput {
	return clientInput{stdin: m.Stdin, close: m.CloseStdin, resize: m.Resize}
}

// Attach connects the client to a container's init: a running one (start
// id), or one it creates and starts now (start run), attached from its
// first byte. See the service's doc.
func (s *ContainerServer) Attach(ctx context.Context, stream *connect.BidiStream[cairnv1.AttachRequest, cairnv1.AttachResponse]) error {
	if s.Stdio == nil || s.Execs == nil {
		return errNoInteractive()
	}
	first, err := stream.Receive()
	if err != nil {
		return err
	}
	start := first.Start
	if start == nil {
		return toConnect(fmt.Errorf("the first message of an attach must say what to attach to: %w", errdefs.ErrInvalidArgument))
	}
	keys, err := parseDetachKeys(start.DetachKeys)
	if err != nil {
		return toConnect(err)
	}
	var c sm.Container
	var st Stream
	if start.Run != nil {
		cr := start.Run
		if err := checkCreate(cr.Name, cr.Image); err != nil {
			return toConnect(err)
		}
		var attachErr error
		creq := createRequest(cr)
		if err := withNetwork(&creq, cr, s.Networks, s.DefaultNetwork); err != nil {
			return toConnect(err)
		}
		c, err = s.Execs.RunAttached(ctx, creq, func(c sm.Container) {
			st, attachErr = s.Stdio.Attach(context.WithoutCancel(ctx), c.ID, start.Stdin && cr.OpenStdin)
		})
		if err != nil {
			if c.ID != "" && cr.AutoRemove {
				_, _ = s.Machine.Remove(context.WithoutCancel(ctx), c.ID, true)
			}
			return toConnect(err)
		}
		if attachErr != nil {
			return toConnect(attachErr)
		}
	} else {
		id, err := s.resolve(start.Id)
		if err != nil {
			return err
		}
		cur, ok := s.View.Container(id)
		if !ok {
			return toConnect(fmt.Errorf("no such container: %s: %w", id, errdefs.ErrNotFound))
		}
		if cur.State != sm.StateRunning && cur.State != sm.StatePaused {
			return toConnect(fmt.Errorf("cannot attach to container %s: it is %s, not running: %w", id, stateName(cur.State), errdefs.ErrFailedPrecondition))
		}
		if st, err = s.Stdio.Attach(ctx, id, start.Stdin && cur.OpenStdin); err != nil {
			return toConnect(err)
		}
		c = cur
	}
	withStdin := start.Stdin && c.OpenStdin
	if !c.TTY {
		keys = nil // as in Docker: without a terminal, input is passed as it is
	}
	if err := stream.Send(&cairnv1.AttachResponse{Container: s.toProto(c)}); err != nil {
		_ = st.Close()
		return err
	}
	if sz := start.Size; sz != nil && c.TTY && sz.Rows > 0 && sz.Cols > 0 {
		_ = st.Resize(uint16(sz.Rows), uint16(sz.Cols))
	}
	detached := make(chan struct{})
	go pumpInput(func() (clientInput, error) {
		m, err := stream.Receive()
		if err != nil {
			return clientInput{}, err
		}
		return attachInput(m), nil
	}, st, withStdin, keys, detached)
	err = pumpOutput(st, func(which int, data []byte) error {
		if which == streamStderr {
			return stream.Send(&cairnv1.AttachResponse{Stderr: data})
		}
		return stream.Send(&cairnv1.AttachResponse{Stdout: data})
	}, detached)
	if errors.Is(err, errDetached) {
		return stream.Send(&cairnv1.AttachResponse{Detached: true})
	}
	if err != nil {
		return err
	}
	// The output is over: the init has exited; its exit is being recorded.
	if c.AutoRemove {
		s.Machine.Settle(c.ID)
	}
	last, err := s.Machine.Wait(ctx, c.ID)
	if err != nil {
		return toConnect(err)
	}
	return stream.Send(&cairnv1.AttachResponse{Exit: waitToProto(last)})
}

func stateName(st sm.State) string {
	if st == sm.StateNone {
		return "being created"
	}
	return string(st)
}

// Exec runs an exec session; see the service's doc.
func (s *ContainerServer) Exec(ctx context.Context, stream *connect.BidiStream[cairnv1.ExecRequest, cairnv1.ExecResponse]) error {
	if s.Execs == nil {
		return errNoInteractive()
	}
	first, err := stream.Receive()
	if err != nil {
		return err
	}
	start := first.Start
	if start == nil {
		return toConnect(fmt.Errorf("the first message of an exec must say what to run: %w", errdefs.ErrInvalidArgument))
	}
	keys, err := parseDetachKeys(start.DetachKeys)
	if err != nil {
		return toConnect(err)
	}
	id, err := s.resolve(start.Container)
	if err != nil {
		return err
	}
	req := sm.ExecRequest{Container: id, Command: start.Command, Env: start.Env, User: start.User, Workdir: start.Workdir,
		TTY: start.Tty, Stdin: start.Stdin, Detach: start.Detach}
	if sz := start.Size; sz != nil {
		req.Rows, req.Cols = uint16(min(sz.Rows, 1<<16-1)), uint16(min(sz.Cols, 1<<16-1))
	}
	if !start.Tty {
		keys = nil // as in Docker: without a terminal, input is passed as it is
	}
	x, xio, err := s.Execs.Exec(ctx, req)
	if err != nil {
		return toConnect(err)
	}
	st, _ := xio.(Stream)
	if err := stream.Send(&cairnv1.ExecResponse{Session: execToProto(x)}); err != nil {
		if xio != nil {
			_ = xio.Close()
		}
		return err
	}
	if start.Detach || st == nil {
		if xio != nil {
			_ = xio.Close()
		}
		return nil
	}
	detached := make(chan struct{})
	go pumpInput(func() (clientInput, error) {
		m, err := stream.Receive()
		if err != nil {
			return clientInput{}, err
		}
		return clientInput{stdin: m.Stdin, close: m.CloseStdin, resize: m.Resize}, nil
	}, st, start.Stdin, keys, detached)
	err = pumpOutput(st, func(which int, data []byte) error {
		if which == streamStderr {
			return stream.Send(&cairnv1.ExecResponse{Stderr: data})
		}
		return stream.Send(&cairnv1.ExecResponse{Stdout: data})
	}, detached)
	if errors.Is(err, errDetached) {
		return stream.Send(&cairnv1.ExecResponse{Detached: true})
	}
	if err != nil {
		return err
	}
	done, err := s.Execs.WaitExec(ctx, x.ID)
	if err != nil {
		return toConnect(err)
	}
	return stream.Send(&cairnv1.ExecResponse{Exit: execToProto(done)})
}

var execStateToProto = map[sm.State]cairnv1.ExecState{
	sm.StateNone:    cairnv1.ExecState_EXEC_STATE_STARTING,
	sm.StateRunning: cairnv1.ExecState_EXEC_STATE_RUNNING,
	sm.StateExited:  cairnv1.ExecState_EXEC_STATE_EXITED,
}

func execToProto(x sm.Exec) *cairnv1.ExecSession {
	out := &cairnv1.ExecSession{
		Id: x.ID, ContainerId: x.Container, Command: x.Command, Env: x.Env, User: x.User, Workdir: x.Workdir,
		Tty: x.TTY, Stdin: x.Stdin, State: execStateToProto[x.State],
		CreatedAt: timestamp(x.CreatedAt), StartedAt: timestamp(x.StartedAt), FinishedAt: timestamp(x.FinishedAt),
	}
	if x.Pending != nil {
		out.PendingEvent = string(x.Pending.Event)
		if x.State == sm.StateNone {
			out.State = cairnv1.ExecState_EXEC_STATE_STARTING
		}
	}
	if x.Process != nil && x.State == sm.StateRunning {
		out.Pid = int64(x.Process.PID)
	}
	if x.Exit != nil {
		if x.Exit.Code != nil {
			code := int32(*x.Exit.Code)
			out.ExitCode = &code
		}
		out.ExitReason = x.Exit.Reason
	}
	return out
}

// Resize sets the terminal size of a container's init or exec session.
func (s *ContainerServer) Resize(ctx context.Context, req *connect.Request[cairnv1.ResizeRequest]) (*connect.Response[cairnv1.ResizeResponse], error) {
	if s.Stdio == nil {
		return nil, errNoInteractive()
	}
	sz := req.Msg.Size
	if sz == nil || sz.Rows == 0 || sz.Cols == 0 || sz.Rows > 1<<16-1 || sz.Cols > 1<<16-1 {
		return nil, toConnect(fmt.Errorf("a resize needs rows and cols from 1 to 65535: %w", errdefs.ErrInvalidArgument))
	}
	id, err := s.resolve(req.Msg.Id)
	if err != nil {
		return nil, err
	}
	if req.Msg.ExecId != "" {
		x, ok := s.ExecView.Exec(req.Msg.ExecId)
		if !ok || x.Container != id {
			return nil, toConnect(fmt.Errorf("no exec session %s in container %s: %w", errdefs.Quote(req.Msg.ExecId), id, errdefs.ErrNotFound))
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.Stdio.Resize(ctx, id, req.Msg.ExecId, uint16(sz.Rows), uint16(sz.Cols)); err != nil {
		return nil, toConnect(err)
	}
	return connect.NewResponse(&cairnv1.ResizeResponse{}), nil
}

// ExecInspect returns an exec session by id or unique prefix.
func (s *ContainerServer) ExecInspect(ctx context.Context, req *connect.Request[cairnv1.ExecInspectRequest]) (*connect.Response[cairnv1.ExecInspectResponse], error) {
	if s.ExecView == nil {
		return nil, errNoInteractive()
	}
	if err := checkRef(req.Msg.Id); err != nil {
		return nil, toConnect(err)
	}
	id, err := s.ExecView.ResolveExec(req.Msg.Id)
	if err != nil {
		return nil, toConnect(err)
	}
	x, ok := s.ExecView.Exec(id)
	if !ok {
		return nil, toConnect(fmt.Errorf("no such exec session: %s: %w", id, errdefs.ErrNotFound))
	}
	return connect.NewResponse(&cairnv1.ExecInspectResponse{Session: execToProto(x)}), nil
}

// Top lists the processes of a running container.
func (s *ContainerServer) Top(ctx context.Context, req *connect.Request[cairnv1.TopRequest]) (*connect.Response[cairnv1.TopResponse], error) {
	if s.Stdio == nil {
		return nil, errNoInteractive()
	}
	id, err := s.resolve(req.Msg.Id)
	if err != nil {
		return nil, err
	}
	c, ok := s.View.Container(id)
	if !ok || (c.State != sm.StateRunning && c.State != sm.StatePaused) {
		return nil, toConnect(fmt.Errorf("container %s is not running: %w", id, errdefs.ErrFailedPrecondition))
	}
	ps, err := s.Stdio.Top(id)
	if err != nil {
		return nil, toConnect(err)
	}
	out := &cairnv1.TopResponse{}
	for _, p := range ps {
		out.Processes = append(out.Processes, &cairnv1.TopProcess{Pid: int64(p.PID), Ppid: int64(p.PPID), Uid: int64(p.UID), State: p.State, Args: p.Args})
	}
	return connect.NewResponse(out), nil
}
