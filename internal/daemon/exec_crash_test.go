package daemon_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/internal/testenv"
	"github.com/cairn-run/cairn/internal/testenv/scratch"
	sm "github.com/cairn-run/cairn/statemachine"
)

// TestCrashPoints_ExecSessionsNoneLostNoneLeaked kills cairnd at every
// crash point of an exec session's start and exit, and holds recovery to
// this: the session is gone only when its process never started (a crash
// right after the intent); otherwise it ends exited with its own code,
// nothing of it is pending, its exit record is released, and no process of
// it is left in the container.
func TestCrashPoints_ExecSessionsNoneLostNoneLeaked(t *testing.T) {
	testenv.RequireRoot(t)
	for _, point := range sm.ExecCrashPoints() {
		t.Run(point, func(t *testing.T) {
			t.Parallel()
			e := scratch.NewBinaryDaemon(t)
			c := runDetached(t, e, "sleep", "600")
			e.Stop()
			e.StartWith("CAIRN_CRASH_AT=" + point)
			e.WaitServing()
			ctx, cancel := context.WithTimeout(bg, 30*time.Second)
			defer cancel()
			stream := e.Containers.Exec(ctx)
			_ = stream.Send(&cairnv1.ExecRequest{Start: &cairnv1.ExecStart{Container: c.Id, Command: []string{"sh", "-c", "sleep 0.3; exit 7"}, Detach: true}})
			_, _ = stream.Receive()
			e.WaitCrash(30 * time.Second)
			_ = stream.CloseResponse()
			time.Sleep(500 * time.Millisecond) // the session ends while cairnd is down, or just after
			e.Start()
			ids := get(t, e, c.Id).ExecIds
			switch {
			case point == "exec.after-intent" && len(ids) == 0:
				// Rolled back: the shim never started it.
			case len(ids) != 1:
				t.Fatalf("after a crash at %s the container has %d exec sessions", point, len(ids))
			default:
				eventually(t, "the session's exit recorded", func() bool {
					s := execInspect(t, e, ids[0])
					return s.State == cairnv1.ExecState_EXEC_STATE_EXITED && s.PendingEvent == ""
				})
				if s := execInspect(t, e, ids[0]); s.ExitCode == nil || *s.ExitCode != 7 {
					t.Errorf("after a crash at %s the session exited %v (%s), want 7", point, s.ExitCode, s.ExitReason)
				}
			}
			eventually(t, "the exit records released", func() bool {
				left, _ := filepath.Glob(filepath.Join(e.Config.Root, "exec", "containers", c.Id, "execs", "*"))
				return len(left) == 0
			})
			top, err := e.Containers.Top(context.Background(), connect.NewRequest(&cairnv1.TopRequest{Id: c.Id}))
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range top.Msg.Processes {
				if args := strings.Join(p.Args, " "); args != "sleep 600" {
					t.Errorf("after a crash at %s a process of the session is left: %d %s", point, p.Pid, args)
				}
			}
			assertWorldMatchesJournal(t, e)
		})
	}
}
