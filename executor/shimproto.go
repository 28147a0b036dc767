package executor

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/cairn-run/cairn/internal/errdefs"
)

// The shim protocol: every message between the daemon and a shim, and every
// file a shim leaves for a daemon, is described here and nowhere else.
//
// # Versions
//
//	1  what Cairn spoke up to commit 85b056e: no "version", no "exec_id",
//	   no "error_kind".
//	2  up to commit 7ae194e. Adds "version" to every message and file,
//	   "exec_id" to every socket request and response and to exit.json,
//	   "error_kind" to the ready message and to socket errors.
//	3  this one (protocolVersion). The shim holds the stdio of every process
//	   of its container and writes the container's log (container.log in
//	   the CRI format, rotated; see internal/crilog) instead of handing the
//	   file to the init; it runs exec sessions. Adds the socket ops
//	   "attach", "exec", "release", "resize" and "user", the streams of
//	   frames after attach and exec, the files execs/<exec id>.json, and
//	   the assignment's stdio and log fields.
//
// Messages and files carry the version of their writer; a request carries
// the version that introduced its op (requestVersion), so that a daemon
// still waits for and asks about the containers of an older shim, which
// refuses a request of a version it does not know. Readers take a message
// or file without "version" (or with 0) as version 1, read its fields as
// before, and treat the fields version 1 lacks as absent: exec_id "" (the
// container's init), no error kind. A version above protocolVersion is
// refused with an error wrapping errProtocolTooNew, before anything else of
// the message is interpreted. Versions only add fields and ops, so an
// older daemon (which ignores unknown JSON fields) still reads what a newer
// shim says and writes; a version 2 shim answers the ops of version 3 with
// a bad_request error.
//
// exec_id names the process a request or record is about: "" is the
// container's init, anything else an exec session. A request about an exec
// session the shim does not have gets an "unknown_exec" error.
//
// # Control socket: fd 3 of a shim (see standby.go)
//
// A socketpair; one JSON object, newline terminated, each way.
//
//	daemon -> shim  assignment: the container to run
//	  {"version":3,"spec":{"ID":"<id>","Rootfs":"/...","Args":["sh"],"Env":[...],"Hostname":"...",
//	     "Terminal":false,"OpenStdin":true,"StdinOnce":true,"AwaitAttach":false,
//	     "LogMaxSize":10485760,"LogMaxFiles":5},
//	   "dir":"<Dir>/containers/<id>","runtime":"<Dir>/runtime","cgroup_parent":"cairn"}
//	  Terminal: the init gets a pseudo-terminal (its master stays with the
//	  shim); OpenStdin: attached clients' input reaches the init's stdin
//	  (else it is /dev/null); StdinOnce: the first client to end its input
//	  ends the init's; AwaitAttach: the output is held (in the pipes) until
//	  the first attach, at most awaitAttachLimit, so a client that starts
//	  a container and then attaches misses nothing, and the shim does not
//	  finish before that client has it all; LogMaxSize (bytes, 0: the
//	  default, negative: never rotate) and LogMaxFiles: rotation.
//	shim -> daemon  ready: the container's init identity, once libcontainer's
//	  Run has returned, the init about to exec the user's command (earlier
//	  shims waited for that exec; the executor's Signal waits for it, see
//	  execwait.go):
//	  {"version":2,"pid":123,"start_time":456,
//	   "timings":{"prepare_us":300,"create_us":200,"start_us":9000,"exec_us":400}}
//	  or why it could not start (the shim has undone everything and exits 1):
//	  {"version":2,"error":"...","error_kind":"command_not_found"}
//
// "timings" (optional, for diagnosis only: the daemon logs it at debug level
// and never decides anything on it) is how long the shim's steps took, in
// microseconds: preparing the container's files and configuration,
// libcontainer's Create, its Start (cgroups, namespaces, the init up to its
// exec fifo) and its Exec (the fifo).
//
// Ready error kinds (readyError* below; classified in startfail.go): "" another failure;
// "command_not_found": the command does not exist in the container
// (errdefs.ErrCommandNotFound); "command_not_executable": it exists but
// cannot be executed, e.g. no x bit or a directory
// (errdefs.ErrCommandNotExecutable). The shim classifies, since it alone sees
// libcontainer's error; the daemon maps the kind to the sentinel.
//
// # Shim socket: <Dir>/containers/<id>/shim.sock
//
// Newline-delimited JSON: one request per line, one response per line, in
// order, any number per connection (attach and exec end that: frames
// follow their answer). Only root or the shim's own user may connect.
//
//	{"version":2,"op":"state","exec_id":""}
//	  -> {"version":3,"exec_id":"","pid":123,"start_time":456,"status":"running",
//	      "tty":false,"log_dropped_bytes":0}
//	{"version":2,"op":"wait","exec_id":""}
//	  -> once the process has exited and exit.json is on disk (the shim
//	     destroys the container right after answering, then exits):
//	     {"version":3,"exec_id":"","pid":123,"start_time":456,"status":"exited",
//	      "exit_code":137,"signal":"SIGKILL","finished_at":"2026-11-25T12:00:00Z"}
//	     or, when the shim could not read the exit status (exit_code absent):
//	     {"version":3,"exec_id":"","pid":123,"start_time":456,"status":"exited","reason":"..."}
//	  state and wait of an exec session (exec_id set) answer the same about
//	  it; its wait is answered once execs/<exec id>.json is durable.
//	{"version":3,"op":"user","user":"nobody"}
//	  -> {"version":3,"uid":65534,"gid":65534,"groups":[],"home":"/"}
//	     the user resolved in the container's /etc/passwd and /etc/group
//	{"version":3,"op":"exec","exec_id":"<64 hex>","exec":{"args":["sh"],"env":[...],"cwd":"/",
//	   "uid":0,"gid":0,"groups":[],"terminal":true,"stdin":true,"attach":true,"rows":24,"cols":80}}
//	  -> {"version":3,"exec_id":"...","pid":200,"start_time":789,"status":"running","tty":true}
//	     once the process runs in the container (libcontainer's Run of a
//	     non-init process: it joins the namespaces and cgroup); with
//	     "attach", frames follow on this connection, else its stdio is
//	     /dev/null. The shim is its parent and only it learns its exit.
//	{"version":3,"op":"attach","exec_id":"","stdin":true}
//	  -> {"version":3,"exec_id":"","status":"running","tty":false}, then frames
//	     (several clients may be attached at once; each gets all output)
//	{"version":3,"op":"resize","exec_id":"","rows":40,"cols":120}
//	  -> {"version":3,"exec_id":""}
//	{"version":3,"op":"release","exec_id":"<id>"}
//	  -> {"version":3,"exec_id":"<id>"}: the shim forgets the exited
//	     session and removes execs/<id>.json (the daemon's journal holds the
//	     exit now); an unknown session is released already
//	a request the shim cannot serve:
//	  -> {"version":3,"exec_id":"...","error":"...","error_kind":"unknown_exec"}
//
// Frames (frames.go): a type byte, a 4-byte big-endian length, the payload.
// Client to shim: 0 input, 3 end of input, 4 resize (rows, cols: uint16
// BE). Shim to client: 1 stdout, 2 stderr (a terminal's output is stdout),
// 5 end: the output is over; the client then closes the connection. A
// client that hangs up detaches: the process runs on, its output goes on to
// the log (the init's) or nowhere (an exec's), its input stays open.
//
// Socket error kinds: "bad_request" (not JSON, unknown op),
// "unsupported_version" (the request is of a newer version than the shim's),
// "unknown_exec" (no exec session by that id; errdefs.ErrNotFound on the
// daemon side), "exists" (an exec session by that id exists already),
// "not_running" (the container's init has exited: no exec, no attach),
// "unknown_user" (errdefs.ErrInvalidArgument), "no_terminal" (resize of a
// process without one), "command_not_found" and "command_not_executable"
// (an exec's command; errdefs.ErrCommandNotFound, ErrCommandNotExecutable),
// "still_running" (release of a session that has not exited). A version 1
// shim answers errors with "error" alone.
//
// # Files in <Dir>/containers/<id>/
//
//	shim.json  the shim's own identity, written before the container is
//	           created, so the container can be removed without the daemon's
//	           handle: {"version":2,"pid":100,"start_time":400}
//	exit.json  how the init ended, written atomically (rename) and made
//	           durable (fsync of the file and its directory) by the shim
//	           before it tells anyone, naming
//	           the shim that wrote it so that it is never taken for the exit
//	           of another run:
//	           {"version":3,"exec_id":"","exit_code":137,"signal":"SIGKILL",
//	            "finished_at":"...","shim_pid":100,"shim_start_time":400}
//	execs/<exec id>.json
//	           how an exec session ended, the same record with its exec_id,
//	           as durable before anyone is told; written before the init's
//	           exit.json when the container ends (its end kills every exec),
//	           and removed by "release" or with the container
//	container.log, container.log.1 ... .N-1
//	           the init's output, written by the shim (crilog)

