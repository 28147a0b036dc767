package daemon_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"connectrpc.com/connect"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/internal/testenv/scratch"
)

type verb struct {
	name string
	call func(e *scratch.Env, id string) error
}

var zero int32

var verbs = []verb{
	{"start", func(e *scratch.Env, id string) error {
		_, err := e.Containers.Start(bg, connect.NewRequest(&cairnv1.StartRequest{Id: id}))
		return err
	}},
	{"pause", func(e *scratch.Env, id string) error {
		_, err := e.Containers.Pause(bg, connect.NewRequest(&cairnv1.PauseRequest{Id: id}))
		return err
	}},
	{"unpause", func(e *scratch.Env, id string) error {
		_, err := e.Containers.Unpause(bg, connect.NewRequest(&cairnv1.UnpauseRequest{Id: id}))
		return err
	}},
	{"stop", func(e *scratch.Env, id string) error {
		_, err := e.Containers.Stop(bg, connect.NewRequest(&cairnv1.StopRequest{Id: id, TimeoutSeconds: &zero}))
		return err
	}},
	{"restart", func(e *scratch.Env, id string) error {
		_, err := e.Containers.Restart(bg, connect.NewRequest(&cairnv1.RestartRequest{Id: id, TimeoutSeconds: &zero}))
		return err
	}},
	{"kill", func(e *scratch.Env, id string) error {
		_, err := e.Containers.Kill(bg, connect.NewRequest(&cairnv1.KillRequest{Id: id, Signal: "USR1"}))
		return err
	}},
	{"rm", func(e *scratch.Env, id string) error {
		_, err := e.Containers.Remove(bg, connect.NewRequest(&cairnv1.RemoveRequest{Id: id}))
		return err
	}},
	{"rm -f", func(e *scratch.Env, id string) error {
		_, err := e.Containers.Remove(bg, connect.NewRequest(&cairnv1.RemoveRequest{Id: id, Force: true}))
		return err
	}},
}

// legal lists, per state, the verbs Docker's rules allow and the state they
// lead to.
var legal = map[cairnv1.ContainerState]map[string]cairnv1.ContainerState{
	cairnv1.ContainerState_CONTAINER_STATE_CREATED: {
		"start": running, "restart": running, "rm": removed, "rm -f": removed,
	},
	cairnv1.ContainerState_CONTAINER_STATE_RUNNING: {
		"pause": paused, "stop": stopped, "restart": running, "kill": running, "rm -f": removed,
	},
	cairnv1.ContainerState_CONTAINER_STATE_PAUSED: {
		"unpause": running, "stop": stopped, "rm -f": removed,
	},
	cairnv1.ContainerState_CONTAINER_STATE_STOPPED: {
		"start": running, "restart": running, "rm": removed, "rm -f": removed,
	},
}

const (
	running = cairnv1.ContainerState_CONTAINER_STATE_RUNNING
	paused  = cairnv1.ContainerState_CONTAINER_STATE_PAUSED
	stopped = cairnv1.ContainerState_CONTAINER_STATE_STOPPED
	removed = cairnv1.ContainerState_CONTAINER_STATE_REMOVED
)

// inState makes a fresh container in state s.
func inState(t *testing.T, e *scratch.Env, s cairnv1.ContainerState) string {
	t.Helper()
	id := create(t, e, "", "sh", "-c", forever).Id
	switch s {
	case running:
		start(t, e, id)
	case paused:
		start(t, e, id)
		if err := verbs[1].call(e, id); err != nil {
			t.Fatal(err)
		}
	case stopped:
		start(t, e, id)
		stop(t, e, id, 0)
	}
	return id
}

