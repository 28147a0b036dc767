package executor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/cairn-run/cairn/internal/errdefs"
	"github.com/cairn-run/cairn/internal/procstat"
)

// Stream is the daemon's end of a process's stdio, through its shim: an
// attach to a container's init or an exec session's. Recv and the writers
// may be used from different goroutines; each of them from one at a time.
type Stream struct {
	// TTY: the process has a terminal; its output is one stream (stdout).
	TTY  bool
	conn *net.UnixConn
	r    *bufio.Reader
	buf  []byte
	wmu  sync.Mutex
}

// Output streams of Recv.
const (
	StreamStdout = 1
	StreamStderr = 2
)

// Recv returns the next output: its stream (StreamStdout, StreamStderr)
// and bytes, valid until the next call. It returns io.EOF once the output
// is over, and an error wrapping errdefs.ErrUnavailable when the shim went
// away before that.
func (s *Stream) Recv() (stream int, data []byte, err error) {
	for {
		typ, payload, err := readFrame(s.r, s.buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return 0, nil, err
			}
			return 0, nil, fmt.Errorf("the shim went away before the output ended: %w: %w", err, errdefs.ErrUnavailable)
		}
		if cap(payload) > cap(s.buf) {
			s.buf = payload[:0]
		}
		switch typ {
		case frameStdout:
			return StreamStdout, payload, nil
		case frameStderr:
			return StreamStderr, payload, nil
		case frameEnd:
			return 0, nil, io.EOF
		}
	}
}

// Write sends input to the process.
func (s *Stream) Write(p []byte) (int, error) {
	for off := 0; off < len(p); {
		n := min(len(p)-off, copyBuffer*4)
		if err := s.send(frameStdin, p[off:off+n]); err != nil {
			return off, err
		}
		off += n
	}
	return len(p), nil
}

// CloseStdin says the input is over.
func (s *Stream) CloseStdin() error { return s.send(frameCloseStdin, nil) }

// Resize sets the size of the process's terminal.
func (s *Stream) Resize(rows, cols uint16) error {
	return s.send(frameResize, resizePayload(rows, cols))
}

func (s *Stream) send(typ byte, p []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return writeFrame(s.conn, typ, p)
}

// Close detaches: the process runs on.
func (s *Stream) Close() error { return s.conn.Close() }

func newStream(conn *net.UnixConn, r *bufio.Reader, tty bool) *Stream {
	return &Stream{TTY: tty, conn: conn, r: r, buf: make([]byte, copyBuffer)}
}

// AttachOptions say what an attach takes.
type AttachOptions struct {
	// Stdin: input written to the stream reaches the init (if its stdin is
	// open).
	Stdin bool
}

// Attach connects to the stdio of container id's init, through its shim:
// from then on the stream gets all its output (the first attach of a
// container started with AwaitAttach gets it from the start), and its input
// if asked. A container whose shim is gone is errdefs.ErrFailedPrecondition.
func (e *Executor) Attach(ctx context.Context, id string, opts AttachOptions) (*Stream, error) {
	if err := validateID(id); err != nil {
		return nil, err
	}
	conn, r, resp, err := e.openCall(ctx, id, shimRequest{Op: opAttach, Stdin: opts.Stdin})
	if err != nil {
		return nil, fmt.Errorf("attach to %s: %w", id, err)
	}
	return newStream(conn, r, resp.TTY), nil
}

// openCall is openShimCall to container id's shim, asked again on a new
// connection when the shim hung up before it answered (it re-executed
// itself: the request was not served). A shim that is gone is
// errdefs.ErrFailedPrecondition: the container is not running.
func (e *Executor) openCall(ctx context.Context, id string, req shimRequest) (*net.UnixConn, *bufio.Reader, shimResponse, error) {
	dir := e.containerDir(id)
	for attempt := 1; ; attempt++ {
		conn, r, resp, err := openShimCall(ctx, dir, req)
		if errors.Is(err, errShimHungUp) && attempt < hangUpAttempts {
			continue
		}
		if errors.Is(err, errShimUnreachable) && ctx.Err() == nil {
			err = fmt.Errorf("%w: %w", err, errdefs.ErrFailedPrecondition)
		}
		return conn, r, resp, err
	}
}

// Resize sets the terminal size of container id's init (execID "") or of
// one of its exec sessions.
func (e *Executor) Resize(ctx context.Context, id, execID string, rows, cols uint16) error {
	if err := validateID(id); err != nil {
		return err
	}
	conn, _, _, err := e.openCall(ctx, id, shimRequest{Op: opResize, ExecID: execID, Rows: rows, Cols: cols})
	if err != nil {
		return fmt.Errorf("resize %s: %w", id, err)
	}
	conn.Close()
	return nil
}

