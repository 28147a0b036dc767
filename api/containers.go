package api

import (
	"context"
	"fmt"
	"syscall"
	"time"

	"connectrpc.com/connect"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/internal/errdefs"
	"github.com/cairn-run/cairn/layer"
	sm "github.com/cairn-run/cairn/statemachine"
)

// Lifecycle is the port to the transition driver: the methods of
// *statemachine.Machine the container handlers call. Every lifecycle verb
// is journaled behind it; the handlers only resolve, convert and map errors.
type Lifecycle interface {
	Create(ctx context.Context, req sm.CreateRequest) (sm.Container, error)
	// Run creates and starts a container; started is called with the
	// running container before its exit can be recorded or it removed.
	Run(ctx context.Context, req sm.CreateRequest, started func(sm.Container)) (sm.Container, error)
	Start(ctx context.Context, id string) (sm.Container, error)
	Stop(ctx context.Context, id string, grace time.Duration) (sm.Container, error)
	Kill(ctx context.Context, id string, sig syscall.Signal) (sm.Container, error)
	Pause(ctx context.Context, id string) (sm.Container, error)
	Unpause(ctx context.Context, id string) (sm.Container, error)
	Restart(ctx context.Context, id string, grace time.Duration) (sm.Container, error)
	Remove(ctx context.Context, id string, force bool) (sm.Container, error)
	// Wait blocks until the container is not running and returns its last
	// view (a removed container's from memory).
	Wait(ctx context.Context, id string) (sm.Container, error)
	// Changes is closed at the container's next finished transition.
	Changes(id string) <-chan struct{}
	// Settle waits until no transition holds the container.
	Settle(id string)
}

// View is the read side of the journal that the handlers use.
type View interface {
	Resolve(ref string) (string, error)
	Container(id string) (sm.Container, bool)
	Containers() []sm.Container
}

// MountLookup finds the layer paths of a container's mount.
type MountLookup interface {
	MountInfo(mountID string) (layer.Mount, error)
}

// ContainerServer implements cairn.v1.ContainerService.
type ContainerServer struct {
	Machine  Lifecycle
	View     View
	Mounts   MountLookup
	LogFiles LogPaths
	// LogPoll is how often a followed log is checked for new output.
	LogPoll time.Duration
	// Networks, if set, checks creates' network settings and shows
	// attachments; DefaultNetwork is the mode of a create that names none.
	Networks       Networks
	DefaultNetwork string
	// Stdio, Execs and ExecView serve attach, exec, resize and top (see
	// exec.go); without them those calls are FAILED_PRECONDITION.
	Stdio    Stdio
	Execs    ExecDriver
	ExecView ExecView
	// VolumeDir, if set, is where a volume's data is on the host, shown
	// in an inspected container's mounts.
	VolumeDir func(name string) string
}

func (s *ContainerServer) resolve(ref string) (string, error) {
	if err := checkRef(ref); err != nil {
		return "", toConnect(err)
	}
	id, err := s.View.Resolve(ref)
	return id, toConnect(err)
}

func (s *ContainerServer) toProto(c sm.Container) *cairnv1.Container {
	var m *layer.Mount
	if c.MountID != "" && c.State != sm.StateRemoved {
		if info, err := s.Mounts.MountInfo(c.MountID); err == nil {
			m = &info
		}
	}
	out := containerToProto(c, m)
	if s.Networks != nil {
		if v, ok := s.Networks.NetAttachment(c.ID); ok {
			out.Network = attachmentToProto(v)
		}
	}
	if s.ExecView != nil {
		for _, x := range s.ExecView.Execs(c.ID) {
			out.ExecIds = append(out.ExecIds, x.ID)
		}
	}
	return out
}

// do resolves ref and runs one lifecycle verb on it.
func (s *ContainerServer) do(ref string, verb func(id string) (sm.Container, error)) (*cairnv1.Container, error) {
	id, err := s.resolve(ref)
	if err != nil {
		return nil, err
	}
	c, err := verb(id)
	if err != nil {
		return nil, toConnect(err)
	}
	return s.toProto(c), nil
}

