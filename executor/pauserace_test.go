package executor

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cairn-run/cairn/internal/errdefs"
	"github.com/cairn-run/cairn/internal/procstat"
)

// notRunning checks that a Pause or Resume of a container whose init is gone
// says so: ErrFailedPrecondition, never ErrNotFound.
func notRunning(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, errdefs.ErrFailedPrecondition) || errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("%s: %v, want ErrFailedPrecondition (container is not running)", what, err)
	}
}

func TestPauseResume_AfterTheExitAreFailedPrecondition(t *testing.T) {
	env := newTestEnv(t)

	// Exited and cleaned up: no process, no state, no cgroup.
	gone := env.start("ex-gone", "true")
	env.wait(env.ex, "ex-gone", gone)
	if err := env.ex.Cleanup("ex-gone", gone); err != nil {
		t.Fatal(err)
	}
	for name, handle := range map[string]Process{"with handle": gone, "without": {}} {
		notRunning(t, "Pause "+name, env.ex.Pause("ex-gone", handle))
		notRunning(t, "Resume "+name, env.ex.Resume("ex-gone", handle))
	}

	// The process died with nobody to destroy the container: libcontainer
	// state and cgroup are still there.
	orphan := env.start("ex-orphan", "sleep", "100")
	if err := unix.Kill(orphan.ShimPID, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := waitProcessGone(ctx, orphan.ShimPID, orphan.ShimStartTime); err != nil {
		t.Fatal(err)
	}
	if err := unix.Kill(orphan.PID, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	env.wait(env.ex, "ex-orphan", orphan)
	if !fileExists(filepath.Join(env.ex.runtimeRoot(), "ex-orphan")) {
		t.Fatal("libcontainer state is gone; this case needs it")
	}
	for name, handle := range map[string]Process{"with handle": orphan, "without": {}} {
		notRunning(t, "Pause with state "+name, env.ex.Pause("ex-orphan", handle))
		notRunning(t, "Resume with state "+name, env.ex.Resume("ex-orphan", handle))
	}
}

func TestPauseResume_RacingTheExitIsNeverNotFound(t *testing.T) {
	env := newTestEnv(t)
	for i := range 8 {
		id := "race-" + string(rune('a'+i))
		p := env.start(id, "sh", "-c", "sleep 0.0"+string(rune('1'+i)))
		calls := 0
		for procstat.Alive(p.PID, p.StartTime) || calls < 4 {
			for _, handle := range []Process{p, {}} {
				if err := env.ex.Pause(id, handle); err != nil {
					notRunning(t, "Pause racing the exit", err)
				}
				if err := env.ex.Resume(id, handle); err != nil {
					notRunning(t, "Resume racing the exit", err)
				}
				calls++
			}
		}
		// A Pause that won the race must not hold the exit forever.
		_ = env.ex.Resume(id, p)
		env.wait(env.ex, id, p)
	}
}