// ResolveUser resolves a user spec ("name", "uid", "name:group", ...) in
// container id's /etc/passwd and /etc/group, through its shim. An unknown
// user is errdefs.ErrInvalidArgument.
func (e *Executor) ResolveUser(ctx context.Context, id, user string) (User, error) {
	if err := validateID(id); err != nil {
		return User{}, err
	}
	conn, _, resp, err := e.openCall(ctx, id, shimRequest{Op: opUser, User: user})
	if err != nil {
		return User{}, fmt.Errorf("exec in %s: %w", id, err)
	}
	conn.Close()
	if resp.UID == nil || resp.GID == nil {
		return User{}, fmt.Errorf("exec in %s: the shim resolved no user", id)
	}
	return User{UID: *resp.UID, GID: *resp.GID, Groups: resp.Groups, Home: resp.Home}, nil
}

// ExecSpec is an exec session to run in a container.
type ExecSpec struct {
	// ID names the session (the daemon's exec id).
	ID   string
	Args []string
	Env  []string
	// Cwd defaults to /.
	Cwd      string
	User     User
	Terminal bool
	// Stdin: input written to the stream reaches the process.
	Stdin bool
	// Attach: the process's stdio is the returned stream; else /dev/null.
	Attach     bool
	Rows, Cols uint16
}

// ExecProcess identifies an exec session's process.
type ExecProcess struct {
	PID       int
	StartTime uint64
	StartedAt time.Time
}

// Exec starts an exec session in container id through its shim, and
// returns once its process runs, with its stdio when spec.Attach. A command
// that does not exist or cannot be executed wraps
// errdefs.ErrCommandNotFound or ErrCommandNotExecutable; a container that
// is not running errdefs.ErrFailedPrecondition.
func (e *Executor) Exec(ctx context.Context, id string, spec ExecSpec) (ExecProcess, *Stream, error) {
	if err := validateID(id); err != nil {
		return ExecProcess{}, nil, err
	}
	if err := checkExecID(spec.ID); err != nil {
		return ExecProcess{}, nil, fmt.Errorf("%w: %w", err, errdefs.ErrInvalidArgument)
	}
	if len(spec.Args) == 0 || spec.Args[0] == "" {
		return ExecProcess{}, nil, fmt.Errorf("exec in %s: no command: %w", id, errdefs.ErrInvalidArgument)
	}
	env := spec.Env
	if spec.User.Home != "" && !hasEnv(env, "HOME") {
		env = append(append([]string{}, env...), "HOME="+spec.User.Home)
	}
	req := shimRequest{Op: opExec, ExecID: spec.ID, Exec: &execSpec{
		Args: spec.Args, Env: env, Cwd: spec.Cwd, UID: spec.User.UID, GID: spec.User.GID, Groups: spec.User.Groups,
		Terminal: spec.Terminal, Stdin: spec.Stdin, Attach: spec.Attach, Rows: spec.Rows, Cols: spec.Cols,
	}}
	started := time.Now()
	conn, r, resp, err := openShimCall(ctx, e.containerDir(id), req)
	if errors.Is(err, errShimUnreachable) && ctx.Err() == nil {
		// Not asked again: a hang-up after the request may have started it.
		err = fmt.Errorf("%w: %w", err, errdefs.ErrFailedPrecondition)
	}
	if err != nil {
		return ExecProcess{}, nil, fmt.Errorf("exec in %s: %w", id, err)
	}
	p := ExecProcess{PID: resp.PID, StartTime: resp.StartTime, StartedAt: started}
	if !spec.Attach {
		conn.Close()
		return p, nil, nil
	}
	return p, newStream(conn, r, resp.TTY), nil
}

func hasEnv(env []string, key string) bool {
	for _, kv := range env {
		if len(kv) > len(key) && kv[:len(key)] == key && kv[len(key)] == '=' {
			return true
		}
	}
	return false
}

// ExecState is what is known of an exec session, for recovery.
type ExecState struct {
	// Known: the container's shim has the session (Exit set once it
	// exited); otherwise ShimGone says whether there is no shim to ask.
	Known    bool
	ShimGone bool
	Process  ExecProcess
	// Exit is how it ended: from the shim or from its exit record.
	Exit *Exit
}