// protocolVersion is the shim protocol version this package writes and the
// newest it reads.
const protocolVersion = 3

// errProtocolTooNew marks a message or file of a protocol version newer than
// protocolVersion: written by a newer Cairn, it cannot be interpreted here.
var errProtocolTooNew = errors.New("shim protocol version too new")

// Socket operations and statuses.
const (
	opState   = "state"
	opWait    = "wait"
	opAttach  = "attach"
	opExec    = "exec"
	opRelease = "release"
	opResize  = "resize"
	opUser    = "user"

	statusRunning = "running"
	statusExited  = "exited"
)

// requestVersion is the version of a request of op: the one that
// introduced the op, so that a shim of that version serves it.
func requestVersion(op string) int {
	switch op {
	case opState, opWait:
		return 2
	}
	return protocolVersion
}

// Error kinds of the ready message.
const (
	readyErrorCommandNotFound      = "command_not_found"
	readyErrorCommandNotExecutable = "command_not_executable"
)

// Error kinds of socket responses.
const (
	socketErrorBadRequest         = "bad_request"
	socketErrorUnsupportedVersion = "unsupported_version"
	socketErrorUnknownExec        = "unknown_exec"
	socketErrorExists             = "exists"
	socketErrorNotRunning         = "not_running"
	socketErrorUnknownUser        = "unknown_user"
	socketErrorNoTerminal         = "no_terminal"
	socketErrorStillRunning       = "still_running"
)

