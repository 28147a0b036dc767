// Package crashpoint lets crash drills kill the daemon at a named place, the
// way bbolt's failpoints do: with CAIRN_CRASH_AT=<name> in its environment,
// the daemon sends itself SIGKILL when it reaches that place. Unset, a
// crash point costs one string comparison.
package crashpoint

import (
	"os"
	"strings"
	"syscall"
)

// Env names the environment variable read at startup: one name, or several
// separated by commas.
const Env = "CAIRN_CRASH_AT"

var armed = parse(os.Getenv(Env))

func parse(v string) map[string]bool {
	if v == "" {
		return nil
	}
	out := map[string]bool{}
	for _, name := range strings.Split(v, ",") {
		if name = strings.TrimSpace(name); name != "" {
			out[name] = true
		}
	}
	return out
}

// Hit kills the process with SIGKILL if name is armed. Nothing after it
// runs: no deferred call, no flush, exactly like a power cut of this process.
func Hit(name string) {
	if armed[name] {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
}
