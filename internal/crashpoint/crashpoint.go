// Package crashpoint lets crash drills kill the daemon at a named place, the
// way bbolt's failpoints do: in a binary built with `-tags crashpoints`,
// CAIRN_CRASH_AT=<name> in the environment makes the daemon send itself
// SIGKILL when it reaches that place. Release builds carry no crash points:
// Hit is an empty function there, and CAIRN_CRASH_AT is ignored (the
// daemon warns when it is set).
package crashpoint

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
)

// Env names the environment variable read at startup: one name, or several
// separated by commas.
const Env = "CAIRN_CRASH_AT"

var armed = arm()

func arm() map[string]bool {
	if !Enabled {
		return nil
	}
	return parse(os.Getenv(Env))
}

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
	if Enabled && armed[name] {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
}

// Check refuses armed names that are not in known, the list of every crash
// point the daemon can reach: a drill aimed at a name that does not exist
// would wait for a crash that never comes.
func Check(known []string) error {
	return check(armed, known)
}

func check(armed map[string]bool, known []string) error {
	var unknown []string
	for name := range armed {
		if !slices.Contains(known, name) {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	return fmt.Errorf("%s names unknown crash points %s (known: %s)", Env, strings.Join(unknown, ", "), strings.Join(known, " "))
}

// Ignored reports whether CAIRN_CRASH_AT is set in a build without crash
// points, so the daemon can say so.
func Ignored() bool {
	return !Enabled && os.Getenv(Env) != ""
}