// assignment is what the daemon sends a waiting shim: the container to run
// and where its files go.
type assignment struct {
	Version      int    `json:"version"`
	Spec         Spec   `json:"spec"`
	Dir          string `json:"dir"`
	Runtime      string `json:"runtime"`
	CgroupParent string `json:"cgroup_parent"`
}

// readyMessage is the one line the shim writes on its control socket: either
// the container process identity or why it could not start.
type readyMessage struct {
	Version   int    `json:"version"`
	PID       int    `json:"pid,omitempty"`
	StartTime uint64 `json:"start_time,omitempty"`
	Error     string `json:"error,omitempty"`
	ErrorKind string `json:"error_kind,omitempty"`
	// Timings is absent from shims older than this field and from failures.
	Timings *startTimings `json:"timings,omitempty"`
}

// startTimings are the durations of a shim's start steps, in microseconds.
type startTimings struct {
	PrepareUS int64 `json:"prepare_us"`
	CreateUS  int64 `json:"create_us"`
	StartUS   int64 `json:"start_us"`
	ExecUS    int64 `json:"exec_us"`
}

// startError is the error a failed ready message stands for, with the
// sentinel its kind names.
func (m readyMessage) startError() error {
	switch m.ErrorKind {
	case readyErrorCommandNotFound:
		return fmt.Errorf("%s: %w", m.Error, errdefs.ErrCommandNotFound)
	case readyErrorCommandNotExecutable:
		return fmt.Errorf("%s: %w", m.Error, errdefs.ErrCommandNotExecutable)
	}
	return errors.New(m.Error)
}

type shimRequest struct {
	Version int    `json:"version"`
	Op      string `json:"op"`
	ExecID  string `json:"exec_id"`
	// Stdin: an attach's input goes to the process.
	Stdin bool `json:"stdin,omitempty"`
	// Exec is the process of an exec.
	Exec *execSpec `json:"exec,omitempty"`
	// Rows and Cols are a resize's terminal size.
	Rows uint16 `json:"rows,omitempty"`
	Cols uint16 `json:"cols,omitempty"`
	// User is the spec a user request resolves.
	User string `json:"user,omitempty"`
}

