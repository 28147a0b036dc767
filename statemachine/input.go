package statemachine

import (
	"fmt"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/cairn-run/cairn/internal/errdefs"
)

// namePattern is the rule validName checks, for error messages. (A regexp
// of it would compile into a program of some 150 KB at every start of every
// cairn process, the shims' included: a loop does the same.)
const namePattern = `[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}`

func validName(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '_' && c != '.' && c != '-') {
			return false
		}
	}
	return true
}

// idLike reports what Resolve would take as an id or id prefix: ids are
// lowercase hex and prefixes need 4 characters. A name like that would
// shadow the prefix of every container whose id starts with it.
func idLike(s string) bool {
	if len(s) < 4 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Limits of a container's command and environment, after Linux's execve:
// MAX_ARG_STRLEN (32 pages) per string, and a total (counting a NUL per
// string, as the kernel does) of half the default ARG_MAX (a quarter of an
// 8 MiB stack), so a request that passes always fits in one API message
// (api.MaxMessageBytes, 4 MiB) and one journal record stays small.
const (
	MaxArgBytes   = 128 << 10 // one command argument or environment entry
	MaxArgs       = 4096      // command arguments
	MaxEnv        = 4096      // environment entries
	MaxArgsAndEnv = 1 << 20   // every argument and entry, plus a NUL each
)

// ValidateCreate refuses a create request that could never work, or that is
// larger than an exec could take.
func ValidateCreate(req CreateRequest) error {
	if err := validateName(req.Name); err != nil {
		return err
	}
	if req.Image == "" {
		return fmt.Errorf("no image given: %w", errdefs.ErrInvalidArgument)
	}
	if len(req.Command) == 0 || req.Command[0] == "" {
		return fmt.Errorf("no command given: %w", errdefs.ErrInvalidArgument)
	}
	if err := checkArgSizes(req.Command, req.Env); err != nil {
		return err
	}
	if err := checkLogLimits(req.LogMaxSize, req.LogMaxFiles); err != nil {
		return err
	}
	if req.StdinOnce && !req.OpenStdin {
		return fmt.Errorf("stdin once without an open stdin: %w", errdefs.ErrInvalidArgument)
	}
	return checkCommandAndEnv(req.Command, req.Env)
}

// checkCommandAndEnv refuses environment entries that are not KEY=VALUE
// and NUL bytes anywhere.
func checkCommandAndEnv(command, env []string) error {
	for _, e := range env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" || strings.ContainsRune(e, 0) {
			return fmt.Errorf("invalid environment entry %s: want KEY=VALUE: %w", errdefs.Quote(e), errdefs.ErrInvalidArgument)
		}
	}
	for i, a := range command {
		if strings.ContainsRune(a, 0) {
			return fmt.Errorf("command argument %d contains a NUL byte: %w", i, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

func validateName(name string) error {
	if name != "" && !validName(name) {
		return fmt.Errorf("invalid container name %s: must match %s: %w", errdefs.Quote(name), namePattern, errdefs.ErrInvalidArgument)
	}
	if idLike(name) {
		return fmt.Errorf("invalid container name %s: 4 to 64 hex digits would read as an id prefix: %w", errdefs.Quote(name), errdefs.ErrInvalidArgument)
	}
	return nil
}

// checkArgSizes applies the execve-like limits: per string, per list and
// in total.
func checkArgSizes(command, env []string) error {
	if len(command) > MaxArgs {
		return fmt.Errorf("%d command arguments, at most %d are allowed: %w", len(command), MaxArgs, errdefs.ErrInvalidArgument)
	}
	if len(env) > MaxEnv {
		return fmt.Errorf("%d environment entries, at most %d are allowed: %w", len(env), MaxEnv, errdefs.ErrInvalidArgument)
	}
	total := 0
	lists := []struct {
		what  string
		items []string
	}{{"command argument", command}, {"environment entry", env}}
	for _, l := range lists {
		for i, s := range l.items {
			if len(s) > MaxArgBytes {
				return fmt.Errorf("%s %d is %d bytes, at most %d are allowed: %w", l.what, i, len(s), MaxArgBytes, errdefs.ErrInvalidArgument)
			}
			total += len(s) + 1
		}
	}
	if total > MaxArgsAndEnv {
		return fmt.Errorf("command and environment are %d bytes, at most %d are allowed: %w", total, MaxArgsAndEnv, errdefs.ErrInvalidArgument)
	}
	return nil
}

// Limits of a container's log rotation.
const (
	MinLogMaxSize  = 4 << 10
	MaxLogMaxFiles = 100
)

func checkLogLimits(size int64, files int) error {
	if size > 0 && size < MinLogMaxSize {
		return fmt.Errorf("log max size %d bytes is below the %d allowed: %w", size, MinLogMaxSize, errdefs.ErrInvalidArgument)
	}
	if files < 0 || files > MaxLogMaxFiles {
		return fmt.Errorf("log max files %d: must be 0 (the default) to %d: %w", files, MaxLogMaxFiles, errdefs.ErrInvalidArgument)
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
	return 0, fmt.Errorf("unknown signal %s: %w", errdefs.Quote(s), errdefs.ErrInvalidArgument)
}

// SignalName is the SIG-prefixed name of sig, or its number.
func SignalName(sig syscall.Signal) string {
	if name := unix.SignalName(sig); name != "" {
		return name
	}
	return fmt.Sprint(int(sig))
}
