package executor

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"

	"github.com/cairn-run/cairn/internal/errdefs"
	"github.com/cairn-run/cairn/internal/procstat"
)

// RunShim is the whole `<bin> shim` subcommand; args are the arguments after
// "shim". The daemon starts shims ahead of need (see standby.go) with a
// control socket on fd 3: the shim prepares itself, waits there for the
// container it is to run, creates and runs it, reports readiness on the same
// socket, serves its own socket, waits for the container's init, records
// its exit and destroys the container, then exits the process. A container
// that keeps running has its shim re-execute itself into a smaller process
// for the long wait (see idle.go). A shim whose control socket closes before
// it got a container just exits. RunShim returns only for bad arguments.
//
// The shim runs in its own session (the daemon starts it with setsid), is a
// child subreaper so the container's init stays its child whatever
// libcontainer does while creating it, and asks the OOM killer to spare it:
// losing the shim loses the exit code.
func RunShim(args []string) error {
	if _, err := parseShimArgs(args); err != nil {
		return err
	}
	if state, ok := os.LookupEnv(idleStateEnv); ok {
		os.Exit(runIdle(state))
	}
	ctl := controlSocket()
	if ctl == nil {
		return errors.New("shim: fd 3 is not a control socket; shims are started by cairnd")
	}
	os.Exit(runShim(ctl))
	return nil
}

// shimOptions say where the shim's container lives and how its stdio and
// log are kept.
type shimOptions struct {
	id           string
	dir          string // <Dir>/containers/<id>
	runtime      string // libcontainer state root
	cgroupParent string
	rootfs       string // where exec users are resolved
	stdinOnce    bool
	logMaxSize   int64
	logMaxFiles  int
}

func (a assignment) options() (shimOptions, error) {
	o := shimOptions{id: a.Spec.ID, dir: a.Dir, runtime: a.Runtime, cgroupParent: a.CgroupParent,
		rootfs: a.Spec.Rootfs, stdinOnce: a.Spec.StdinOnce, logMaxSize: a.Spec.LogMaxSize, logMaxFiles: a.Spec.LogMaxFiles}
	if err := validateID(o.id); err != nil {
		return o, err
	}
	if !filepath.IsAbs(o.dir) || !filepath.IsAbs(o.runtime) {
		return o, errors.New("shim: container and runtime directories must be absolute paths")
	}
	return o, nil
}

// shimArgs are the arguments of a shim started for executor dir; dir only
// identifies the shim's daemon in ps and to leftover checks.
func shimArgs(execDir string) []string {
	return []string{"shim", "--exec-dir", execDir}
}

func parseShimArgs(args []string) (string, error) {
	var execDir string
	fs := flag.NewFlagSet("shim", flag.ContinueOnError)
	fs.StringVar(&execDir, "exec-dir", "", "the executor directory of the daemon that started this shim")
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	if !filepath.IsAbs(execDir) {
		return "", errors.New("shim: --exec-dir must be an absolute path")
	}
	return execDir, nil
}

// controlSocket returns fd 3 if it is the daemon's control socket. A shim
// started by hand has no such socket and must not use whatever fd 3 is.
func controlSocket() *os.File {
	var st unix.Stat_t
	if unix.Fstat(3, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return nil
	}
	unix.CloseOnExec(3)
	return os.NewFile(3, "control")
}

func runShim(ctl *os.File) int {
	// The shim shares its name with the CLI and the daemon, so a stray
	// `pkill cairn` or a service manager stopping the daemon's group would
	// otherwise kill it and lose the exit code. The signals are caught into
	// a channel nobody reads rather than ignored: ignored dispositions would
	// be inherited by the container's processes, caught ones are reset by
	// exec.
	signal.Notify(make(chan os.Signal, 1), unix.SIGTERM, unix.SIGINT, unix.SIGHUP)
	oomErr, prepErr := prepareShimProcess()

	var raw json.RawMessage
	if err := json.NewDecoder(ctl).Decode(&raw); err != nil {
		return 0 // the daemon closed a shim it did not need
	}
	assigned := time.Now()
	report := func(m readyMessage) { reportReady(ctl, m) }
	var a assignment
	var o shimOptions
	err := decodeMessage("assignment", raw, &a)
	if err == nil {
		o, err = a.options()
	}
	if err == nil {
		err = prepErr
	}
	if err == nil {
		err = os.Chdir(o.dir) // libcontainer records its working directory as the bundle
	}
	if err != nil {
		report(readyMessage{Error: err.Error()})
		return 1
	}
	redirectStderr(filepath.Join(o.dir, shimLogName))
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("container", o.id)
	if oomErr != nil {
		log.Warn("the OOM killer may pick this shim (and lose the exit code): could not lower oom_score_adj", "err", oomErr)
	}

	s, err := startContainer(o, a.Spec, assigned, log)
	if err != nil {
		log.Error("start container", "err", err)
		command := ""
		if len(a.Spec.Args) > 0 {
			command = a.Spec.Args[0]
		}
		kind, msg := classifyStartError(command, err)
		report(readyMessage{Error: msg, ErrorKind: kind})
		return 1
	}
	s.ready(ctl)
	return s.serve(log, false)
}

