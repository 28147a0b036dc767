package executor

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
//	2  this one (protocolVersion). Adds "version" to every message and file,
//	   "exec_id" to every socket request and response and to exit.json,
//	   "error_kind" to the ready message and to socket errors.
//
// Writers always write protocolVersion. Readers take a message or file
// without "version" (or with 0) as version 1, read its fields as before, and
// treat the fields version 1 lacks as absent: exec_id "" (the container's
// init), no error kind. A version above protocolVersion is refused with an
// error wrapping errProtocolTooNew, before anything else of the message is
// interpreted. Version 2 only adds fields, so an older daemon (which ignores
// unknown JSON fields) still reads what a version 2 shim says and writes.
//
// exec_id names the process a request or record is about: "" is the
// container's init, anything else an exec session. This version runs no exec
// sessions, so a request with a non-empty exec_id gets an "unknown_exec"
// error.
//
// # Control socket: fd 3 of a shim (see standby.go)
//
// A socketpair; one JSON object, newline terminated, each way.
//
//	daemon -> shim  assignment: the container to run
//	  {"version":2,"spec":{"ID":"<id>","Rootfs":"/...","Args":["sh"],"Env":[...],"Hostname":"..."},
//	   "dir":"<Dir>/containers/<id>","runtime":"<Dir>/runtime","cgroup_parent":"cairn"}
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
// order, any number per connection. Only root or the shim's own user may
// connect.
//
//	{"version":2,"op":"state","exec_id":""}
//	  -> {"version":2,"exec_id":"","pid":123,"start_time":456,"status":"running"}
//	{"version":2,"op":"wait","exec_id":""}
//	  -> once the process has exited and exit.json is on disk (the shim
//	     destroys the container right after answering, then exits):
//	     {"version":2,"exec_id":"","pid":123,"start_time":456,"status":"exited",
//	      "exit_code":137,"signal":"SIGKILL","finished_at":"2026-11-25T12:00:00Z"}
//	     or, when the shim could not read the exit status (exit_code absent):
//	     {"version":2,"exec_id":"","pid":123,"start_time":456,"status":"exited","reason":"..."}
//	a request the shim cannot serve:
//	  -> {"version":2,"exec_id":"...","error":"...","error_kind":"unknown_exec"}
//
// Socket error kinds: "bad_request" (not JSON, unknown op),
// "unsupported_version" (the request is of a newer version than the shim's),
// "unknown_exec" (no exec session by that id; errdefs.ErrNotFound on the
// daemon side). A version 1 shim answers errors with "error" alone.
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
//	           {"version":2,"exec_id":"","exit_code":137,"signal":"SIGKILL",
//	            "finished_at":"...","shim_pid":100,"shim_start_time":400}

// protocolVersion is the shim protocol version this package writes and the
// newest it reads.
const protocolVersion = 2

// errProtocolTooNew marks a message or file of a protocol version newer than
// protocolVersion: written by a newer Cairn, it cannot be interpreted here.
var errProtocolTooNew = errors.New("shim protocol version too new")

// Socket operations and statuses.
const (
	opState = "state"
	opWait  = "wait"

	statusRunning = "running"
	statusExited  = "exited"
)

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
	conn, err := dialUnixIn(ctx, dir, socketName)
	if err != nil {
		return shimResponse{}, fmt.Errorf("%w: %w", errShimUnreachable, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	req.Version = protocolVersion
	line, _ := json.Marshal(req)
	if _, err := conn.Write(append(line, '\n')); err != nil {
		return shimResponse{}, callErr(ctx, err)
	}
	line, err = bufio.NewReader(conn).ReadBytes('\n')
	if err != nil {
		return shimResponse{}, callErr(ctx, err)
	}
	var resp shimResponse
	if err := decodeMessage("shim answer", line, &resp); err != nil {
		return shimResponse{}, err
	}
	if resp.Error != "" {
		return resp, socketError(resp)
	}
	return resp, nil
}

// socketError is the error an error response stands for.
func socketError(resp shimResponse) error {
	switch resp.ErrorKind {
	case socketErrorUnknownExec:
		return fmt.Errorf("shim: %s: %w", resp.Error, errdefs.ErrNotFound)
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
