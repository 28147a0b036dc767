package api

import (
	"context"

	"connectrpc.com/connect"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	sm "github.com/cairn-run/cairn/statemachine"
)

// RestartPolicies is the port to the driver's restart policy verb.
type RestartPolicies interface {
	SetRestartPolicy(ctx context.Context, id string, p sm.RestartPolicy) (sm.Container, error)
}

// RestartPolicyServer implements cairn.v1.RestartPolicyService.
type RestartPolicyServer struct {
	Machine    RestartPolicies
	Containers *ContainerServer // resolution and the view's conversion
}

func (s *RestartPolicyServer) UpdateRestartPolicy(ctx context.Context, req *connect.Request[cairnv1.UpdateRestartPolicyRequest]) (*connect.Response[cairnv1.UpdateRestartPolicyResponse], error) {
	p, err := sm.ParseRestartPolicy(req.Msg.RestartPolicy)
	if err != nil {
		return nil, toConnect(err)
	}
	c, err := s.Containers.do(req.Msg.Id, func(id string) (sm.Container, error) { return s.Machine.SetRestartPolicy(ctx, id, p) })
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&cairnv1.UpdateRestartPolicyResponse{Container: c}), nil
}

// restartPolicyOf reads a create's policy. One that does not parse is kept
// as given, so that the create refuses it with its reason (InvalidArgument)
// where every other field is checked.
func restartPolicyOf(s string) sm.RestartPolicy {
	p, err := sm.ParseRestartPolicy(s)
	if err != nil {
		return sm.RestartPolicy{Name: s}
	}
	return p
}
