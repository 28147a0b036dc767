package daemon_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"connectrpc.com/connect"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/internal/testenv/scratch"
)

// stubborn runs a container whose init ignores SIGTERM (a pid-namespace
// init without a handler), so a stop waits out its whole grace period.
func stubborn(t *testing.T, e *scratch.Env) *cairnv1.Container {
	t.Helper()
	return runDetached(t, e, "sleep", "100000")
}

// stopForever starts a stop with the longest grace period the API takes
// and returns once the stop holds the container.
func stopForever(t *testing.T, e *scratch.Env, id string) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	forever := int32(2147483647)
	go func() {
		_, err := e.Containers.Stop(bg, connect.NewRequest(&cairnv1.StopRequest{Id: id, TimeoutSeconds: &forever}))
		done <- err
	}()
	eventually(t, "the stop to begin", func() bool { return get(t, e, id).PendingEvent == "stop" })
	return done
}

func TestHardening_KillCutsShortAStopOfForever(t *testing.T) {
	e := scratch.NewDaemon(t)
	c := stubborn(t, e)
	stopped := stopForever(t, e, c.Id)
	if _, err := e.Containers.Kill(bg, connect.NewRequest(&cairnv1.KillRequest{Id: c.Id, Signal: "KILL"})); err != nil {
		t.Fatalf("kill during the stop: %v", err)
	}
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("stop: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stop still waits after a kill")
	}
	if got := get(t, e, c.Id); got.State != cairnv1.ContainerState_CONTAINER_STATE_STOPPED || got.ExitCode == nil || *got.ExitCode != 137 {
		t.Fatalf("after kill: %v exit %v", got.State, got.ExitCode)
	}
}

func TestHardening_ForceRemoveCutsShortAStopOfForever(t *testing.T) {
	e := scratch.NewDaemon(t)
	c := stubborn(t, e)
	stopped := stopForever(t, e, c.Id)
	start := time.Now()
	remove(t, e, c.Id, true)
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("rm -f took %v", took)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("stop: %v", err)
	}
	e.AssertNoLeaks(t)
}

func TestHardening_AClientThatGivesUpWaitingWritesNothing(t *testing.T) {
	e := scratch.NewDaemon(t)
	c := stubborn(t, e)
	stopped := stopForever(t, e, c.Id)
	before := historyLen(t, e, c.Id)
	ctx, cancel := context.WithTimeout(bg, 200*time.Millisecond)
	defer cancel()
	_, err := e.Containers.Pause(ctx, connect.NewRequest(&cairnv1.PauseRequest{Id: c.Id}))
	if code := codeOf(err); code != connect.CodeDeadlineExceeded && code != connect.CodeCanceled {
		t.Fatalf("pause of a container being stopped, with a deadline: %v", err)
	}
	time.Sleep(300 * time.Millisecond) // a pause that ran late would be recorded by now
	if after := historyLen(t, e, c.Id); after != before {
		t.Fatalf("the abandoned pause wrote %d records", after-before)
	}
	remove(t, e, c.Id, true)
	<-stopped
}

// A container whose libcontainer state is gone can still be killed,
// stopped and removed, through the recorded PID and its cgroup.
func TestHardening_LostRuntimeStateStaysKillable(t *testing.T) {
	e := scratch.NewDaemon(t)
	for _, verb := range []string{"kill", "stop", "rm -f"} {
		c := stubborn(t, e)
		if err := os.RemoveAll(filepath.Join(e.Config.Root, "exec", "runtime", c.Id)); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(bg, 15*time.Second)
		var err error
		switch verb {
		case "kill":
			_, err = e.Containers.Kill(ctx, connect.NewRequest(&cairnv1.KillRequest{Id: c.Id, Signal: "KILL"}))
			if err == nil {
				if w := wait(t, e, c.Id); w.ExitCode == nil || *w.ExitCode != 137 {
					t.Errorf("kill: exit %v, want 137", w.ExitCode)
				}
			}
		case "stop":
			one := int32(1)
			_, err = e.Containers.Stop(ctx, connect.NewRequest(&cairnv1.StopRequest{Id: c.Id, TimeoutSeconds: &one}))
		case "rm -f":
			_, err = e.Containers.Remove(ctx, connect.NewRequest(&cairnv1.RemoveRequest{Id: c.Id, Force: true}))
		}
		cancel()
		if err != nil {
			t.Fatalf("%s after the runtime state was deleted: %v", verb, err)
		}
		if verb != "rm -f" {
			remove(t, e, c.Id, true)
		}
	}
	e.AssertNoLeaks(t)
}

func TestHardening_WaitOnACreatedContainerBlocks(t *testing.T) {
	e := scratch.NewDaemon(t)
	c := create(t, e, "", "true")
	ctx, cancel := context.WithTimeout(bg, 300*time.Millisecond)
	defer cancel()
	_, err := e.Containers.Wait(ctx, connect.NewRequest(&cairnv1.WaitRequest{Id: c.Id}))
	if codeOf(err) != connect.CodeDeadlineExceeded && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait on a never-started container returned: %v", err)
	}
}
