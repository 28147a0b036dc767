package daemon_test

import (
	"context"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	bolt "go.etcd.io/bbolt"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/internal/daemon"
	"github.com/cairn-run/cairn/internal/schema"
	"github.com/cairn-run/cairn/internal/testenv/scratch"
)

// withPolicy creates a container with restart policy policy.
func withPolicy(t testing.TB, e *scratch.Env, policy string, cmd ...string) *cairnv1.Container {
	t.Helper()
	res, err := e.Containers.Create(bg, connect.NewRequest(&cairnv1.CreateRequest{Image: "busybox", Command: cmd, RestartPolicy: policy}))
	if err != nil {
		t.Fatalf("create --restart %s %v: %v", policy, cmd, err)
	}
	return res.Msg.Container
}

// eventCount counts the records of container id of kind and event.
func eventCount(t testing.TB, e *scratch.Env, id string, kind cairnv1.RecordKind, event string) int {
	t.Helper()
	stream, err := e.Journal.History(bg, connect.NewRequest(&cairnv1.HistoryRequest{Id: id}))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for stream.Receive() {
		for _, r := range stream.Msg().Records {
			if r.Kind == kind && r.Event == event {
				n++
			}
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

func policyRestarts(t testing.TB, e *scratch.Env, id string) (intents, done int) {
	t.Helper()
	return eventCount(t, e, id, cairnv1.RecordKind_RECORD_KIND_INTENT, "policy-restart"),
		eventCount(t, e, id, cairnv1.RecordKind_RECORD_KIND_DONE, "policy-restart")
}

func TestRestartPolicy_OnFailure3RestartsExactlyThreeTimes(t *testing.T) {
	e := scratch.NewDaemon(t)
	c := withPolicy(t, e, "on-failure:3", "sh", "-c", "exit 1")
	if c.RestartPolicy != "on-failure:3" {
		t.Fatalf("policy %q in the view", c.RestartPolicy)
	}
	start(t, e, c.Id)
	eventually(t, "three restarts", func() bool {
		g := get(t, e, c.Id)
		return g.RestartCount == 3 && g.State == stopped && g.PendingEvent == ""
	})
	time.Sleep(1200 * time.Millisecond) // past the 800 ms a fourth would wait
	g := get(t, e, c.Id)
	intents, done := policyRestarts(t, e, c.Id)
	if g.RestartCount != 3 || g.State != stopped || intents != 3 || done != 3 || g.ExitCode == nil || *g.ExitCode != 1 {
		t.Fatalf("after on-failure:3 of exit 1: count %d state %v exit %v; %d intents, %d done", g.RestartCount, g.State, g.ExitCode, intents, done)
	}
	if g.RestartDelayMs != 400 || g.UserStopped {
		t.Fatalf("delay %d ms (want 400: 100, 200, 400), user stopped %v", g.RestartDelayMs, g.UserStopped)
	}
}

func TestRestartPolicy_AlwaysKeepsRestartingWithGrowingDelay(t *testing.T) {
	e := scratch.NewDaemon(t)
	c := withPolicy(t, e, "always", "sh", "-c", "exit 0")
	start(t, e, c.Id)
	var seen []int64
	eventually(t, "five restarts", func() bool {
		g := get(t, e, c.Id)
		if g.PendingEvent == "" && g.RestartCount > 0 {
			if want := int64(100) << (g.RestartCount - 1); g.RestartDelayMs != want {
				t.Fatalf("restart %d waited %d ms, want %d", g.RestartCount, g.RestartDelayMs, want)
			}
			if len(seen) == 0 || seen[len(seen)-1] != g.RestartDelayMs {
				seen = append(seen, g.RestartDelayMs)
			}
		}
		return g.RestartCount >= 5
	})
	// Each count was seen with its own, doubled delay (checked above).
	if len(seen) < 2 {
		t.Fatalf("saw delays %v", seen)
	}
}

func TestRestartPolicy_AUserStopIsFinal(t *testing.T) {
	e := scratch.NewDaemon(t)
	for _, how := range []string{"stop", "stop-paused", "kill", "kill-usr1-then-exit"} {
		t.Run(how, func(t *testing.T) {
			cmd := "trap 'exit 0' TERM; while true; do sleep 0.05; done"
			if how == "kill-usr1-then-exit" {
				// PID 1 of the container ignores USR1; it exits on its own later.
				cmd = "trap 'exit 0' TERM; sleep 1; exit 3"
			}
			c := start(t, e, withPolicy(t, e, "always", "sh", "-c", cmd).Id)
			switch how {
			case "stop":
				stop(t, e, c.Id, 5)
			case "stop-paused":
				pause(t, e, c.Id)
				stop(t, e, c.Id, 5)
			case "kill":
				if _, err := e.Containers.Kill(bg, connect.NewRequest(&cairnv1.KillRequest{Id: c.Id, Signal: "KILL"})); err != nil {
					t.Fatal(err)
				}
			case "kill-usr1-then-exit":
				if _, err := e.Containers.Kill(bg, connect.NewRequest(&cairnv1.KillRequest{Id: c.Id, Signal: "USR1"})); err != nil {
					t.Fatal(err)
				}
			}
			wait(t, e, c.Id)
			time.Sleep(500 * time.Millisecond)
			g := get(t, e, c.Id)
			if g.State != stopped || !g.UserStopped || g.RestartCount != 0 {
				t.Fatalf("after a user %s: state %v user stopped %v count %d", how, g.State, g.UserStopped, g.RestartCount)
			}
			if intents, _ := policyRestarts(t, e, c.Id); intents != 0 {
				t.Fatalf("%d policy restarts after a user %s", intents, how)
			}
			remove(t, e, c.Id, true)
		})
	}
}

func TestRestartPolicy_AStopDuringTheDelayCancelsTheRestart(t *testing.T) {
	e := scratch.NewDaemon(t)
	c := start(t, e, withPolicy(t, e, "always", "sh", "-c", "exit 0").Id)
	eventually(t, "a delay of 800 ms", func() bool {
		g := get(t, e, c.Id)
		return g.State == stopped && g.PendingEvent == "" && g.RestartDelayMs >= 800
	})
	g := stop(t, e, c.Id, 5)
	if !g.UserStopped || g.State != stopped {
		t.Fatalf("stop during the delay: %+v", g)
	}
	count := g.RestartCount
	time.Sleep(2 * time.Second) // past the 1.6 s the next restart would wait
	if g := get(t, e, c.Id); g.State != stopped || g.RestartCount != count {
		t.Fatalf("restarted after a stop during the delay: %v, count %d (was %d)", g.State, g.RestartCount, count)
	}
	if n := eventCount(t, e, c.Id, cairnv1.RecordKind_RECORD_KIND_DONE, "cancel-restart"); n != 1 {
		t.Fatalf("%d cancel-restart records", n)
	}
}

func TestRestartPolicy_UpdateChangesThePolicyJournaled(t *testing.T) {
	e := scratch.NewDaemon(t)
	c := create(t, e, "", "sh", "-c", "exit 2")
	res, err := e.Restarts.UpdateRestartPolicy(bg, connect.NewRequest(&cairnv1.UpdateRestartPolicyRequest{Id: c.Id[:12], RestartPolicy: "on-failure:1"}))
	if err != nil || res.Msg.Container.RestartPolicy != "on-failure:1" || res.Msg.Container.State != cairnv1.ContainerState_CONTAINER_STATE_CREATED {
		t.Fatalf("update: %v %v", res, err)
	}
	start(t, e, c.Id)
	eventually(t, "one restart", func() bool {
		g := get(t, e, c.Id)
		return g.RestartCount == 1 && g.State == stopped && g.PendingEvent == ""
	})
	if _, err := e.Restarts.UpdateRestartPolicy(bg, connect.NewRequest(&cairnv1.UpdateRestartPolicyRequest{Id: c.Id, RestartPolicy: "sometimes"})); codeOf(err) != connect.CodeInvalidArgument {
		t.Fatalf("a bad policy: %v", err)
	}
	if _, err := e.Containers.Create(bg, connect.NewRequest(&cairnv1.CreateRequest{Image: "busybox", Command: []string{"true"}, RestartPolicy: "always", AutoRemove: true})); codeOf(err) != connect.CodeInvalidArgument {
		t.Fatalf("--restart always --rm: %v", err)
	}
	if n := eventCount(t, e, c.Id, cairnv1.RecordKind_RECORD_KIND_DONE, "set-restart-policy"); n != 1 {
		t.Fatalf("%d set-restart-policy records", n)
	}
}

// onceThenForever exits 3 on its first run and runs until stopped after:
// the writable layer keeps the marker across restarts.
const onceThenForever = "if [ -f /ran ]; then " + trapped + "; fi; touch /ran; sleep 0.5; exit 3"

func TestRestartPolicy_ExitWhileCairndIsDeadRestartsOnceWithAnExactCount(t *testing.T) {
	e := scratch.NewBinaryDaemon(t)
	c := start(t, e, withPolicy(t, e, "always", "sh", "-c", onceThenForever).Id)
	e.Kill()
	// The container exits while nobody watches; its shim keeps the exit.
	eventually(t, "the exit while cairnd is down", func() bool { return !processAlive(c.Pid) })
	e.Start()
	eventually(t, "the policy restart", func() bool { g := get(t, e, c.Id); return g.State == running && g.PendingEvent == "" })
	time.Sleep(500 * time.Millisecond)
	g := get(t, e, c.Id)
	intents, done := policyRestarts(t, e, c.Id)
	if g.RestartCount != 1 || intents != 1 || done != 1 || g.Pid == c.Pid {
		t.Fatalf("count %d, %d intents, %d done, pid %d (was %d)", g.RestartCount, intents, done, g.Pid, c.Pid)
	}
	// Restarted again, by a plain kill -9 of cairnd while it runs: nothing
	// more happens.
	e.Kill()
	e.Start()
	time.Sleep(300 * time.Millisecond)
	if g2 := get(t, e, c.Id); g2.RestartCount != 1 || g2.Pid != g.Pid || g2.State != running {
		t.Fatalf("after a second daemon restart: %+v", g2)
	}
}

func TestRestartPolicy_UnlessStoppedStaysStoppedAlwaysComesBackAfterADaemonRestart(t *testing.T) {
	e := scratch.NewBinaryDaemon(t)
	unless := start(t, e, withPolicy(t, e, "unless-stopped", "sh", "-c", trapped).Id)
	always := start(t, e, withPolicy(t, e, "always", "sh", "-c", trapped).Id)
	onFailure := start(t, e, withPolicy(t, e, "on-failure", "sh", "-c", trapped).Id)
	for _, c := range []*cairnv1.Container{unless, always, onFailure} {
		stop(t, e, c.Id, 5) // exit 42, a "failure", but a user's stop
	}
	for _, restart := range []func(){e.Kill, e.Stop} {
		restart()
		e.Start()
		eventually(t, "always back (Docker's: a daemon restart brings back always)", func() bool {
			g := get(t, e, always.Id)
			return g.State == running && g.PendingEvent == ""
		})
		if g := get(t, e, always.Id); g.UserStopped {
			t.Fatal("always, running again by its policy, still marked user-stopped")
		}
		time.Sleep(500 * time.Millisecond)
		if g := get(t, e, unless.Id); g.State != stopped || !g.UserStopped {
			t.Fatalf("unless-stopped stopped by the user: %v user stopped %v", g.State, g.UserStopped)
		}
		if g := get(t, e, onFailure.Id); g.State != stopped {
			t.Fatalf("on-failure stopped by the user: %v", g.State)
		}
		stop(t, e, always.Id, 5)
	}
}

func TestRestartPolicy_ACleanShutdownIsNoUserStop(t *testing.T) {
	e := scratch.NewBinaryDaemon(t, func(c *daemon.Config) { c.LiveRestore = false })
	c := start(t, e, withPolicy(t, e, "unless-stopped", "sh", "-c", trapped).Id)
	e.Stop() // stops every container, each stop journaled
	e.Start()
	eventually(t, "unless-stopped back after a clean shutdown", func() bool {
		g := get(t, e, c.Id)
		return g.State == running && g.Pid != c.Pid && g.PendingEvent == ""
	})
	if g := get(t, e, c.Id); g.UserStopped || g.RestartCount != 1 {
		t.Fatalf("user stopped %v, count %d", g.UserStopped, g.RestartCount)
	}
}

// reboot makes the next start of e's daemon see a machine that booted:
// every container process and shim is gone, without an exit record, and
// the journal's boot id is another one.
func reboot(t *testing.T, e *scratch.Env, cs ...*cairnv1.Container) {
	t.Helper()
	e.Kill()
	for _, c := range cs {
		_ = syscall.Kill(int(c.ShimPid), syscall.SIGKILL)
		_ = syscall.Kill(int(c.Pid), syscall.SIGKILL)
		eventually(t, "the container gone", func() bool { return !processAlive(c.Pid) && !processAlive(c.ShimPid) })
	}
	db, err := bolt.Open(filepath.Join(e.Config.Root, "cairn.db"), 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bolt.Tx) error { return schema.Meta(tx).Put(schema.MetaBootID, []byte("a-boot-before")) }); err != nil {
		t.Fatal(err)
	}
}

func TestRestartPolicy_AfterARebootAlwaysAndUnlessStoppedComeBackOnFailureDoesNot(t *testing.T) {
	e := scratch.NewBinaryDaemon(t)
	always := start(t, e, withPolicy(t, e, "always", "sh", "-c", trapped).Id)
	unless := start(t, e, withPolicy(t, e, "unless-stopped", "sh", "-c", trapped).Id)
	onFailure := start(t, e, withPolicy(t, e, "on-failure", "sh", "-c", trapped).Id)
	userStopped := start(t, e, withPolicy(t, e, "unless-stopped", "sh", "-c", trapped).Id)
	stop(t, e, userStopped.Id, 5)
	reboot(t, e, always, unless, onFailure)
	e.Start()
	for _, c := range []*cairnv1.Container{always, unless} {
		eventually(t, fmt.Sprintf("%s back after the reboot", c.RestartPolicy), func() bool {
			g := get(t, e, c.Id)
			return g.State == running && g.PendingEvent == ""
		})
		if g := get(t, e, c.Id); g.RestartCount != 1 || g.RestartDelayMs != 100 {
			t.Fatalf("%s: count %d delay %d", c.RestartPolicy, g.RestartCount, g.RestartDelayMs)
		}
	}
	time.Sleep(300 * time.Millisecond)
	if g := get(t, e, onFailure.Id); g.State != stopped || g.ExitCode != nil {
		t.Fatalf("on-failure with an unknown exit after a reboot: %v exit %v", g.State, g.ExitCode)
	}
	if g := get(t, e, userStopped.Id); g.State != stopped {
		t.Fatalf("unless-stopped stopped by the user came back after a reboot: %v", g.State)
	}
}

func TestRestartPolicy_BackoffContinuesAcrossADaemonRestart(t *testing.T) {
	e := scratch.NewBinaryDaemon(t)
	c := start(t, e, withPolicy(t, e, "always", "sh", "-c", "exit 0").Id)
	var before *cairnv1.Container
	eventually(t, "three restarts", func() bool {
		before = get(t, e, c.Id)
		return before.RestartCount >= 3 && before.PendingEvent == ""
	})
	e.Kill()
	e.Start()
	var after *cairnv1.Container
	eventually(t, "a restart after the daemon's", func() bool {
		after = get(t, e, c.Id)
		return after.RestartCount > before.RestartCount && after.PendingEvent == ""
	})
	// No restart is lost or doubled: each count's delay is the doubling
	// of the one before, across the daemon's restart too.
	if want := int64(100) << (after.RestartCount - 1); after.RestartDelayMs != min(want, 60_000) {
		t.Fatalf("restart %d after the daemon's restart waited %d ms, want %d (before: restart %d, %d ms)",
			after.RestartCount, after.RestartDelayMs, want, before.RestartCount, before.RestartDelayMs)
	}
	if intents, done := policyRestarts(t, e, c.Id); int32(done) < after.RestartCount || intents > done+1 {
		t.Fatalf("%d intents, %d done for count %d", intents, done, after.RestartCount)
	}
}

// The events stream shows policy restarts as their own event.
func TestRestartPolicy_EventsShowPolicyRestarts(t *testing.T) {
	e := scratch.NewDaemon(t)
	c := start(t, e, withPolicy(t, e, "on-failure:1", "sh", "-c", "exit 1").Id)
	ctx, cancel := context.WithTimeout(bg, 20*time.Second)
	defer cancel()
	stream, err := e.Journal.WatchEvents(ctx, connect.NewRequest(&cairnv1.WatchEventsRequest{
		Filters: []*cairnv1.EventFilter{{Key: "container", Value: c.Id}, {Key: "event", Value: "policy-restart"}},
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	var kinds []cairnv1.RecordKind
	for len(kinds) < 2 && stream.Receive() {
		if ev := stream.Msg().Event; ev != nil {
			kinds = append(kinds, ev.Kind)
		}
	}
	if len(kinds) < 2 || kinds[0] != cairnv1.RecordKind_RECORD_KIND_INTENT || kinds[1] != cairnv1.RecordKind_RECORD_KIND_DONE {
		t.Fatalf("policy-restart events %v (%v)", kinds, stream.Err())
	}
}
