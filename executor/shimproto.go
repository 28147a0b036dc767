package executor

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// The shim speaks newline-delimited JSON on its socket: one request object per
// line, one response object per line, any number of requests per connection.
//
//	{"op":"state"} -> {"pid":123,"start_time":456,"status":"running"}
//	{"op":"wait"}  -> (once the process has exited)
//	                  {"pid":123,"start_time":456,"status":"exited",
//	                   "exit_code":137,"signal":"SIGKILL","finished_at":"..."}
//
// An unknown op gets {"error":"..."}. "wait" is answered only after exit.json
// is on disk and the container is destroyed.

const (
	opState = "state"
	opWait  = "wait"

	statusRunning = "running"
	statusExited  = "exited"
)

type shimRequest struct {
	Op string `json:"op"`
}

type shimResponse struct {
	Error      string     `json:"error,omitempty"`
	PID        int        `json:"pid,omitempty"`
	StartTime  uint64     `json:"start_time,omitempty"`
	Status     string     `json:"status,omitempty"`
	ExitCode   *int       `json:"exit_code,omitempty"`
	Signal     string     `json:"signal,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	// Reason is set for an exited process whose status the shim could not
	// read (ExitCode nil).
	Reason string `json:"reason,omitempty"`
}

// readyMessage is the one line the shim writes on its sync pipe (fd 3):
// either the container process identity or why it could not start.
type readyMessage struct {
	PID       int    `json:"pid,omitempty"`
	StartTime uint64 `json:"start_time,omitempty"`
	Error     string `json:"error,omitempty"`
}

// shimRecord is shim.json: the shim's own identity, so its container can be
// removed without the daemon's handle.
type shimRecord struct {
	PID       int    `json:"pid"`
	StartTime uint64 `json:"start_time"`
}

// errShimUnreachable marks failures to talk to the shim (not running, socket
// gone, hung up before answering); the caller falls back to the exit record.
var errShimUnreachable = errors.New("shim unreachable")

// callShim sends one request to the shim of the container in dir and
// returns its answer. It gives up when ctx ends.
func callShim(ctx context.Context, dir, op string) (shimResponse, error) {
	conn, err := dialUnixIn(ctx, dir, socketName)
	if err != nil {
		return shimResponse{}, fmt.Errorf("%w: %w", errShimUnreachable, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	req, _ := json.Marshal(shimRequest{Op: op})
	if _, err := conn.Write(append(req, '\n')); err != nil {
		return shimResponse{}, callErr(ctx, err)
	}
	line, err := bufio.NewReader(conn).ReadBytes('\n')
	if err != nil {
		return shimResponse{}, callErr(ctx, err)
	}
	var resp shimResponse
	if err := json.Unmarshal(line, &resp); err != nil {
		return shimResponse{}, fmt.Errorf("shim answer: %w", err)
	}
	if resp.Error != "" {
		return resp, fmt.Errorf("shim: %s", resp.Error)
	}
	return resp, nil
}

func callErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("%w: %w", errShimUnreachable, err)
}