func timeout(seconds *int32) (time.Duration, error) {
	if seconds == nil {
		return sm.DefaultStopTimeout, nil
	}
	if *seconds < 0 {
		return 0, toConnect(fmt.Errorf("timeout %d is negative: %w", *seconds, errdefs.ErrInvalidArgument))
	}
	return time.Duration(*seconds) * time.Second, nil
}

func (s *ContainerServer) Create(ctx context.Context, req *connect.Request[cairnv1.CreateRequest]) (*connect.Response[cairnv1.CreateResponse], error) {
	m := req.Msg
	if err := checkCreate(m.Name, m.Image); err != nil {
		return nil, toConnect(err)
	}
	creq := createRequest(m)
	if err := withNetwork(&creq, m, s.Networks, s.DefaultNetwork); err != nil {
		return nil, toConnect(err)
	}
	c, err := s.Machine.Create(ctx, creq)
	if err != nil {
		return nil, toConnect(err)
	}
	return connect.NewResponse(&cairnv1.CreateResponse{Container: s.toProto(c)}), nil
}

func (s *ContainerServer) Start(ctx context.Context, req *connect.Request[cairnv1.StartRequest]) (*connect.Response[cairnv1.StartResponse], error) {
	c, err := s.do(req.Msg.Id, func(id string) (sm.Container, error) { return s.Machine.Start(ctx, id) })
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&cairnv1.StartResponse{Container: c}), nil
}

func (s *ContainerServer) Stop(ctx context.Context, req *connect.Request[cairnv1.StopRequest]) (*connect.Response[cairnv1.StopResponse], error) {
	grace, err := timeout(req.Msg.TimeoutSeconds)
	if err != nil {
		return nil, err
	}
	c, err := s.do(req.Msg.Id, func(id string) (sm.Container, error) { return s.Machine.Stop(ctx, id, grace) })
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&cairnv1.StopResponse{Container: c}), nil
}

func (s *ContainerServer) Kill(ctx context.Context, req *connect.Request[cairnv1.KillRequest]) (*connect.Response[cairnv1.KillResponse], error) {
	sig, err := sm.ParseSignal(req.Msg.Signal)
	if err != nil {
		return nil, toConnect(err)
	}
	c, err := s.do(req.Msg.Id, func(id string) (sm.Container, error) { return s.Machine.Kill(ctx, id, sig) })
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&cairnv1.KillResponse{Container: c}), nil
}

func (s *ContainerServer) Pause(ctx context.Context, req *connect.Request[cairnv1.PauseRequest]) (*connect.Response[cairnv1.PauseResponse], error) {
	c, err := s.do(req.Msg.Id, func(id string) (sm.Container, error) { return s.Machine.Pause(ctx, id) })
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&cairnv1.PauseResponse{Container: c}), nil
}

func (s *ContainerServer) Unpause(ctx context.Context, req *connect.Request[cairnv1.UnpauseRequest]) (*connect.Response[cairnv1.UnpauseResponse], error) {
	c, err := s.do(req.Msg.Id, func(id string) (sm.Container, error) { return s.Machine.Unpause(ctx, id) })
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&cairnv1.UnpauseResponse{Container: c}), nil
}

func (s *ContainerServer) Restart(ctx context.Context, req *connect.Request[cairnv1.RestartRequest]) (*connect.Response[cairnv1.RestartResponse], error) {
	grace, err := timeout(req.Msg.TimeoutSeconds)
	if err != nil {
		return nil, err
	}
	c, err := s.do(req.Msg.Id, func(id string) (sm.Container, error) { return s.Machine.Restart(ctx, id, grace) })
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&cairnv1.RestartResponse{Container: c}), nil
}

