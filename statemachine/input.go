package statemachine

import (
	"fmt"
	"regexp"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/cairn-run/cairn/internal/errdefs"
)

var namePattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$`)

// ValidateCreate refuses a create request that could never work.
func ValidateCreate(req CreateRequest) error {
	if req.Name != "" && !namePattern.MatchString(req.Name) {
		return fmt.Errorf("invalid container name %q: must match %s: %w", req.Name, namePattern, errdefs.ErrInvalidArgument)
	}
	if req.Image == "" {
		return fmt.Errorf("no image given: %w", errdefs.ErrInvalidArgument)
	}
	if len(req.Command) == 0 || req.Command[0] == "" {
		return fmt.Errorf("no command given: %w", errdefs.ErrInvalidArgument)
	}
	for _, e := range req.Env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" || strings.ContainsRune(e, 0) {
			return fmt.Errorf("invalid environment entry %q: want KEY=VALUE: %w", e, errdefs.ErrInvalidArgument)
		}
	}
	for _, a := range req.Command {
		if strings.ContainsRune(a, 0) {
			return fmt.Errorf("command argument contains a NUL byte: %w", errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// ParseSignal accepts a signal name with or without the SIG prefix, in any
// case, or a number.
func ParseSignal(s string) (syscall.Signal, error) {
	if s == "" {
		return syscall.SIGKILL, nil
	}
	var n int
	if _, err := fmt.Sscanf(s, "%d", &n); err == nil && fmt.Sprint(n) == s {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("invalid signal number %d: %w", n, errdefs.ErrInvalidArgument)
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q: %w", s, errdefs.ErrInvalidArgument)
}

// SignalName is the SIG-prefixed name of sig, or its number.
func SignalName(sig syscall.Signal) string {
	if name := unix.SignalName(sig); name != "" {
		return name
	}
	return fmt.Sprint(int(sig))
}