// reportReady writes the ready message and closes the control socket.
func reportReady(ctl *os.File, m readyMessage) {
	m.Version = protocolVersion
	_ = json.NewEncoder(ctl).Encode(m)
	_ = ctl.Close()
}

// ready tells the daemon that the container's init was let go: it is
// about to exec the user's command (see execwait.go).
func (s *shim) ready(ctl *os.File) {
	reportReady(ctl, readyMessage{PID: s.pid, StartTime: s.startTime, Timings: &s.timings})
}

// prepareShimProcess does what does not depend on the container, while the
// shim waits for one. Lowering the OOM score is best effort (it needs
// CAP_SYS_RESOURCE): a shim that may be OOM-killed is still better than no
// container, so that failure is only reported, as oomErr.
func prepareShimProcess() (oomErr, err error) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return nil, fmt.Errorf("set child subreaper: %w", err)
	}
	return os.WriteFile("/proc/self/oom_score_adj", []byte("-999"), 0), nil
}

// redirectStderr points fd 2 at the shim log so that libcontainer's logrus
// output and a Go panic land there too.
func redirectStderr(path string) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return
	}
	_ = unix.Dup3(int(f.Fd()), 2, 0)
	_ = f.Close()
}

// shim is a running container and the state of its socket server.
type shim struct {
	o         shimOptions
	log       *slog.Logger
	ln        *net.UnixListener // nil when it could not be taken over (see idle.go)
	pid       int               // the container's init, this process's child
	startTime uint64
	// shimStartTime is this shim's own start time, written into the exit
	// record with its PID to say whose exit it is.
	shimStartTime uint64
	timings       startTimings
	// io is the init's stdio.
	io *stdioHub
	// firstAttach is closed at the first attach, or when the wait for it
	// is over; nil when the container was not started for an attach.
	firstAttach     chan struct{}
	firstAttachOnce sync.Once

	// busy is held (read) by every request that changes what the shim
	// holds: an exec, an attach for as long as it lasts, a release. The
	// shim re-executes itself only when it can take it (see reexec).
	busy sync.RWMutex

	done chan struct{} // closed once the exit is final and recorded in exit.json

	mu         sync.Mutex
	exit       *exitRecord // nil until exited, and when the status could not be read
	reason     string      // why exit is nil after done
	conns      map[*net.UnixConn]struct{}
	closing    bool
	initExited bool                    // no exec may start any more
	execs      map[string]*execSession // until released
	wg         sync.WaitGroup
}