func historyLen(t *testing.T, e *scratch.Env, id string) int {
	t.Helper()
	stream, err := e.Journal.History(bg, connect.NewRequest(&cairnv1.HistoryRequest{Id: id}))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for stream.Receive() {
		n += len(stream.Msg().Records)
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestTransitions_EveryVerbFromEveryState(t *testing.T) {
	e := scratch.NewDaemon(t)
	for from, allowed := range legal {
		for _, v := range verbs {
			t.Run(fmt.Sprintf("%s from %s", v.name, stateName(from)), func(t *testing.T) {
				id := inState(t, e, from)
				before := historyLen(t, e, id)
				err := v.call(e, id)
				want, ok := allowed[v.name]
				if !ok {
					if codeOf(err) != connect.CodeFailedPrecondition {
						t.Fatalf("got %v, want FailedPrecondition", err)
					}
					if got := get(t, e, id).State; got != from {
						t.Fatalf("illegal %s changed state to %s", v.name, got)
					}
					if after := historyLen(t, e, id); after != before {
						t.Fatalf("illegal %s wrote %d journal records", v.name, after-before)
					}
					return
				}
				if err != nil {
					t.Fatalf("legal %s failed: %v", v.name, err)
				}
				if want == removed {
					if _, err := e.Containers.Get(bg, connect.NewRequest(&cairnv1.GetRequest{Id: id})); codeOf(err) != connect.CodeNotFound {
						t.Fatalf("removed container still found: %v", err)
					}
					return
				}
				c := get(t, e, id)
				if c.State != want {
					t.Fatalf("state %s, want %s", stateName(c.State), stateName(want))
				}
				if (want == running || want == paused) != processAlive(c.Pid) || (want == running || want == paused) != isMounted(c.Layers.Rootfs) {
					t.Fatalf("state %s but pid %d alive=%v, mounted=%v", stateName(want), c.Pid, processAlive(c.Pid), isMounted(c.Layers.Rootfs))
				}
				remove(t, e, id, true)
			})
		}
	}
	if err := e.Daemon.VerifyJournal(); err != nil {
		t.Fatal(err)
	}
}

func stateName(s cairnv1.ContainerState) string { return s.String()[len("CONTAINER_STATE_"):] }

func TestTransitions_32GoroutinesRacingOnOneContainerStayConsistent(t *testing.T) {
	e := scratch.NewDaemon(t)
	id := create(t, e, "racer", "sh", "-c", forever).Id
	var wg sync.WaitGroup
	errs := make(chan error, 32*12)
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 12 {
				v := verbs[(g+i)%6] // every verb but rm
				if err := v.call(e, id); err != nil && codeOf(err) != connect.CodeFailedPrecondition {
					errs <- fmt.Errorf("%s: %w", v.name, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := e.Daemon.VerifyJournal(); err != nil {
		t.Fatal(err)
	}
	c := get(t, e, id)
	live := c.State == running || c.State == paused
	if c.PendingEvent != "" || live != processAlive(c.Pid) || live != isMounted(c.Layers.Rootfs) {
		t.Fatalf("view %s pending=%q pid %d alive=%v mounted=%v", stateName(c.State), c.PendingEvent, c.Pid, processAlive(c.Pid), isMounted(c.Layers.Rootfs))
	}
	if live {
		want := map[cairnv1.ContainerState]string{running: "THAWED", paused: "FROZEN"}[c.State]
		if got := freezerState(t, e, id); got != want {
			t.Fatalf("view %s but freezer %s", stateName(c.State), got)
		}
	}
	remove(t, e, id, true)
	e.AssertNoLeaks(t)
}

func TestTransitions_50ContainersInParallelLeaveNothingBehind(t *testing.T) {
	e := scratch.NewDaemon(t)
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- lifecycle(e, fmt.Sprintf("par-%d", i))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	res, err := e.Containers.List(bg, connect.NewRequest(&cairnv1.ListRequest{All: true}))
	if err != nil || len(res.Msg.Containers) != 0 {
		t.Fatalf("containers left: %v %v", res, err)
	}
	e.AssertNoLeaks(t)
	if err := e.Daemon.VerifyJournal(); err != nil {
		t.Fatal(err)
	}
}

func lifecycle(e *scratch.Env, name string) error {
	ctx := context.Background()
	c, err := e.Containers.Create(ctx, connect.NewRequest(&cairnv1.CreateRequest{Name: name, Image: "busybox", Command: []string{"sh", "-c", forever}}))
	if err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	for _, v := range []string{"start", "stop", "rm"} {
		for _, candidate := range verbs {
			if candidate.name == v {
				if err := candidate.call(e, c.Msg.Container.Id); err != nil {
					return fmt.Errorf("%s %s: %w", v, name, err)
				}
			}
		}
	}
	return nil
}