func (s *ContainerServer) Remove(ctx context.Context, req *connect.Request[cairnv1.RemoveRequest]) (*connect.Response[cairnv1.RemoveResponse], error) {
	remove := func(id string) (sm.Container, error) { return s.Machine.Remove(ctx, id, req.Msg.Force) }
	if req.Msg.RemoveVolumes {
		m, ok := s.Machine.(volumeRemover)
		if !ok {
			return nil, toConnect(fmt.Errorf("this daemon cannot remove volumes with a container: %w", errdefs.ErrInvalidArgument))
		}
		remove = func(id string) (sm.Container, error) {
			return m.RemoveWith(ctx, id, sm.RemoveOptions{Force: req.Msg.Force, Volumes: true})
		}
	}
	c, err := s.do(req.Msg.Id, remove)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&cairnv1.RemoveResponse{Id: c.Id}), nil
}

func (s *ContainerServer) Get(ctx context.Context, req *connect.Request[cairnv1.GetRequest]) (*connect.Response[cairnv1.GetResponse], error) {
	c, err := s.do(req.Msg.Id, func(id string) (sm.Container, error) {
		c, ok := s.View.Container(id)
		if !ok {
			return c, fmt.Errorf("no such container: %s: %w", id, errdefs.ErrNotFound)
		}
		return c, nil
	})
	if err != nil {
		return nil, err
	}
	for _, m := range c.Mounts {
		if m.Type == cairnv1.MountType_MOUNT_TYPE_VOLUME && s.VolumeDir != nil {
			m.HostPath = s.VolumeDir(m.Source)
		}
	}
	return connect.NewResponse(&cairnv1.GetResponse{Container: c}), nil
}

func (s *ContainerServer) List(ctx context.Context, req *connect.Request[cairnv1.ListRequest]) (*connect.Response[cairnv1.ListResponse], error) {
	out := &cairnv1.ListResponse{}
	for _, c := range s.View.Containers() {
		if c.State == sm.StateNone || (!req.Msg.All && !c.State.HasProcess()) {
			continue
		}
		out.Containers = append(out.Containers, s.toProto(c))
	}
	return connect.NewResponse(out), nil
}

func (s *ContainerServer) Wait(ctx context.Context, req *connect.Request[cairnv1.WaitRequest]) (*connect.Response[cairnv1.WaitResponse], error) {
	id, err := s.resolve(req.Msg.Id)
	if err != nil {
		return nil, err
	}
	var c sm.Container
	switch req.Msg.Condition {
	case cairnv1.WaitCondition_WAIT_CONDITION_UNSPECIFIED, cairnv1.WaitCondition_WAIT_CONDITION_NOT_RUNNING:
		c, err = s.Machine.Wait(ctx, id)
	case cairnv1.WaitCondition_WAIT_CONDITION_NEXT_EXIT:
		c, err = s.waitNextExit(ctx, id)
	case cairnv1.WaitCondition_WAIT_CONDITION_REMOVED:
		c, err = s.waitRemoved(ctx, id)
	default:
		err = fmt.Errorf("unknown wait condition %d: %w", req.Msg.Condition, errdefs.ErrInvalidArgument)
	}
	if err != nil {
		return nil, toConnect(err)
	}
	return connect.NewResponse(waitToProto(c)), nil
}

// waitNextExit waits for the container's first exit after the call: its
// state stopped with a finish time other than the one it had.
func (s *ContainerServer) waitNextExit(ctx context.Context, id string) (sm.Container, error) {
	before, _ := s.View.Container(id)
	for {
		changed := s.Machine.Changes(id)
		c, ok := s.View.Container(id)
		if !ok {
			return s.Machine.Wait(ctx, id) // removed: its last view
		}
		if c.State == sm.StateStopped && c.Pending == nil && !c.FinishedAt.Equal(before.FinishedAt) {
			return c, nil
		}
		select {
		case <-ctx.Done():
			return sm.Container{}, ctx.Err()
		case <-changed:
		}
	}
}

// waitRemoved waits until the container is removed.
func (s *ContainerServer) waitRemoved(ctx context.Context, id string) (sm.Container, error) {
	for {
		changed := s.Machine.Changes(id)
		if _, ok := s.View.Container(id); !ok {
			c, err := s.Machine.Wait(ctx, id)
			c.State = sm.StateRemoved
			return c, err
		}
		select {
		case <-ctx.Done():
			return sm.Container{}, ctx.Err()
		case <-changed:
		}
	}
}
