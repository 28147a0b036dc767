package statemachine_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-run/cairn/internal/errdefs"
	sm "github.com/cairn-run/cairn/statemachine"
)

var bg = context.Background()

func kinds(t *testing.T, h *harness, id string) []string {
	t.Helper()
	var out []string
	err := h.j.Records(0, id, func(r sm.Record) error {
		out = append(out, fmt.Sprintf("%s %s", r.Kind, r.Event))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestMachine_LifecycleRecordsIntentBeforeDone(t *testing.T) {
	h := newHarness(t)
	c := h.create(t, "web")
	if c.State != sm.StateCreated || c.Hostname != c.ID[:12] || len(c.ID) != 64 {
		t.Fatalf("created: %+v", c)
	}
	c, err := h.m.Start(bg, c.ID)
	if err != nil || c.State != sm.StateRunning || c.Process == nil || !h.w.isMounted(c.MountID) {
		t.Fatalf("start: %+v %v", c, err)
	}
	if c, err = h.m.Pause(bg, c.ID); err != nil || c.State != sm.StatePaused {
		t.Fatalf("pause: %+v %v", c, err)
	}
	if c, err = h.m.Stop(bg, c.ID, time.Second); err != nil || c.State != sm.StateStopped {
		t.Fatalf("stop: %+v %v", c, err)
	}
	if c.Exit == nil || *c.Exit.Code != 128+int(syscall.SIGTERM) || h.w.isMounted(c.MountID) {
		t.Fatalf("stop result: %+v mounted=%v", c.Exit, h.w.isMounted(c.MountID))
	}
	if _, err := h.m.Remove(bg, c.ID, false); err != nil {
		t.Fatal(err)
	}
	want := []string{"INTENT create", "DONE create", "INTENT start", "DONE start", "INTENT pause", "DONE pause", "INTENT stop", "DONE stop", "INTENT remove", "DONE remove"}
	if got := kinds(t, h, c.ID); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("journal:\n got %v\nwant %v", got, want)
	}
}

func TestMachine_IllegalTransitionChangesNothing(t *testing.T) {
	h := newHarness(t)
	c := h.create(t, "")
	before := h.j.LastSeq()
	calls := map[string]func() error{
		"pause":   func() error { _, err := h.m.Pause(bg, c.ID); return err },
		"unpause": func() error { _, err := h.m.Unpause(bg, c.ID); return err },
		"stop":    func() error { _, err := h.m.Stop(bg, c.ID, time.Second); return err },
		"kill":    func() error { _, err := h.m.Kill(bg, c.ID, syscall.SIGKILL); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, errdefs.ErrFailedPrecondition) {
			t.Errorf("%s of a created container: got %v, want FailedPrecondition", name, err)
		}
	}
	if h.j.LastSeq() != before {
		t.Fatalf("illegal transitions wrote to the journal: %d -> %d", before, h.j.LastSeq())
	}
	if _, err := h.m.Start(bg, c.ID); err != nil {
		t.Fatal(err)
	}
	before = h.j.LastSeq()
	if _, err := h.m.Remove(bg, c.ID, false); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("remove of a running container without force: %v", err)
	}
	if _, err := h.m.Start(bg, c.ID); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("start of a running container: %v", err)
	}
	if h.j.LastSeq() != before {
		t.Fatalf("illegal transitions wrote to the journal: %d -> %d", before, h.j.LastSeq())
	}
	if _, err := h.m.Remove(bg, c.ID, true); err != nil {
		t.Fatalf("force remove: %v", err)
	}
}

func TestMachine_BadCreateChangesNothing(t *testing.T) {
	h := newHarness(t)
	h.create(t, "taken")
	before := h.j.LastSeq()
	cases := []struct {
		req  sm.CreateRequest
		want error
	}{
		{sm.CreateRequest{Image: "busybox"}, errdefs.ErrInvalidArgument},
		{sm.CreateRequest{Image: "busybox", Command: []string{"sh"}, Name: "-bad"}, errdefs.ErrInvalidArgument},
		{sm.CreateRequest{Image: "busybox", Command: []string{"sh"}, Name: "a/b"}, errdefs.ErrInvalidArgument},
		{sm.CreateRequest{Image: "nope", Command: []string{"sh"}}, errdefs.ErrNotFound},
		{sm.CreateRequest{Image: "busybox", Command: []string{"sh"}, Name: "taken"}, errdefs.ErrAlreadyExists},
		{sm.CreateRequest{Image: "busybox", Command: []string{"sh"}, Env: []string{"NOEQUALS"}}, errdefs.ErrInvalidArgument},
	}
	for _, tc := range cases {
		if _, err := h.m.Create(bg, tc.req); !errors.Is(err, tc.want) {
			t.Errorf("%+v: got %v, want %v", tc.req, err, tc.want)
		}
	}
	if h.j.LastSeq() != before {
		t.Fatal("refused creates wrote to the journal")
	}
}

