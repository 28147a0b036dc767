package executor

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/cairn-run/cairn/internal/errdefs"
	"github.com/cairn-run/cairn/internal/procstat"
)

// startThenLoseState starts a container and deletes its libcontainer state
// directory, as an operator's rm -rf or a disk cleaner would.
func startThenLoseState(env *testEnv, id string, args ...string) Process {
	env.t.Helper()
	p := env.start(id, args...)
	state := filepath.Join(env.ex.runtimeRoot(), id)
	if !fileExists(state) {
		env.t.Fatalf("no libcontainer state at %s to lose", state)
	}
	if err := os.RemoveAll(state); err != nil {
		env.t.Fatal(err)
	}
	return p
}

func TestLostState_SignalKillStillGives137(t *testing.T) {
	env := newTestEnv(t)
	p := startThenLoseState(env, "ls-kill", "sleep", "100")
	if err := env.ex.Signal("ls-kill", p, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if x := env.wait(env.ex, "ls-kill", p); x.Code == nil || *x.Code != 137 || x.Signal != "SIGKILL" {
		t.Fatalf("exit = %s signal %q, want 137 SIGKILL", codeOf(x), x.Signal)
	}
	if err := env.ex.Signal("ls-kill", p, unix.SIGKILL); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Signal after the exit: %v, want ErrNotFound", err)
	}
	if err := env.ex.Cleanup("ls-kill", p); err != nil {
		t.Fatal(err)
	}
	if env.ex.mounts.exists(env.ex.cgroupPath("ls-kill")) {
		t.Error("cgroup left after Cleanup")
	}
}

func TestLostState_SignalRefusesAProcessThatIsNotThisContainersInit(t *testing.T) {
	env := newTestEnv(t)
	other := env.start("ls-other", "sleep", "100")
	p := startThenLoseState(env, "ls-victim", "sleep", "100")
	stale := p
	stale.StartTime++
	for name, handle := range map[string]Process{"another container's init": other, "a stale start time": stale, "no process": {}} {
		if err := env.ex.Signal("ls-victim", handle, unix.SIGKILL); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("Signal with %s: %v, want ErrNotFound", name, err)
		}
	}
	if !procstat.Alive(other.PID, other.StartTime) || !procstat.Alive(p.PID, p.StartTime) {
		t.Fatal("a process was signalled through a handle that does not name the container's init")
	}
}

func TestLostState_PauseAndResumeUseTheFreezerCgroup(t *testing.T) {
	env := newTestEnv(t)
	p := startThenLoseState(env, "ls-fz", "sleep", "100")
	stateFile := filepath.Join(env.cgroupDir("freezer", "ls-fz"), "freezer.state")
	freezer := func() string { return strings.TrimSpace(readFile(t, stateFile)) }

	// With the handle, then as a replay without it (the init is asked of
	// the shim).
	for _, handle := range []Process{p, {}} {
		if err := env.ex.Pause("ls-fz", handle); err != nil {
			t.Fatal(err)
		}
		if got := freezer(); got != "FROZEN" {
			t.Fatalf("freezer.state after Pause = %q", got)
		}
	}
	for _, handle := range []Process{p, {}} {
		if err := env.ex.Resume("ls-fz", handle); err != nil {
			t.Fatal(err)
		}
		if got := freezer(); got != "THAWED" {
			t.Fatalf("freezer.state after Resume = %q", got)
		}
	}
	// Paused again, it is still killable.
	if err := env.ex.Pause("ls-fz", p); err != nil {
		t.Fatal(err)
	}
	if err := env.ex.Signal("ls-fz", p, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if x := env.wait(env.ex, "ls-fz", p); x.Code == nil || *x.Code != 137 {
		t.Fatalf("exit = %s, want 137", codeOf(x))
	}
}

func TestLostState_RemoveLeavesNothing(t *testing.T) {
	for _, paused := range []bool{false, true} {
		name := map[bool]string{false: "running", true: "paused"}[paused]
		t.Run(name, func(t *testing.T) {
			env := newTestEnv(t)
			id := "ls-rm-" + name
			p := env.start(id, "sh", "-c", "sleep 100 & sleep 100")
			if paused {
				if err := env.ex.Pause(id, p); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.RemoveAll(filepath.Join(env.ex.runtimeRoot(), id)); err != nil {
				t.Fatal(err)
			}
			if err := env.ex.Remove(id); err != nil {
				t.Fatal(err)
			}
			if procstat.Alive(p.PID, p.StartTime) || procstat.Alive(p.ShimPID, p.ShimStartTime) {
				t.Fatal("Remove left the container's init or its shim running")
			}
			assertNothingLeft(t, env, id)
		})
	}
}