// InspectExec reports what the machine shows of exec session execID of
// container id, whose init p is (its shim is asked): the shim's word if it
// answers, else the session's exit record. An error means the shim could
// not be asked and nothing can be told.
func (e *Executor) InspectExec(ctx context.Context, id string, p Process, execID string) (ExecState, error) {
	if err := validateID(id); err != nil {
		return ExecState{}, err
	}
	dir := e.containerDir(id)
	if procstat.Alive(p.ShimPID, p.ShimStartTime) {
		resp, err := callShim(ctx, dir, shimRequest{Op: opState, ExecID: execID})
		switch {
		case err == nil:
			st := ExecState{Known: true, Process: ExecProcess{PID: resp.PID, StartTime: resp.StartTime}}
			if resp.Status == statusExited {
				x := exitFromResponse(resp)
				st.Exit = &x
			}
			return st, nil
		case errors.Is(err, errdefs.ErrNotFound):
			// The shim has no such session; its exit record may say more.
		case errors.Is(err, errShimUnreachable):
			// It stopped serving: it is on its way out, its records
			// written.
			return e.execRecordState(dir, execID, true)
		default:
			return ExecState{}, fmt.Errorf("exec session %s of %s: %w", execID, id, err)
		}
	}
	return e.execRecordState(dir, execID, !procstat.Alive(p.ShimPID, p.ShimStartTime))
}

func (e *Executor) execRecordState(dir, execID string, shimGone bool) (ExecState, error) {
	st := ExecState{ShimGone: shimGone}
	rec, ok, err := readExecExit(dir, execID)
	if err != nil {
		return ExecState{}, fmt.Errorf("exec session %s: %w", execID, err)
	}
	if ok {
		x := rec.exit()
		st.Exit = &x
	}
	return st, nil
}

// WaitExec blocks until exec session execID of container id (whose init p
// is) has exited, and returns how: the shim's answer, else its exit record,
// else, once the process x is gone, an unknown code with the reason. Like
// Wait it needs nothing but its arguments and the files under Dir.
func (e *Executor) WaitExec(ctx context.Context, id string, p Process, execID string, x ExecProcess) (Exit, error) {
	if err := validateID(id); err != nil {
		return Exit{}, err
	}
	dir := e.containerDir(id)
	resp, err := callShim(ctx, dir, shimRequest{Op: opWait, ExecID: execID})
	if err == nil {
		if resp.Status != statusExited {
			return Exit{}, fmt.Errorf("wait for exec %s in %s: shim answered status %q", execID, id, resp.Status)
		}
		return exitFromResponse(resp), nil
	}
	if !errors.Is(err, errShimUnreachable) && !errors.Is(err, errdefs.ErrNotFound) {
		return Exit{}, fmt.Errorf("wait for exec %s in %s: %w", execID, id, err)
	}
	if ex, ok, err := e.execExit(dir, execID); err != nil || ok {
		return ex, err
	}
	if err := waitProcessGone(ctx, x.PID, x.StartTime); err != nil {
		return Exit{}, fmt.Errorf("wait for exec %s in %s: %w", execID, id, err)
	}
	// A shim that is still alive records the exit on its way out.
	if procstat.Alive(p.ShimPID, p.ShimStartTime) {
		if err := waitProcessGone(ctx, p.ShimPID, p.ShimStartTime); err != nil {
			return Exit{}, fmt.Errorf("wait for exec %s in %s: %w", execID, id, err)
		}
		if ex, ok, err := e.execExit(dir, execID); err != nil || ok {
			return ex, err
		}
	}
	return Exit{Reason: reasonExecLost, FinishedAt: time.Now()}, nil
}

// reasonExecLost is the Exit.Reason of an exec session whose end nothing
// recorded.
const reasonExecLost = "the container's shim was gone without an exit record of the exec session"

func (e *Executor) execExit(dir, execID string) (Exit, bool, error) {
	rec, ok, err := readExecExit(dir, execID)
	if err != nil || !ok {
		return Exit{}, false, err
	}
	return rec.exit(), true, nil
}

// ReleaseExec tells container id's shim that exec session execID's exit is
// recorded: the shim forgets it and removes its exit record. Without a
// shim the record is removed here. Releasing twice is fine.
func (e *Executor) ReleaseExec(ctx context.Context, id, execID string) error {
	if err := validateID(id); err != nil {
		return err
	}
	dir := e.containerDir(id)
	_, err := callShim(ctx, dir, shimRequest{Op: opRelease, ExecID: execID})
	if errors.Is(err, errShimUnreachable) {
		err = removeExecExit(dir, execID)
	}
	if err != nil {
		return fmt.Errorf("release exec %s of %s: %w", execID, id, err)
	}
	return nil
}
