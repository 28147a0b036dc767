package api

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/internal/errdefs"
	sm "github.com/cairn-run/cairn/statemachine"
)

var bg = context.Background()

func TestContainers_EveryVerbResolvesCallsAndConverts(t *testing.T) {
	r := newRig(t)
	created, err := r.Containers.Create(bg, connect.NewRequest(&cairnv1.CreateRequest{Name: "web", Image: "busybox", Command: []string{"sh"}, Env: []string{"A=1"}, AutoRemove: true}))
	if err != nil {
		t.Fatal(err)
	}
	c := created.Msg.Container
	if c.Name != "web" || c.State != cairnv1.ContainerState_CONTAINER_STATE_CREATED || c.Layers == nil || c.Layers.Rootfs != "/m/merged" || !c.AutoRemove {
		t.Fatalf("created: %v", c)
	}
	if got := r.machine.created; got.Image != "busybox" || got.Env[0] != "A=1" || !got.AutoRemove {
		t.Fatalf("the driver got %+v", got)
	}
	id := c.Id
	prefix := id[:8]
	seconds := int32(3)
	steps := []struct {
		verb  string
		call  func() (*cairnv1.Container, error)
		state cairnv1.ContainerState
	}{
		{"start", func() (*cairnv1.Container, error) {
			res, err := r.Containers.Start(bg, connect.NewRequest(&cairnv1.StartRequest{Id: "web"}))
			return msgContainer(res, err, func() *cairnv1.Container { return res.Msg.Container })
		}, cairnv1.ContainerState_CONTAINER_STATE_RUNNING},
		{"pause", func() (*cairnv1.Container, error) {
			res, err := r.Containers.Pause(bg, connect.NewRequest(&cairnv1.PauseRequest{Id: prefix}))
			return msgContainer(res, err, func() *cairnv1.Container { return res.Msg.Container })
		}, cairnv1.ContainerState_CONTAINER_STATE_PAUSED},
		{"unpause", func() (*cairnv1.Container, error) {
			res, err := r.Containers.Unpause(bg, connect.NewRequest(&cairnv1.UnpauseRequest{Id: id}))
			return msgContainer(res, err, func() *cairnv1.Container { return res.Msg.Container })
		}, cairnv1.ContainerState_CONTAINER_STATE_RUNNING},
		{"kill", func() (*cairnv1.Container, error) {
			res, err := r.Containers.Kill(bg, connect.NewRequest(&cairnv1.KillRequest{Id: id, Signal: "usr1"}))
			return msgContainer(res, err, func() *cairnv1.Container { return res.Msg.Container })
		}, cairnv1.ContainerState_CONTAINER_STATE_RUNNING},
		{"restart", func() (*cairnv1.Container, error) {
			res, err := r.Containers.Restart(bg, connect.NewRequest(&cairnv1.RestartRequest{Id: id, TimeoutSeconds: &seconds}))
			return msgContainer(res, err, func() *cairnv1.Container { return res.Msg.Container })
		}, cairnv1.ContainerState_CONTAINER_STATE_RUNNING},
		{"stop", func() (*cairnv1.Container, error) {
			res, err := r.Containers.Stop(bg, connect.NewRequest(&cairnv1.StopRequest{Id: id}))
			return msgContainer(res, err, func() *cairnv1.Container { return res.Msg.Container })
		}, cairnv1.ContainerState_CONTAINER_STATE_STOPPED},
		{"get", func() (*cairnv1.Container, error) {
			res, err := r.Containers.Get(bg, connect.NewRequest(&cairnv1.GetRequest{Id: "web"}))
			return msgContainer(res, err, func() *cairnv1.Container { return res.Msg.Container })
		}, cairnv1.ContainerState_CONTAINER_STATE_STOPPED},
	}
	for _, s := range steps {
		got, err := s.call()
		if err != nil || got.Id != id || got.State != s.state {
			t.Fatalf("%s: %v %v, want %v", s.verb, got, err, s.state)
		}
	}
	if r.machine.signal != syscall.SIGUSR1 {
		t.Errorf("kill sent %v, want SIGUSR1", r.machine.signal)
	}
	if r.machine.grace != sm.DefaultStopTimeout {
		t.Errorf("stop without a timeout used %v, want the default", r.machine.grace)
	}
	wait, err := r.Containers.Wait(bg, connect.NewRequest(&cairnv1.WaitRequest{Id: "web"}))
	if err != nil || wait.Msg.State != cairnv1.ContainerState_CONTAINER_STATE_STOPPED {
		t.Fatalf("wait: %v %v", wait, err)
	}
	removed, err := r.Containers.Remove(bg, connect.NewRequest(&cairnv1.RemoveRequest{Id: "web", Force: true}))
	if err != nil || removed.Msg.Id != id || !r.machine.force {
		t.Fatalf("remove: %v %v (force %v)", removed, err, r.machine.force)
	}
	if _, err := r.Containers.Get(bg, connect.NewRequest(&cairnv1.GetRequest{Id: id})); connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("get after remove: %v", err)
	}
}