func TestMachine_FailedStartIsRecordedAndUndone(t *testing.T) {
	h := newHarness(t)
	c := h.create(t, "")
	h.w.failStart = errors.New("exec: no such file")
	if _, err := h.m.Start(bg, c.ID); err == nil {
		t.Fatal("start succeeded")
	}
	got, _ := h.j.Container(c.ID)
	if got.State != sm.StateCreated || got.Pending != nil || h.w.isMounted(c.MountID) {
		t.Fatalf("after failed start: %+v mounted=%v", got, h.w.isMounted(c.MountID))
	}
	if k := kinds(t, h, c.ID); k[len(k)-1] != "FAILED start" {
		t.Fatalf("journal ends with %v", k)
	}
}

func TestMachine_ObservedExitIsRecordedWithItsCode(t *testing.T) {
	h := newHarness(t)
	c := h.create(t, "")
	c, _ = h.m.Start(bg, c.ID)
	h.w.exit(c.Process.PID, 3)
	ctx, cancel := context.WithTimeout(bg, 5*time.Second)
	defer cancel()
	got, err := h.m.Wait(ctx, c.ID)
	if err != nil || got.State != sm.StateStopped || got.Exit == nil || *got.Exit.Code != 3 {
		t.Fatalf("wait: %+v %v", got, err)
	}
	if h.w.isMounted(c.MountID) {
		t.Fatal("rootfs still mounted after exit")
	}
}

func TestMachine_StopEscalatesToKillAfterTimeout(t *testing.T) {
	h := newHarness(t)
	h.w.ignoreSig[syscall.SIGTERM] = true
	c := h.create(t, "")
	c, _ = h.m.Start(bg, c.ID)
	c, err := h.m.Stop(bg, c.ID, 50*time.Millisecond)
	if err != nil || *c.Exit.Code != 137 {
		t.Fatalf("stop: %+v %v", c.Exit, err)
	}
}

func TestMachine_AutoRemoveAfterExitAndWaitStillSeesTheCode(t *testing.T) {
	h := newHarness(t)
	c, err := h.m.Create(bg, sm.CreateRequest{Image: "busybox", Command: []string{"true"}, AutoRemove: true, Name: "gone"})
	if err != nil {
		t.Fatal(err)
	}
	c, _ = h.m.Start(bg, c.ID)
	h.w.exit(c.Process.PID, 7)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, ok := h.j.Container(c.ID); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("auto-remove did not happen")
		}
		time.Sleep(5 * time.Millisecond)
	}
	got, err := h.m.Wait(bg, c.ID)
	if err != nil || got.State != sm.StateRemoved || got.Exit == nil || *got.Exit.Code != 7 {
		t.Fatalf("wait on removed: %+v %v", got, err)
	}
	if _, ok := h.j.IDByName("gone"); ok {
		t.Fatal("name still taken after auto-remove")
	}
}

func TestMachine_RestartKeepsContainerAndStartsNewProcess(t *testing.T) {
	h := newHarness(t)
	c := h.create(t, "")
	c, _ = h.m.Start(bg, c.ID)
	first := c.Process.PID
	c, err := h.m.Restart(bg, c.ID, time.Second)
	if err != nil || c.State != sm.StateRunning || c.Process.PID == first || c.RestartCount != 0 {
		t.Fatalf("restart: %+v %v", c, err)
	}
}

func TestMachine_ConcurrentCreatesOfOneNameLetOneWin(t *testing.T) {
	h := newHarness(t)
	var wins, taken atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := h.m.Create(bg, sm.CreateRequest{Name: "one", Image: "busybox", Command: []string{"sh"}})
			switch {
			case err == nil:
				wins.Add(1)
			case errors.Is(err, errdefs.ErrAlreadyExists):
				taken.Add(1)
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 || taken.Load() != 15 {
		t.Fatalf("wins %d, taken %d", wins.Load(), taken.Load())
	}
}

func TestMachine_RacingTransitionsOnOneContainerStayConsistent(t *testing.T) {
	h := newHarness(t)
	c := h.create(t, "")
	ops := []func() error{
		func() error { _, err := h.m.Start(bg, c.ID); return err },
		func() error { _, err := h.m.Stop(bg, c.ID, 10*time.Millisecond); return err },
		func() error { _, err := h.m.Pause(bg, c.ID); return err },
		func() error { _, err := h.m.Unpause(bg, c.ID); return err },
		func() error { _, err := h.m.Restart(bg, c.ID, 10*time.Millisecond); return err },
		func() error { _, err := h.m.Kill(bg, c.ID, syscall.SIGUSR1); return err },
	}
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				err := ops[(g+i)%len(ops)]()
				if err != nil && !errors.Is(err, errdefs.ErrFailedPrecondition) {
					t.Errorf("unexpected error: %v", err)
				}
			}
		}()
	}
	wg.Wait()
	got, _ := h.j.Container(c.ID)
	if got.Pending != nil {
		t.Fatalf("pending intent left: %+v", got.Pending)
	}
	if got.State.HasProcess() != (got.Process != nil) || got.State.HasProcess() != h.w.isMounted(c.MountID) {
		t.Fatalf("state %s, process %+v, mounted %v", got.State, got.Process, h.w.isMounted(c.MountID))
	}
}
