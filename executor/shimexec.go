package executor

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/opencontainers/runc/libcontainer"

	"github.com/cairn-run/cairn/internal/errdefs"
	"github.com/cairn-run/cairn/internal/procstat"
)

// Exec sessions run in the shim: it is the parent of every process of its
// container, so it alone can learn an exec's exit code, and it holds the
// exec's stdio, so the session outlives the daemon and its client. The
// shim runs an exec with libcontainer's Run of a non-init process, which
// joins the container's namespaces and cgroup. When the exec ends the shim
// writes execs/<exec id>.json (durably) before it tells anyone, and keeps
// the session until the daemon, its exit journaled, releases it.

// execsDirName holds the exit records of exec sessions.
const execsDirName = "execs"

// maxExecID bounds an exec id; it names a file.
const maxExecID = 128

type execSession struct {
	id string
	// started is closed once the start is over; the fields below it are
	// set by then, and a session whose start failed is gone from the map.
	started   chan struct{}
	hub       *stdioHub
	pid       int
	startTime uint64
	tty       bool

	done   chan struct{} // closed once exited and the exit record is durable
	exit   *exitRecord   // nil after done when the status could not be read
	reason string
}

func (x *execSession) state() shimResponse {
	resp := shimResponse{ExecID: x.id, PID: x.pid, StartTime: x.startTime, Status: statusRunning, TTY: x.tty}
	select {
	case <-x.done:
	default:
		return resp
	}
	resp.Status, resp.Reason = statusExited, x.reason
	if x.exit != nil {
		code, at := x.exit.ExitCode, x.exit.FinishedAt
		resp.ExitCode, resp.Signal, resp.FinishedAt = &code, x.exit.Signal, &at
	}
	return resp
}

// session returns the exec session by id.
func (s *shim) session(id string) (*execSession, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	x, ok := s.execs[id]
	return x, ok
}

func unknownExec(id string) shimResponse {
	return shimResponse{ExecID: id, ErrorKind: socketErrorUnknownExec,
		Error: fmt.Sprintf("exec session %s: this shim runs no exec session by that id", errdefs.Quote(id))}
}

// answerExec serves state, wait, resize and release of an exec session.
func (s *shim) answerExec(req shimRequest) shimResponse {
	if req.Op == opRelease {
		return s.release(req.ExecID)
	}
	x, ok := s.session(req.ExecID)
	if ok {
		<-x.started
		_, ok = s.session(req.ExecID)
	}
	if !ok {
		return unknownExec(req.ExecID)
	}
	switch req.Op {
	case opWait:
		<-x.done
	case opResize:
		if err := x.hub.resize(req.Rows, req.Cols); err != nil {
			return shimResponse{ExecID: x.id, Error: err.Error(), ErrorKind: socketErrorNoTerminal}
		}
		return shimResponse{ExecID: x.id}
	}
	return x.state()
}

// release forgets an exited session and its exit record.
func (s *shim) release(id string) shimResponse {
	s.busy.RLock()
	defer s.busy.RUnlock()
	if x, ok := s.session(id); ok {
		select {
		case <-x.done:
		default:
			return shimResponse{ExecID: id, Error: fmt.Sprintf("exec session %s is still running", errdefs.Quote(id)), ErrorKind: socketErrorStillRunning}
		}
	}
	if err := removeExecExit(s.o.dir, id); err != nil {
		return shimResponse{ExecID: id, Error: err.Error()}
	}
	s.mu.Lock()
	delete(s.execs, id)
	s.mu.Unlock()
	return shimResponse{ExecID: id}
}

// serveExec starts an exec session and, when it is attached, carries its
// stdio on conn until the output is over or the client hangs up.
func (s *shim) serveExec(conn *net.UnixConn, r *bufio.Reader, req shimRequest) {
	x, resp := s.startExec(req)
	if !s.respond(conn, resp) || x == nil || req.Exec == nil || !req.Exec.Attach {
		return
	}
	sub, ended := x.hub.fan.add(conn)
	defer x.hub.fan.remove(sub)
	x.hub.start()
	if !ended {
		x.hub.serveInput(r, req.Exec.Stdin)
	}
}

