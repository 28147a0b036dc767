// Package api serves Cairn's public API (api/cairn/v1) over Connect: it
// resolves references, converts messages, calls the lifecycle driver and the
// layer store, and maps their sentinel errors to Connect codes in one place
// (errors.go). It holds no state of its own and never touches the machine.
//
// Attach and Exec are bidirectional streams (HTTP/2: Connect or gRPC over
// the daemon's h2c socket): the first request message says what to attach
// to or run, later ones carry input, its end and terminal sizes; responses
// carry the container or session first, then output, then the exit (exec.go).
// The process's stdio comes from its shim (a Stream); detach keys are
// recognised here, in the input, so a client's keys never reach the
// process. Logs reads the CRI-format log the shim writes (internal/crilog),
// stdout and stderr apart, with tail, since and until (logs.go).
package api