// startContainer creates and runs the container; assigned is when the shim
// got it, the start of its timings.
func startContainer(o shimOptions, spec Spec, assigned time.Time, log *slog.Logger) (_ *shim, retErr error) {
	self, err := procstat.Read(os.Getpid())
	if err != nil {
		return nil, err
	}
	rec, _ := json.Marshal(shimRecord{Version: protocolVersion, PID: os.Getpid(), StartTime: self.StartTime})
	if err := writeFileAtomic(o.dir, shimFileName, rec); err != nil {
		return nil, fmt.Errorf("write %s: %w", shimFileName, err)
	}

	cfg, err := containerConfig(spec, o.cgroupParent)
	if err != nil {
		return nil, err
	}

	// Listening before the container exists means a daemon told "ready" can
	// always connect; connections queue in the backlog until serve accepts.
	ln, err := listenUnixIn(o.dir, socketName)
	if err != nil {
		return nil, err
	}
	defer func() {
		if retErr != nil {
			_ = ln.Close()
			_ = os.Remove(filepath.Join(o.dir, socketName))
		}
	}()
	logs, err := newLogSink(filepath.Join(o.dir, logFileName), o.logMaxSize, o.logMaxFiles, 0, log)
	if err != nil {
		return nil, err
	}
	defer func() {
		if retErr != nil {
			logs.close()
		}
	}()
	stdio, err := newProcessStdio(spec.Terminal, spec.OpenStdin, spec.StdinOnce)
	if err != nil {
		return nil, err
	}
	defer func() {
		if retErr != nil {
			stdio.closeAll()
		}
	}()

	prepared := time.Now()
	c, err := libcontainer.Create(o.runtime, o.id, cfg)
	if err != nil {
		return nil, fmt.Errorf("create container: %w", err)
	}
	created := time.Now()
	p := containerProcess(spec, stdio.childIn, stdio.childOut, stdio.childErr, stdio.consoleChild)
	// Start then Exec is what Run does, split here to time them apart.
	err = c.Start(p)
	started := time.Now()
	if err == nil {
		err = stdio.afterStart(spec.OpenStdin)
	}
	if err == nil {
		err = c.Exec()
	}
	if err != nil {
		if derr := c.Destroy(); derr != nil {
			err = fmt.Errorf("%w (destroy: %w)", err, derr)
		}
		return nil, fmt.Errorf("run container: %w", err)
	}
	execed := time.Now()
	pid, err := p.Pid()
	if err != nil {
		return nil, err
	}
	timings := startTimings{
		PrepareUS: prepared.Sub(assigned).Microseconds(),
		CreateUS:  created.Sub(prepared).Microseconds(),
		StartUS:   started.Sub(created).Microseconds(),
		ExecUS:    execed.Sub(started).Microseconds(),
	}
	// The init is our unreaped child, so its /proc entry outlives even an
	// immediate exit and the start time can always be read (an exec does
	// not change it).
	st, err := procstat.Read(pid)
	if err != nil {
		return nil, fmt.Errorf("container init %d: %w", pid, err)
	}
	s := newShim(o, log, ln, pid, st.StartTime, self.StartTime, timings)
	s.io = stdio.hub
	s.io.log = logs
	if spec.AwaitAttach {
		s.awaitFirstAttach(awaitAttachLimit)
	} else {
		s.io.start()
	}
	return s, nil
}

// awaitAttachLimit bounds how long a container started for an attached
// client holds its output for that client.
const awaitAttachLimit = 10 * time.Second

// awaitFirstAttach holds the init's output until the first attach, or for
// at most limit.
func (s *shim) awaitFirstAttach(limit time.Duration) {
	s.firstAttach = make(chan struct{})
	t := time.AfterFunc(limit, s.attached)
	go func() {
		<-s.firstAttach
		t.Stop()
	}()
}

// attached lets the held output go, at the first attach.
func (s *shim) attached() {
	if s.firstAttach == nil {
		return
	}
	s.firstAttachOnce.Do(func() {
		s.io.start()
		close(s.firstAttach)
	})
}

func newShim(o shimOptions, log *slog.Logger, ln *net.UnixListener, pid int, startTime, shimStartTime uint64, timings startTimings) *shim {
	return &shim{
		o: o, log: log, ln: ln, pid: pid, startTime: startTime, shimStartTime: shimStartTime, timings: timings,
		done:  make(chan struct{}),
		conns: map[*net.UnixConn]struct{}{},
		execs: map[string]*execSession{},
	}
}