// startExec registers and starts the session of req; x is nil when it
// could not (resp says why).
func (s *shim) startExec(req shimRequest) (x *execSession, resp shimResponse) {
	s.busy.RLock()
	defer s.busy.RUnlock()
	spec := req.Exec
	if err := checkExecID(req.ExecID); err != nil || spec == nil || len(spec.Args) == 0 || spec.Args[0] == "" {
		msg := "an exec needs an id and a command"
		if err != nil {
			msg = err.Error()
		}
		return nil, shimResponse{ExecID: req.ExecID, Error: msg, ErrorKind: socketErrorBadRequest}
	}
	x = &execSession{id: req.ExecID, tty: spec.Terminal, started: make(chan struct{}), done: make(chan struct{})}
	defer close(x.started)
	s.mu.Lock()
	switch _, exists := s.execs[x.id]; {
	case s.initExited:
		s.mu.Unlock()
		return nil, shimResponse{ExecID: x.id, Error: "the container is not running", ErrorKind: socketErrorNotRunning}
	case exists:
		s.mu.Unlock()
		return nil, shimResponse{ExecID: x.id, Error: fmt.Sprintf("exec session %s exists already", errdefs.Quote(x.id)), ErrorKind: socketErrorExists}
	}
	s.execs[x.id] = x
	s.mu.Unlock()
	p, err := s.runExec(x, spec)
	if err != nil {
		s.mu.Lock()
		delete(s.execs, x.id)
		s.mu.Unlock()
		s.log.Warn("exec", "exec", x.id, "err", err)
		kind, msg := classifyStartError(spec.Args[0], err)
		if errors.Is(err, libcontainer.ErrNotRunning) {
			kind, msg = socketErrorNotRunning, "the container is not running"
		}
		return nil, shimResponse{ExecID: x.id, Error: msg, ErrorKind: kind}
	}
	go s.awaitExec(x, p)
	return x, shimResponse{ExecID: x.id, PID: x.pid, StartTime: x.startTime, Status: statusRunning, TTY: x.tty}
}

func checkExecID(id string) error {
	if id == "" || len(id) > maxExecID {
		return fmt.Errorf("exec id %s: empty or longer than %d bytes", errdefs.Quote(id), maxExecID)
	}
	if err := validateID(id); err != nil {
		return fmt.Errorf("exec id %s: not a name", errdefs.Quote(id))
	}
	return nil
}

// runExec starts the process of x in the container.
func (s *shim) runExec(x *execSession, spec *execSpec) (*libcontainer.Process, error) {
	c, err := libcontainer.Load(s.o.runtime, s.o.id)
	if err != nil {
		return nil, fmt.Errorf("load container: %w", err)
	}
	var stdio *initStdio
	if spec.Attach {
		stdio, err = newProcessStdio(spec.Terminal, spec.Stdin, true)
	} else {
		stdio, err = detachedStdio()
	}
	if err != nil {
		return nil, err
	}
	cwd := spec.Cwd
	if cwd == "" {
		cwd = "/"
	}
	p := &libcontainer.Process{
		Args: spec.Args, Env: processEnv(spec.Env), Cwd: cwd,
		UID: spec.UID, GID: spec.GID, AdditionalGroups: spec.Groups,
		ConsoleWidth: spec.Cols, ConsoleHeight: spec.Rows,
		Init: false,
	}
	// A nil *os.File must stay a nil interface: libcontainer gives such a
	// stream /dev/null.
	if stdio.childIn != nil {
		p.Stdin = stdio.childIn
	}
	if stdio.childOut != nil {
		p.Stdout = stdio.childOut
	}
	if stdio.childErr != nil {
		p.Stderr = stdio.childErr
	}
	if stdio.consoleChild != nil {
		p.ConsoleSocket = stdio.consoleChild
	}
	if err := c.Run(p); err != nil {
		stdio.closeAll()
		return nil, err
	}
	if err := stdio.afterStart(spec.Stdin); err != nil {
		_ = p.Signal(syscall.SIGKILL)
		_, _ = p.Wait()
		stdio.closeAll()
		return nil, err
	}
	x.hub = stdio.hub
	if !spec.Attach {
		x.hub.start() // nothing to copy: its output is over at once
	}
	pid, err := p.Pid()
	if err == nil {
		var st procstat.Stat
		if st, err = procstat.Read(pid); err == nil {
			x.pid, x.startTime = pid, st.StartTime
		}
	}
	if err != nil {
		// The process ran and is gone already (and reaped by nobody yet:
		// its entry would be there): its wait below still reports it.
		x.pid = pid
	}
	return p, nil
}

