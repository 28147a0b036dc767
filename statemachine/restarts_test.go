package statemachine_test

import (
	"context"
	"slices"
	"syscall"
	"testing"
	"time"

	sm "github.com/cairn-run/cairn/statemachine"
)

func createWithPolicy(t *testing.T, h *harness, policy string) sm.Container {
	t.Helper()
	p, err := sm.ParseRestartPolicy(policy)
	if err != nil {
		t.Fatal(err)
	}
	c, err := h.m.Create(bg, sm.CreateRequest{Image: "busybox", Command: []string{"true"}, RestartPolicy: p})
	if err != nil {
		t.Fatal(err)
	}
	if c.RestartPolicy != p {
		t.Fatalf("view's policy %+v, want %+v", c.RestartPolicy, p)
	}
	return c
}

// untilView polls the view of id until ok says yes.
func untilView(t *testing.T, h *harness, id string, what string, ok func(sm.Container) bool) sm.Container {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, found := h.j.Container(id)
		if found && ok(c) {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: view %+v", what, c)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func runningOtherThan(pid int) func(sm.Container) bool {
	return func(c sm.Container) bool {
		return c.State == sm.StateRunning && c.Pending == nil && c.Process != nil && c.Process.PID != pid
	}
}

func count(ks []string, want string) int {
	n := 0
	for _, k := range ks {
		if k == want {
			n++
		}
	}
	return n
}

func TestPolicy_OnFailureRestartsExactlyNTimesWithGrowingDelays(t *testing.T) {
	h := newHarness(t)
	c := createWithPolicy(t, h, "on-failure:3")
	c, err := h.m.Start(bg, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	var delays []time.Duration
	for i := 1; i <= 3; i++ {
		pid := c.Process.PID
		h.w.exit(pid, 1)
		c = untilView(t, h, c.ID, "a policy restart", runningOtherThan(pid))
		if c.RestartCount != i {
			t.Fatalf("restart %d: count %d", i, c.RestartCount)
		}
		delays = append(delays, time.Duration(c.RestartDelay))
	}
	if want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond}; !slices.Equal(delays, want) {
		t.Fatalf("delays %v, want %v", delays, want)
	}
	h.w.exit(c.Process.PID, 1)
	c = untilView(t, h, c.ID, "the last exit", func(c sm.Container) bool { return c.State == sm.StateStopped })
	time.Sleep(1200 * time.Millisecond) // longer than the next delay would be
	c, _ = h.j.Container(c.ID)
	k := kinds(t, h, c.ID)
	if c.State != sm.StateStopped || c.RestartCount != 3 || count(k, "DONE policy-restart") != 3 || count(k, "INTENT policy-restart") != 3 {
		t.Fatalf("after the 4th failure: state %s count %d, journal %v", c.State, c.RestartCount, k)
	}
}

func TestPolicy_OnFailureDoesNotRestartAfterExit0(t *testing.T) {
	h := newHarness(t)
	c := createWithPolicy(t, h, "on-failure")
	c, _ = h.m.Start(bg, c.ID)
	h.w.exit(c.Process.PID, 0)
	untilView(t, h, c.ID, "the exit", func(c sm.Container) bool { return c.State == sm.StateStopped })
	time.Sleep(300 * time.Millisecond)
	if k := kinds(t, h, c.ID); count(k, "INTENT policy-restart") != 0 {
		t.Fatalf("restarted after exit 0: %v", k)
	}
}

func TestPolicy_UserStopAndKillAreFinal(t *testing.T) {
	for _, how := range []string{"stop", "stop-paused", "kill"} {
		t.Run(how, func(t *testing.T) {
			h := newHarness(t)
			c := createWithPolicy(t, h, "always")
			c, _ = h.m.Start(bg, c.ID)
			var err error
			switch how {
			case "stop":
				_, err = h.m.Stop(bg, c.ID, time.Second)
			case "stop-paused":
				if _, err = h.m.Pause(bg, c.ID); err == nil {
					_, err = h.m.Stop(bg, c.ID, time.Second)
				}
			case "kill":
				// USR1 does not end the fake's process: the exit comes later,
				// on its own, and must still not bring it back.
				if _, err = h.m.Kill(bg, c.ID, syscall.SIGUSR1); err == nil {
					h.w.exit(c.Process.PID, 0)
				}
			}
			if err != nil {
				t.Fatal(err)
			}
			c = untilView(t, h, c.ID, "stopped", func(c sm.Container) bool { return c.State == sm.StateStopped && c.Pending == nil })
			if !c.UserStopped {
				t.Fatalf("not marked user-stopped: %+v", c)
			}
			time.Sleep(300 * time.Millisecond)
			if c, _ := h.j.Container(c.ID); c.State != sm.StateStopped {
				t.Fatalf("came back after a user %s: %s", how, c.State)
			}
			// A user start clears the mark, and the policy applies again.
			c, err = h.m.Start(bg, c.ID)
			if err != nil || c.UserStopped || c.RestartCount != 0 {
				t.Fatalf("start after a user stop: %+v %v", c, err)
			}
			pid := c.Process.PID
			h.w.exit(pid, 0)
			untilView(t, h, c.ID, "a policy restart after the user's start", runningOtherThan(pid))
		})
	}
}

func TestPolicy_ShutdownStopIsNoUserStopAndComesBackAtStart(t *testing.T) {
	h := newHarness(t)
	always := createWithPolicy(t, h, "always")
	unless := createWithPolicy(t, h, "unless-stopped")
	userStopped := createWithPolicy(t, h, "unless-stopped")
	alwaysUserStopped := createWithPolicy(t, h, "always")
	var pids []int
	for _, c := range []sm.Container{always, unless, userStopped, alwaysUserStopped} {
		c, err := h.m.Start(bg, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, c.Process.PID)
	}
	for _, c := range []sm.Container{always, unless} {
		if c, err := h.m.StopByDaemon(bg, c.ID, time.Second); err != nil || c.UserStopped {
			t.Fatalf("stop by the daemon: %+v %v", c, err)
		}
	}
	for _, c := range []sm.Container{userStopped, alwaysUserStopped} {
		if _, err := h.m.Stop(bg, c.ID, time.Second); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond)
	for _, c := range []sm.Container{always, unless, userStopped, alwaysUserStopped} {
		if v, _ := h.j.Container(c.ID); v.State != sm.StateStopped {
			t.Fatalf("a stop restarted %s live", c.ID)
		}
	}
	// What the next daemon does at its start:
	h.m.ResumeRestarts(h.j.Containers(), false)
	untilView(t, h, always.ID, "always back", runningOtherThan(pids[0]))
	untilView(t, h, unless.ID, "unless-stopped back", runningOtherThan(pids[1]))
	untilView(t, h, alwaysUserStopped.ID, "always, stopped by the user, back after a daemon restart (Docker's)", runningOtherThan(pids[3]))
	time.Sleep(300 * time.Millisecond)
	if v, _ := h.j.Container(userStopped.ID); v.State != sm.StateStopped {
		t.Fatalf("unless-stopped stopped by the user came back: %s", v.State)
	}
}

func TestPolicy_SetRestartPolicyIsJournaledAndDecidesAgain(t *testing.T) {
	h := newHarness(t)
	c := createWithPolicy(t, h, "no")
	c, _ = h.m.Start(bg, c.ID)
	c, err := h.m.SetRestartPolicy(bg, c.ID, sm.RestartPolicy{Name: sm.RestartAlways})
	if err != nil || c.RestartPolicy.Name != sm.RestartAlways || c.State != sm.StateRunning {
		t.Fatalf("set: %+v %v", c, err)
	}
	pid := c.Process.PID
	h.w.exit(pid, 0)
	c = untilView(t, h, c.ID, "restart under the new policy", runningOtherThan(pid))
	// Changed to no while a restart waits: the restart does not happen.
	if _, err := h.m.SetRestartPolicy(bg, c.ID, sm.RestartPolicy{Name: sm.RestartOnFailure}); err != nil {
		t.Fatal(err)
	}
	h.w.exit(c.Process.PID, 0)
	time.Sleep(400 * time.Millisecond)
	if v, _ := h.j.Container(c.ID); v.State != sm.StateStopped || v.RestartCount != 1 {
		t.Fatalf("on-failure restarted an exit 0: %+v", v)
	}
	if k := kinds(t, h, c.ID); count(k, "DONE set-restart-policy") != 2 {
		t.Fatalf("journal %v", k)
	}
	if _, err := h.m.SetRestartPolicy(context.Background(), c.ID, sm.RestartPolicy{Name: "sometimes"}); err == nil {
		t.Fatal("an unknown policy was taken")
	}
}

func TestPolicy_RestartWithAutoRemoveIsRefused(t *testing.T) {
	h := newHarness(t)
	_, err := h.m.Create(bg, sm.CreateRequest{Image: "busybox", Command: []string{"true"}, AutoRemove: true, RestartPolicy: sm.RestartPolicy{Name: sm.RestartAlways}})
	if err == nil {
		t.Fatal("--rm with --restart always was taken")
	}
	if cs := h.j.Containers(); len(cs) != 0 {
		t.Fatalf("a refused create left %d containers", len(cs))
	}
}

func TestPolicy_StopDuringTheDelayCancelsTheRestart(t *testing.T) {
	h := newHarness(t)
	c := createWithPolicy(t, h, "always")
	c, _ = h.m.Start(bg, c.ID)
	h.w.exit(c.Process.PID, 0)
	untilView(t, h, c.ID, "the exit", func(c sm.Container) bool { return c.State == sm.StateStopped && c.Pending == nil })
	c, err := h.m.Stop(bg, c.ID, time.Second) // within the 100 ms delay
	if err != nil || c.State != sm.StateStopped || !c.UserStopped {
		t.Fatalf("stop during the delay: %+v %v", c, err)
	}
	time.Sleep(300 * time.Millisecond)
	k := kinds(t, h, c.ID)
	if v, _ := h.j.Container(c.ID); v.State != sm.StateStopped || count(k, "INTENT policy-restart") != 0 || count(k, "DONE cancel-restart") != 1 {
		t.Fatalf("after a stop during the delay: %s, journal %v", v.State, k)
	}
	// Without a restart scheduled, stop of a stopped container stays refused.
	if _, err := h.m.Stop(bg, c.ID, time.Second); err == nil {
		t.Fatal("stop of a stopped container with nothing scheduled was taken")
	}
}