func msgContainer[T any](res *connect.Response[T], err error, get func() *cairnv1.Container) (*cairnv1.Container, error) {
	if err != nil {
		return nil, err
	}
	return get(), nil
}

func TestContainers_BadReferencesAndArgumentsChangeNothing(t *testing.T) {
	r := newRig(t)
	c := r.machine.add(sm.Container{Name: "one", State: sm.StateRunning})
	r.machine.add(sm.Container{ID: c.ID[:60] + "ffff", State: sm.StateRunning}) // shares a 60-digit prefix
	negative := int32(-1)
	long := strings.Repeat("r", MaxRefBytes+1)
	cases := []struct {
		what string
		call func() error
		want connect.Code
	}{
		{"empty ref", func() error {
			_, err := r.Containers.Start(bg, connect.NewRequest(&cairnv1.StartRequest{}))
			return err
		}, connect.CodeInvalidArgument},
		{"overlong ref", func() error {
			_, err := r.Containers.Pause(bg, connect.NewRequest(&cairnv1.PauseRequest{Id: long}))
			return err
		}, connect.CodeInvalidArgument},
		{"unknown ref", func() error {
			_, err := r.Containers.Unpause(bg, connect.NewRequest(&cairnv1.UnpauseRequest{Id: "nobody"}))
			return err
		}, connect.CodeNotFound},
		{"ambiguous prefix", func() error {
			_, err := r.Containers.Remove(bg, connect.NewRequest(&cairnv1.RemoveRequest{Id: c.ID[:10]}))
			return err
		}, connect.CodeInvalidArgument},
		{"negative stop timeout", func() error {
			_, err := r.Containers.Stop(bg, connect.NewRequest(&cairnv1.StopRequest{Id: "one", TimeoutSeconds: &negative}))
			return err
		}, connect.CodeInvalidArgument},
		{"negative restart timeout", func() error {
			_, err := r.Containers.Restart(bg, connect.NewRequest(&cairnv1.RestartRequest{Id: "one", TimeoutSeconds: &negative}))
			return err
		}, connect.CodeInvalidArgument},
		{"unknown signal", func() error {
			_, err := r.Containers.Kill(bg, connect.NewRequest(&cairnv1.KillRequest{Id: "one", Signal: "NOPE"}))
			return err
		}, connect.CodeInvalidArgument},
		{"overlong name", func() error {
			_, err := r.Containers.Create(bg, connect.NewRequest(&cairnv1.CreateRequest{Name: long, Image: "busybox", Command: []string{"true"}}))
			return err
		}, connect.CodeInvalidArgument},
		{"overlong image", func() error {
			_, err := r.Containers.Create(bg, connect.NewRequest(&cairnv1.CreateRequest{Image: strings.Repeat("i", MaxImageRefBytes+1), Command: []string{"true"}}))
			return err
		}, connect.CodeInvalidArgument},
		{"no image", func() error {
			_, err := r.Containers.Create(bg, connect.NewRequest(&cairnv1.CreateRequest{Command: []string{"true"}}))
			return err
		}, connect.CodeInvalidArgument},
		{"wait on nobody", func() error {
			_, err := r.Containers.Wait(bg, connect.NewRequest(&cairnv1.WaitRequest{Id: "nobody"}))
			return err
		}, connect.CodeNotFound},
		{"get on nobody", func() error {
			_, err := r.Containers.Get(bg, connect.NewRequest(&cairnv1.GetRequest{Id: ""}))
			return err
		}, connect.CodeInvalidArgument},
	}
	for _, tc := range cases {
		err := tc.call()
		wantCode(t, tc.what, err, tc.want)
		if err != nil && len(err.Error()) > 300 {
			t.Errorf("%s: the error echoes %d bytes", tc.what, len(err.Error()))
		}
	}
	for _, call := range r.machine.called() {
		if !strings.HasPrefix(call, "create") {
			t.Errorf("a refused request reached the driver: %s", call)
		}
	}
}