// serve answers the socket until the container has exited and everybody
// waiting was told, and returns the shim's exit status. A container that
// runs on gets a smaller shim: the shim that started it re-executes itself
// once it has run for reexecDelay with nothing attached and no exec session
// (see idle.go), and the re-executed one (reexeced) gives back what memory
// it can after shrinkDelay (see shimmem.go). Both are delayed so that a
// short-lived container's exit is not held up by them (and then skipped).
func (s *shim) serve(log *slog.Logger, reexeced bool) int {
	if s.ln != nil {
		go s.acceptLoop(log)
	}
	// Waiting without reaping: the re-executed image must still find the
	// exit to reap, and no exit status may be taken by a thread that the
	// execve ends.
	exited := make(chan error, 1)
	go func() { exited <- waitExited(s.pid) }()
	delay := reexecDelay
	if reexeced {
		delay = shrinkDelay
	}
	idle := time.NewTimer(delay)
	var err error
wait:
	for {
		select {
		case err = <-exited:
			break wait
		case <-idle.C:
			if !reexeced {
				rerr := s.reexec() // returns only if it could not
				if errors.Is(rerr, errShimBusy) {
					idle.Reset(reexecDelay)
					continue
				}
				log.Warn("could not re-execute for the idle wait; waiting in this process", "err", rerr)
			}
			shrinkIdleMemory()
		}
	}
	idle.Stop()
	s.mu.Lock()
	s.initExited = true
	s.mu.Unlock()
	// The init's end killed every exec session (they live in its PID
	// namespace): their exits are recorded before the init's, and its
	// output is drained into the log and to the attached clients before
	// anyone is told it exited, so a stopped container's log is complete.
	s.finishExecs(execsEndWait)
	s.finishOutput(outputEndWait)
	ws, werr := waitChild(s.pid)
	finished := time.Now()
	err = errors.Join(err, werr)
	var rec *exitRecord
	reason := ""
	if err == nil {
		if code, sig, ok := exitFromWaitStatus(ws); ok {
			rec = &exitRecord{ExitCode: code, Signal: sig, FinishedAt: finished, ShimPID: os.Getpid(), ShimStartTime: s.shimStartTime}
			// Before the cgroup goes with the container (destroyContainer).
			if n, err := oomKills(s.o.cgroupParent + "/" + s.o.id); err != nil {
				log.Warn("read the OOM kill count", "err", err)
			} else {
				rec.OOMKilled = n > 0
			}
		}
	}
	if rec == nil {
		reason = fmt.Sprintf("shim could not read the exit status: %v", err)
		log.Error("wait for container", "err", err)
	} else if err := writeExitFile(s.o.dir, *rec); err != nil {
		// Waiters still get the code; only a daemon that is not listening
		// now loses it.
		log.Error("write exit record", "err", err)
	} else if err := syncExitFile(s.o.dir); err != nil {
		// Durable before anyone is told: a machine that crashes before the
		// daemon's journal holds the exit must not take the code with it.
		log.Error("make the exit record durable", "err", err)
	}
	// Waiters are answered first: the daemon's journal write of the exit then
	// overlaps the teardown below.
	s.mu.Lock()
	s.exit, s.reason = rec, reason
	s.mu.Unlock()
	close(s.done)
	// With one P, the waiters just woken would otherwise answer only when
	// this goroutine blocks.
	runtime.Gosched()
	// The shim created the container, so it owns its teardown; the daemon's
	// Cleanup waits for the shim to exit and repeats it idempotently in case
	// this fails.
	if err := destroyContainer(s.o); err != nil {
		log.Error("destroy container", "err", err)
	}
	s.shutdown()
	s.io.close()
	if rec == nil {
		return 1
	}
	return 0
}

// How long, once the init has exited, the shim waits for the exec
// sessions the kernel is killing, and for the end of the init's output
// (which a slow attached client may hold up, or a client the container
// was started for may not have attached to yet).
const (
	execsEndWait  = 5 * time.Second
	outputEndWait = 10 * time.Second
)

// finishOutput waits, at most limit, for the first attach of a container
// started for one and then for the end of the init's output, and flushes
// the log.
func (s *shim) finishOutput(limit time.Duration) {
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	if s.firstAttach != nil {
		select {
		case <-s.firstAttach:
		case <-deadline.C:
			s.attached()
		}
	}
	select {
	case <-s.io.outputDone():
	case <-deadline.C:
		s.log.Warn("the container's output did not end after its exit; the log may miss its end")
	}
	if s.io.log != nil {
		s.io.log.close()
		s.io.log = nil
	}
}

func (s *shim) acceptLoop(log *slog.Logger) {
	for {
		conn, err := s.ln.AcceptUnix()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			log.Warn("accept", "err", err)
			// EMFILE and friends: back off instead of spinning.
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if !peerAllowed(conn) {
			_ = conn.Close()
			continue
		}
		s.mu.Lock()
		s.conns[conn] = struct{}{}
		if s.closing {
			_ = conn.SetReadDeadline(time.Now().Add(drainGrace))
		}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.handle(conn)
	}
}

// reexecDelay is how long a container must run before its shim re-executes
// itself; most `run --rm` jobs are over by then.
const reexecDelay = time.Second

// shrinkDelay is how long the re-executed shim waits before it returns what
// memory it can.
const shrinkDelay = 50 * time.Millisecond

// drainGrace is how long, after the exit, a connection may take to send its
// request before the shim goes away.
const drainGrace = 200 * time.Millisecond

// shutdown stops accepting, lets connected clients get their answers and
// removes the socket file.
func (s *shim) shutdown() {
	if s.ln != nil {
		_ = s.ln.Close()
	}
	_ = os.Remove(filepath.Join(s.o.dir, socketName))
	s.mu.Lock()
	s.closing = true
	for c := range s.conns {
		_ = c.SetReadDeadline(time.Now().Add(drainGrace))
	}
	s.mu.Unlock()
	finished := make(chan struct{})
	go func() { s.wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(5 * drainGrace):
	}
}

