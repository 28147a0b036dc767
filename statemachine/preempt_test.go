package statemachine_test

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-run/cairn/internal/errdefs"
	sm "github.com/cairn-run/cairn/statemachine"
)

// stubborn starts a container whose process ignores SIGTERM.
func stubborn(t *testing.T, h *harness) sm.Container {
	t.Helper()
	h.w.ignoreSig[syscall.SIGTERM] = true
	c := h.create(t, "")
	c, err := h.m.Start(bg, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// stopInBackground starts a stop with a grace period nobody waits out and
// returns its outcome channel once the stop holds the container.
func stopInBackground(t *testing.T, h *harness, id string) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := h.m.Stop(bg, id, time.Hour)
		done <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if c, _ := h.j.Container(id); c.Pending != nil && c.Pending.Event == sm.EventStop {
			return done
		}
		if time.Now().After(deadline) {
			t.Fatal("stop did not begin")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestMachine_WaitingForABusyContainerHonoursTheContext(t *testing.T) {
	h := newHarness(t)
	c := stubborn(t, h)
	stopped := stopInBackground(t, h, c.ID)
	before := h.j.LastSeq()
	ctx, cancel := context.WithTimeout(bg, 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := h.m.Pause(ctx, c.ID); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("pause of a container being stopped: got %v, want DeadlineExceeded", err)
	}
	if waited := time.Since(start); waited > 2*time.Second {
		t.Fatalf("pause waited %v past its deadline", waited)
	}
	if h.j.LastSeq() != before {
		t.Fatalf("a request cancelled while waiting wrote to the journal: %d -> %d", before, h.j.LastSeq())
	}
	if _, err := h.m.Kill(bg, c.ID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("stop: %v", err)
	}
}

func TestMachine_KillCutsAStopShort(t *testing.T) {
	h := newHarness(t)
	c := stubborn(t, h)
	stopped := stopInBackground(t, h, c.ID)
	if _, err := h.m.Kill(bg, c.ID, syscall.SIGKILL); err != nil {
		t.Fatalf("kill during a stop: %v", err)
	}
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("stop: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stop still waits out its grace period after a kill")
	}
	got, _ := h.j.Container(c.ID)
	if got.State != sm.StateStopped || got.Exit == nil || *got.Exit.Code != 137 {
		t.Fatalf("after kill during stop: %+v exit %+v", got.State, got.Exit)
	}
	if sigs := h.w.signalsSent(); len(sigs) != 2 || sigs[0] != syscall.SIGTERM || sigs[1] != syscall.SIGKILL {
		t.Fatalf("signals %v, want SIGTERM then SIGKILL", sigs)
	}
}

func TestMachine_KillWithAnotherSignalReachesTheProcessDuringAStop(t *testing.T) {
	h := newHarness(t)
	c := stubborn(t, h)
	stopped := stopInBackground(t, h, c.ID)
	got, err := h.m.Kill(bg, c.ID, syscall.SIGUSR1)
	if err != nil {
		t.Fatal(err)
	}
	if got.Pending == nil || got.Pending.Event != sm.EventStop {
		t.Fatalf("kill returned %+v, want the container with its stop pending", got)
	}
	if sigs := h.w.signalsSent(); sigs[len(sigs)-1] != syscall.SIGUSR1 {
		t.Fatalf("signals %v, want SIGUSR1 delivered", sigs)
	}
	if _, err := h.m.Remove(bg, c.ID, true); err != nil {
		t.Fatal(err)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("stop: %v", err)
	}
}

func TestMachine_ForceRemoveCutsAStopShort(t *testing.T) {
	h := newHarness(t)
	c := stubborn(t, h)
	stopped := stopInBackground(t, h, c.ID)
	done := make(chan error, 1)
	go func() {
		_, err := h.m.Remove(bg, c.ID, true)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("rm -f during a stop: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("rm -f waits out the stop's grace period")
	}
	if err := <-stopped; err != nil {
		t.Fatalf("stop: %v", err)
	}
	if _, ok := h.j.Container(c.ID); ok {
		t.Fatal("container still there after rm -f")
	}
}

func TestMachine_WaitRetriesAFailingRunner(t *testing.T) {
	h := newHarness(t)
	h.w.waitErrs = []error{errors.New("shim hiccup"), errors.New("shim hiccup"), errors.New("shim hiccup")}
	c := h.create(t, "")
	c, _ = h.m.Start(bg, c.ID)
	h.w.exit(c.Process.PID, 4)
	ctx, cancel := context.WithTimeout(bg, 10*time.Second)
	defer cancel()
	got, err := h.m.Wait(ctx, c.ID)
	if err != nil || got.Exit == nil || got.Exit.Code == nil || *got.Exit.Code != 4 {
		t.Fatalf("wait after failing runner waits: %+v %v", got.Exit, err)
	}
}

func TestMachine_PermanentWaitFailureRecordsUnknownExitAndStopWorks(t *testing.T) {
	h := newHarness(t)
	h.w.waitErrs = []error{fmt.Errorf("bad exit record: %w", errdefs.ErrInvalidArgument)}
	c := h.create(t, "")
	c, _ = h.m.Start(bg, c.ID)
	ctx, cancel := context.WithTimeout(bg, 10*time.Second)
	defer cancel()
	got, err := h.m.Wait(ctx, c.ID)
	if err != nil || got.State != sm.StateStopped || got.Exit == nil || got.Exit.Code != nil || got.Exit.Reason == "" {
		t.Fatalf("after a permanent wait failure: %+v %+v %v", got.State, got.Exit, err)
	}
	// Started again, the container can be stopped normally.
	c, err = h.m.Start(bg, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if c, err = h.m.Stop(bg, c.ID, time.Second); err != nil || c.Exit == nil || c.Exit.Code == nil {
		t.Fatalf("stop after restart: %+v %v", c.Exit, err)
	}
}

func TestMachine_WaitOnANeverStartedContainerBlocks(t *testing.T) {
	h := newHarness(t)
	c := h.create(t, "")
	ctx, cancel := context.WithTimeout(bg, 50*time.Millisecond)
	defer cancel()
	if _, err := h.m.Wait(ctx, c.ID); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait on a created container: %v, want it to block", err)
	}
	waited := make(chan sm.Container, 1)
	go func() {
		got, _ := h.m.Wait(bg, c.ID)
		waited <- got
	}()
	c, _ = h.m.Start(bg, c.ID)
	h.w.exit(c.Process.PID, 9)
	select {
	case got := <-waited:
		if got.Exit == nil || *got.Exit.Code != 9 {
			t.Fatalf("wait returned %+v", got.Exit)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("wait did not return after the container ran")
	}
}