func TestContainers_DriverErrorsKeepTheirCodes(t *testing.T) {
	r := newRig(t)
	r.machine.add(sm.Container{Name: "c", State: sm.StateRunning})
	for verb, err := range map[string]error{
		"create":  fmt.Errorf("name taken: %w", errdefs.ErrAlreadyExists),
		"start":   fmt.Errorf("exec: %w", errdefs.ErrCommandNotFound),
		"stop":    fmt.Errorf("journal: %w", errdefs.ErrUnavailable),
		"kill":    fmt.Errorf("not running: %w", errdefs.ErrFailedPrecondition),
		"pause":   fmt.Errorf("not running: %w", errdefs.ErrFailedPrecondition),
		"unpause": errBoom,
		"restart": fmt.Errorf("disk: %w", errdefs.ErrResourceExhausted),
		"remove":  fmt.Errorf("running: %w", errdefs.ErrFailedPrecondition),
		"wait":    context.DeadlineExceeded,
	} {
		r.machine.fail[verb] = err
	}
	cases := []struct {
		verb string
		call func() error
		want connect.Code
	}{
		{"create", func() error {
			_, err := r.Containers.Create(bg, connect.NewRequest(&cairnv1.CreateRequest{Image: "busybox", Command: []string{"true"}}))
			return err
		}, connect.CodeAlreadyExists},
		{"start", func() error {
			_, err := r.Containers.Start(bg, connect.NewRequest(&cairnv1.StartRequest{Id: "c"}))
			return err
		}, connect.CodeInvalidArgument},
		{"stop", func() error {
			_, err := r.Containers.Stop(bg, connect.NewRequest(&cairnv1.StopRequest{Id: "c"}))
			return err
		}, connect.CodeUnavailable},
		{"kill", func() error {
			_, err := r.Containers.Kill(bg, connect.NewRequest(&cairnv1.KillRequest{Id: "c"}))
			return err
		}, connect.CodeFailedPrecondition},
		{"pause", func() error {
			_, err := r.Containers.Pause(bg, connect.NewRequest(&cairnv1.PauseRequest{Id: "c"}))
			return err
		}, connect.CodeFailedPrecondition},
		{"unpause", func() error {
			_, err := r.Containers.Unpause(bg, connect.NewRequest(&cairnv1.UnpauseRequest{Id: "c"}))
			return err
		}, connect.CodeInternal},
		{"restart", func() error {
			_, err := r.Containers.Restart(bg, connect.NewRequest(&cairnv1.RestartRequest{Id: "c"}))
			return err
		}, connect.CodeResourceExhausted},
		{"remove", func() error {
			_, err := r.Containers.Remove(bg, connect.NewRequest(&cairnv1.RemoveRequest{Id: "c"}))
			return err
		}, connect.CodeFailedPrecondition},
		{"wait", func() error {
			_, err := r.Containers.Wait(bg, connect.NewRequest(&cairnv1.WaitRequest{Id: "c"}))
			return err
		}, connect.CodeDeadlineExceeded},
	}
	for _, tc := range cases {
		wantCode(t, tc.verb, tc.call(), tc.want)
	}
}

func TestContainers_ListShowsRunningOrAll(t *testing.T) {
	r := newRig(t)
	code := 3
	r.machine.add(sm.Container{Name: "up", State: sm.StateRunning, Process: &sm.Process{PID: 42, StartTime: 7, ShimPID: 41}, StartedAt: time.Now()})
	r.machine.add(sm.Container{Name: "paused", State: sm.StatePaused})
	r.machine.add(sm.Container{Name: "done", State: sm.StateStopped, Exit: &sm.Exit{Code: &code, Reason: "exited"}, MountID: fakeID(99)})
	r.machine.add(sm.Container{Name: "unknown-mount", State: sm.StateCreated, MountID: fakeID(98)})
	r.machine.add(sm.Container{Name: "in-flight", State: sm.StateNone})
	r.machine.add(sm.Container{Name: "pending", State: sm.StateRunning, Pending: &sm.Pending{Event: sm.EventStop}})
	names := func(all bool) map[string]*cairnv1.Container {
		res, err := r.Containers.List(bg, connect.NewRequest(&cairnv1.ListRequest{All: all}))
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]*cairnv1.Container{}
		for _, c := range res.Msg.Containers {
			out[c.Name] = c
		}
		return out
	}
	running := names(false)
	if len(running) != 3 || running["up"] == nil || running["paused"] == nil || running["pending"] == nil {
		t.Fatalf("running: %v", running)
	}
	if up := running["up"]; up.Pid != 42 || up.PidStartTime != 7 || up.ShimPid != 41 || up.StartedAt == nil || up.FinishedAt != nil {
		t.Errorf("up: %v", up)
	}
	if running["pending"].PendingEvent != string(sm.EventStop) {
		t.Errorf("pending: %v", running["pending"])
	}
	all := names(true)
	if len(all) != 5 || all["in-flight"] != nil {
		t.Fatalf("all: %v", all)
	}
	if done := all["done"]; done.ExitCode == nil || *done.ExitCode != 3 || done.ExitReason != "exited" || done.Layers == nil {
		t.Errorf("done: %v", done)
	}
	if all["unknown-mount"].Layers != nil {
		t.Errorf("a mount the store does not know has layers: %v", all["unknown-mount"])
	}
}