// detachedStdio is the stdio of an exec nobody attaches to: /dev/null.
func detachedStdio() (*initStdio, error) {
	st := &initStdio{hub: newStdioHub()}
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	st.childIn, st.childOut, st.childErr = devnull, devnull, devnull
	st.closeAfterStart = []*os.File{devnull}
	return st, nil
}

// awaitExec reaps the session's process, drains its output, and records
// its exit durably before it tells anyone.
func (s *shim) awaitExec(x *execSession, p *libcontainer.Process) {
	ps, err := p.Wait()
	finished := time.Now()
	select {
	case <-x.hub.outputDone():
	case <-time.After(execOutputGrace):
		// A child of the exec still holds its output open; the session
		// is over without it.
	}
	if ps != nil {
		if ws, ok := ps.Sys().(syscall.WaitStatus); ok {
			if code, sig, ok := exitFromWaitStatus(ws); ok {
				x.exit = &exitRecord{Version: protocolVersion, ExecID: x.id, ExitCode: code, Signal: sig, FinishedAt: finished,
					ShimPID: os.Getpid(), ShimStartTime: s.shimStartTime}
			}
		}
	}
	if x.exit == nil {
		x.reason = fmt.Sprintf("shim could not read the exit status of the exec session: %v", err)
		s.log.Error("wait for exec", "exec", x.id, "err", err)
	} else if err := writeExecExit(s.o.dir, *x.exit); err != nil {
		s.log.Error("write exec exit record", "exec", x.id, "err", err)
	}
	x.hub.close()
	close(x.done)
	runtime.Gosched()
}

// execOutputGrace is how long, after an exec's process ended, its output
// may take to end (a background child can hold it open for ever).
const execOutputGrace = 2 * time.Second

// finishExecs waits, at most limit, for every exec session to end: the
// init's exit has just killed them all.
func (s *shim) finishExecs(limit time.Duration) {
	s.mu.Lock()
	var pending []*execSession
	for _, x := range s.execs {
		pending = append(pending, x)
	}
	s.mu.Unlock()
	deadline := time.After(limit)
	for _, x := range pending {
		select {
		case <-x.done:
		case <-deadline:
			s.log.Warn("exec sessions still running after the container's exit", "exec", x.id)
			return
		}
	}
}

// writeExecExit writes and syncs execs/<id>.json.
func writeExecExit(dir string, r exitRecord) error {
	execs := filepath.Join(dir, execsDirName)
	if err := os.MkdirAll(execs, 0o700); err != nil {
		return err
	}
	if err := writeExitRecord(execs, r.ExecID+".json", r); err != nil {
		return err
	}
	return syncFiles(filepath.Join(execs, r.ExecID+".json"), execs)
}

// readExecExit returns the exit record of exec session id in dir; ok is
// false when there is none.
func readExecExit(dir, id string) (rec exitRecord, ok bool, err error) {
	if checkExecID(id) != nil {
		return exitRecord{}, false, nil
	}
	data, err := os.ReadFile(filepath.Join(dir, execsDirName, id+".json"))
	if errors.Is(err, os.ErrNotExist) {
		return exitRecord{}, false, nil
	}
	if err != nil {
		return exitRecord{}, false, err
	}
	if err := decodeMessage("exec exit record", data, &rec); err != nil {
		return exitRecord{}, false, err
	}
	return rec, rec.ExecID == id, nil
}

// removeExecExit removes the exit record of exec session id in dir.
func removeExecExit(dir, id string) error {
	if checkExecID(id) != nil {
		return nil
	}
	err := os.Remove(filepath.Join(dir, execsDirName, id+".json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// ExecExitRecord reads the exit record of exec session execID of container
// id alone (no shim is asked); nil when there is none.
func (e *Executor) ExecExitRecord(id, execID string) (*Exit, error) {
	if err := validateID(id); err != nil {
		return nil, err
	}
	ex, ok, err := e.execExit(e.containerDir(id), execID)
	if err != nil || !ok {
		return nil, err
	}
	return &ex, nil
}