func (s *shim) handle(conn *net.UnixConn) {
	defer func() {
		s.mu.Lock()
		delete(s.conns, conn)
		s.mu.Unlock()
		_ = conn.Close()
		s.wg.Done()
	}()
	r := bufio.NewReaderSize(conn, copyBuffer)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return
		}
		var req shimRequest
		resp, ok := parseRequest(line, &req)
		if ok {
			switch req.Op {
			case opAttach:
				s.serveAttach(conn, r, req)
				return
			case opExec:
				s.serveExec(conn, r, req)
				return
			}
			resp = s.answer(req)
		}
		if !s.respond(conn, resp) {
			return
		}
	}
}

// respond writes one answer line.
func (s *shim) respond(conn net.Conn, resp shimResponse) bool {
	resp.Version = protocolVersion
	out, _ := json.Marshal(resp)
	_, err := conn.Write(append(out, '\n'))
	return err == nil
}

// parseRequest reads a request line; ok is false when it cannot be served,
// resp then says why. A version 1 request (no version, no exec_id) is
// about the init, like every request of that version.
func parseRequest(line []byte, req *shimRequest) (resp shimResponse, ok bool) {
	if err := decodeMessage("request", line, req); err != nil {
		kind := socketErrorBadRequest
		if errors.Is(err, errProtocolTooNew) {
			kind = socketErrorUnsupportedVersion
		}
		return shimResponse{Error: err.Error(), ErrorKind: kind}, false
	}
	return shimResponse{}, true
}

// answer serves one request of the ops that get one answer.
func (s *shim) answer(req shimRequest) shimResponse {
	switch req.Op {
	case opState, opWait, opRelease, opResize:
	case opUser:
		return s.resolveUser(req.User)
	default:
		return shimResponse{ExecID: req.ExecID, Error: fmt.Sprintf("unknown op %s", errdefs.Quote(req.Op)), ErrorKind: socketErrorBadRequest}
	}
	if req.ExecID != "" {
		return s.answerExec(req)
	}
	switch req.Op {
	case opState:
		return s.state()
	case opWait:
		<-s.done
		return s.state()
	case opResize:
		if err := s.io.resize(req.Rows, req.Cols); err != nil {
			return shimResponse{Error: err.Error(), ErrorKind: socketErrorNoTerminal}
		}
		return shimResponse{}
	}
	return shimResponse{Error: "the container's init cannot be released", ErrorKind: socketErrorBadRequest}
}

func (s *shim) state() shimResponse {
	resp := shimResponse{PID: s.pid, StartTime: s.startTime, Status: statusRunning, TTY: s.io.tty}
	if s.io.log != nil {
		resp.LogDroppedBytes = s.io.log.droppedBytes()
	}
	select {
	case <-s.done:
	default:
		return resp
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	resp.Status = statusExited
	resp.Reason = s.reason
	if s.exit != nil {
		code, at := s.exit.ExitCode, s.exit.FinishedAt
		resp.ExitCode, resp.Signal, resp.FinishedAt = &code, s.exit.Signal, &at
		resp.OOMKilled = s.exit.OOMKilled
	}
	return resp
}

// resolveUser answers a user request.
func (s *shim) resolveUser(spec string) shimResponse {
	u, err := resolveUser(s.o.rootfs, spec)
	if err != nil {
		kind := ""
		if errors.Is(err, errUnknownUser) {
			kind = socketErrorUnknownUser
		}
		return shimResponse{Error: err.Error(), ErrorKind: kind}
	}
	groups := u.Groups
	if groups == nil {
		groups = []int{}
	}
	return shimResponse{UID: &u.UID, GID: &u.GID, Groups: groups, Home: u.Home}
}

// serveAttach attaches conn to the init's stdio until the client hangs up
// or the output is over.
func (s *shim) serveAttach(conn *net.UnixConn, r *bufio.Reader, req shimRequest) {
	if req.ExecID != "" {
		s.respond(conn, shimResponse{ExecID: req.ExecID, ErrorKind: socketErrorUnknownExec,
			Error: fmt.Sprintf("exec session %s: only the container's init can be attached to", errdefs.Quote(req.ExecID))})
		return
	}
	s.busy.RLock()
	defer s.busy.RUnlock()
	status := statusRunning
	select {
	case <-s.done:
		status = statusExited
	default:
	}
	if !s.respond(conn, shimResponse{Status: status, TTY: s.io.tty, PID: s.pid, StartTime: s.startTime}) {
		return
	}
	sub, ended := s.io.fan.add(conn)
	defer s.io.fan.remove(sub)
	s.attached()
	if ended {
		return
	}
	s.io.serveInput(r, req.Stdin)
}
