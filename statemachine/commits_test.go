package statemachine_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	sm "github.com/cairn-run/cairn/statemachine"
)

// A container's life under `run --rm`: the mount record rides with the
// create's intent, the create's outcome with the start's intent, and the
// exit's outcome with the auto-remove's intent. Six commits, where one
// record per commit (and the mount record on its own) took ten.
func TestMachine_RunToAutoRemoveSharesCommits(t *testing.T) {
	h := newHarness(t)
	before := h.commits.n.Load()
	var startedWith sm.Container
	c, err := h.m.Run(bg, sm.CreateRequest{Image: "busybox", Command: []string{"true"}, AutoRemove: true},
		func(c sm.Container) { startedWith = c })
	if err != nil || c.State != sm.StateRunning || startedWith.ID != c.ID || startedWith.State != sm.StateRunning {
		t.Fatalf("run: %+v (started with %+v) %v", c, startedWith, err)
	}
	h.w.exit(c.Process.PID, 0)
	ctx, cancel := context.WithTimeout(bg, 5*time.Second)
	defer cancel()
	if got, err := h.m.Wait(ctx, c.ID); err != nil || got.State != sm.StateRemoved {
		t.Fatalf("wait: %+v %v", got, err)
	}
	if n := h.commits.n.Load() - before; n != 6 {
		t.Errorf("%d commits for create, start, exit and auto-remove, want 6", n)
	}
	want := []string{"INTENT create", "DONE create", "INTENT start", "DONE start", "INTENT exit", "DONE exit", "INTENT remove", "DONE remove"}
	if got := kinds(t, h, c.ID); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("journal:\n got %v\nwant %v", got, want)
	}
	if h.w.isClaimed(c.MountID) {
		t.Error("the mount record outlived the container")
	}
}

func TestMachine_StopAndItsAutoRemoveShareACommit(t *testing.T) {
	h := newHarness(t)
	c, err := h.m.Run(bg, sm.CreateRequest{Image: "busybox", Command: []string{"sh"}, AutoRemove: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	before := h.commits.n.Load()
	got, err := h.m.Stop(bg, c.ID, time.Second)
	if err != nil || got.State != sm.StateRemoved || got.Exit == nil {
		t.Fatalf("stop of an auto-remove container: %+v %v", got, err)
	}
	if n := h.commits.n.Load() - before; n != 3 {
		t.Errorf("%d commits for stop and auto-remove, want 3", n)
	}
}

func TestMachine_RunWhoseStartFailsLeavesTheContainerCreated(t *testing.T) {
	h := newHarness(t)
	h.w.failStart = errors.New("exec: no such file")
	c, err := h.m.Run(bg, sm.CreateRequest{Image: "busybox", Command: []string{"nope"}}, func(sm.Container) { t.Error("started called for a failed start") })
	if err == nil {
		t.Fatal("run succeeded")
	}
	got, ok := h.j.Container(c.ID)
	if !ok || got.State != sm.StateCreated || got.Pending != nil {
		t.Fatalf("after a failed run: %+v (exists %v)", got, ok)
	}
}

func TestMachine_FailedCreateReleasesItsMountClaim(t *testing.T) {
	h := newHarness(t)
	h.w.failBuild = errors.New("disk on fire")
	c, err := h.m.Create(bg, sm.CreateRequest{Image: "busybox", Command: []string{"sh"}})
	if err == nil {
		t.Fatal("create succeeded")
	}
	if _, ok := h.j.Container(c.ID); ok {
		t.Fatal("a failed create left a container")
	}
	h.w.mu.Lock()
	claimed := len(h.w.claimed)
	h.w.mu.Unlock()
	if claimed != 0 {
		t.Fatalf("%d mount claims left after a failed create", claimed)
	}
}