// execSpec is the process of an exec request, its user resolved.
type execSpec struct {
	Args     []string `json:"args"`
	Env      []string `json:"env,omitempty"`
	Cwd      string   `json:"cwd,omitempty"`
	UID      int      `json:"uid"`
	GID      int      `json:"gid"`
	Groups   []int    `json:"groups,omitempty"`
	Terminal bool     `json:"terminal,omitempty"`
	// Stdin keeps the process's stdin open for the attached client.
	Stdin bool `json:"stdin,omitempty"`
	// Attach makes the request's connection the session's stdio.
	Attach bool   `json:"attach,omitempty"`
	Rows   uint16 `json:"rows,omitempty"`
	Cols   uint16 `json:"cols,omitempty"`
}

type shimResponse struct {
	Version    int        `json:"version"`
	ExecID     string     `json:"exec_id"`
	Error      string     `json:"error,omitempty"`
	ErrorKind  string     `json:"error_kind,omitempty"`
	PID        int        `json:"pid,omitempty"`
	StartTime  uint64     `json:"start_time,omitempty"`
	Status     string     `json:"status,omitempty"`
	ExitCode   *int       `json:"exit_code,omitempty"`
	Signal     string     `json:"signal,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	// Reason is set for an exited process whose status the shim could not
	// read (ExitCode nil).
	Reason string `json:"reason,omitempty"`
	// TTY: the process has a terminal.
	TTY bool `json:"tty,omitempty"`
	// LogDroppedBytes is how much of the init's output the log lost.
	LogDroppedBytes int64 `json:"log_dropped_bytes,omitempty"`
	// The answer to a user request.
	UID    *int   `json:"uid,omitempty"`
	GID    *int   `json:"gid,omitempty"`
	Groups []int  `json:"groups,omitempty"`
	Home   string `json:"home,omitempty"`
	// OOMKilled is the exit record's (see exitRecord).
	OOMKilled bool `json:"oom_killed,omitempty"`
}

// shimRecord is shim.json.
type shimRecord struct {
	Version   int    `json:"version"`
	PID       int    `json:"pid"`
	StartTime uint64 `json:"start_time"`
}

// exitRecord is exit.json. The record stays until a later run's shim
// replaces it, so it names the shim that wrote it.
type exitRecord struct {
	Version       int       `json:"version"`
	ExecID        string    `json:"exec_id"`
	ExitCode      int       `json:"exit_code"`
	Signal        string    `json:"signal,omitempty"`
	FinishedAt    time.Time `json:"finished_at"`
	ShimPID       int       `json:"shim_pid"`
	ShimStartTime uint64    `json:"shim_start_time"`
	// OOMKilled: the kernel's OOM killer killed a process of the
	// container during the run (absent in records of older shims).
	OOMKilled bool `json:"oom_killed,omitempty"`
}

// of reports whether the record is the init's exit written by the shim of
// process p.
func (r exitRecord) of(p Process) bool {
	return r.ExecID == "" && r.ShimPID == p.ShimPID && r.ShimStartTime == p.ShimStartTime
}

func (r exitRecord) exit() Exit {
	code := r.ExitCode
	return Exit{Code: &code, Signal: r.Signal, FinishedAt: r.FinishedAt, OOMKilled: r.OOMKilled}
}

// checkVersion returns the protocol version of a message whose "version"
// field is v (what names it in errors).
func checkVersion(what string, v int) (int, error) {
	switch {
	case v == 0:
		return 1, nil
	case v < 0:
		return 0, fmt.Errorf("%s: invalid shim protocol version %d", what, v)
	case v > protocolVersion:
		return 0, fmt.Errorf("%s is of shim protocol version %d, newer than the %d this cairn speaks (written by a newer cairn?): %w",
			what, v, protocolVersion, errProtocolTooNew)
	}
	return v, nil
}

// decodeMessage unmarshals one protocol message or file into msg. The
// version is read and checked first, so a newer message is refused as such
// rather than failing on a field whose meaning changed.
func decodeMessage(what string, data []byte, msg any) error {
	var header struct {
		Version int `json:"version"`
	}
	if err := json.Unmarshal(data, &header); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if _, err := checkVersion(what, header.Version); err != nil {
		return err
	}
	if err := json.Unmarshal(data, msg); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// errShimUnreachable marks failures to talk to the shim (not running, socket
// gone, hung up before answering); the caller falls back to the exit record.
var errShimUnreachable = errors.New("shim unreachable")

// errShimHungUp marks a connection that the shim closed before it answered.
var errShimHungUp = errors.New("shim hung up")

// hangUpAttempts is how often callShim asks a shim that hangs up.
const hangUpAttempts = 3

// callShim sends one request to the shim of the container in dir and
// returns its answer. It gives up when ctx ends. A shim closes the
// connections it accepted when it re-executes itself (see idle.go) and then
// accepts new ones, so a request it hung up on is sent again on a new
// connection; a shim that is gone refuses the connection.
func callShim(ctx context.Context, dir string, req shimRequest) (shimResponse, error) {
	for attempt := 1; ; attempt++ {
		resp, err := callShimOnce(ctx, dir, req)
		if !errors.Is(err, errShimHungUp) || attempt == hangUpAttempts {
			return resp, err
		}
	}
}

func callShimOnce(ctx context.Context, dir string, req shimRequest) (shimResponse, error) {
	conn, _, resp, err := openShimCall(ctx, dir, req)
	if conn != nil {
		conn.Close()
	}
	return resp, err
}

// openShimCall sends one request and reads its answer, and returns the
// connection (nil after an error) and its reader, on which frames may
// follow. The connection's deadlines follow ctx until the answer is read.
func openShimCall(ctx context.Context, dir string, req shimRequest) (*net.UnixConn, *bufio.Reader, shimResponse, error) {
	conn, err := dialUnixIn(ctx, dir, socketName)
	if err != nil {
		return nil, nil, shimResponse{}, fmt.Errorf("%w: %w", errShimUnreachable, err)
	}
	fail := func(resp shimResponse, err error) (*net.UnixConn, *bufio.Reader, shimResponse, error) {
		conn.Close()
		return nil, nil, resp, err
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	req.Version = requestVersion(req.Op)
	line, _ := json.Marshal(req)
	if _, err := conn.Write(append(line, '\n')); err != nil {
		stop()
		return fail(shimResponse{}, callErr(ctx, err))
	}
	r := bufio.NewReaderSize(conn, copyBuffer)
	line, err = r.ReadBytes('\n')
	if !stop() {
		// ctx ended as the answer came: the deadline may be set.
		return fail(shimResponse{}, callErr(ctx, context.Cause(ctx)))
	}
	if err != nil {
		return fail(shimResponse{}, callErr(ctx, err))
	}
	var resp shimResponse
	if err := decodeMessage("shim answer", line, &resp); err != nil {
		return fail(shimResponse{}, err)
	}
	if resp.Error != "" {
		return fail(resp, socketError(resp))
	}
	return conn, r, resp, nil
}

// socketError is the error an error response stands for.
func socketError(resp shimResponse) error {
	switch resp.ErrorKind {
	case socketErrorUnknownExec:
		return fmt.Errorf("shim: %s: %w", resp.Error, errdefs.ErrNotFound)
	case socketErrorExists:
		return fmt.Errorf("shim: %s: %w", resp.Error, errdefs.ErrAlreadyExists)
	case socketErrorNotRunning, socketErrorNoTerminal, socketErrorStillRunning:
		return fmt.Errorf("shim: %s: %w", resp.Error, errdefs.ErrFailedPrecondition)
	case socketErrorUnknownUser:
		return fmt.Errorf("%s: %w", resp.Error, errdefs.ErrInvalidArgument)
	case readyErrorCommandNotFound:
		return fmt.Errorf("%s: %w", resp.Error, errdefs.ErrCommandNotFound)
	case readyErrorCommandNotExecutable:
		return fmt.Errorf("%s: %w", resp.Error, errdefs.ErrCommandNotExecutable)
	case socketErrorBadRequest:
		if strings.HasPrefix(resp.Error, "unknown op") {
			// A shim of an older protocol version.
			return fmt.Errorf("shim: %s (the container's shim is of an older cairn; restart the container): %w", resp.Error, errdefs.ErrFailedPrecondition)
		}
	}
	return fmt.Errorf("shim: %s", resp.Error)
}

// callErr is the error of a call that failed on an established connection.
func callErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("%w: %w: %w", errShimUnreachable, errShimHungUp, err)
}
