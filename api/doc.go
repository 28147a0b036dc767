// Package api serves Cairn's public API (api/cairn/v1) over Connect: it
// resolves references, converts messages, calls the lifecycle driver and the
// layer store, and maps their sentinel errors to Connect codes in one place
// (errors.go). It holds no state of its own and never touches the machine.
package api
