package api

import (
	"context"

	"connectrpc.com/connect"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/volumes"
)

// VolumeService is the port to the volume service (package volumes) the
// volume handlers use. Every change behind it is journaled.
type VolumeService interface {
	Create(ctx context.Context, name string, labels map[string]string) (volumes.Volume, error)
	Get(name string) (volumes.Volume, error)
	List() []volumes.Volume
	Remove(ctx context.Context, name string, force bool) (bool, error)
	Prune(ctx context.Context, all bool) ([]string, error)
}

// VolumeServer implements cairn.v1.VolumeService.
type VolumeServer struct {
	Volumes VolumeService
}

func (s *VolumeServer) Create(ctx context.Context, req *connect.Request[cairnv1.VolumeServiceCreateRequest]) (*connect.Response[cairnv1.VolumeServiceCreateResponse], error) {
	v, err := s.Volumes.Create(ctx, req.Msg.Name, req.Msg.Labels)
	if err != nil {
		return nil, toConnect(err)
	}
	return connect.NewResponse(&cairnv1.VolumeServiceCreateResponse{Volume: volumeToProto(v)}), nil
}

func (s *VolumeServer) List(_ context.Context, _ *connect.Request[cairnv1.VolumeServiceListRequest]) (*connect.Response[cairnv1.VolumeServiceListResponse], error) {
	out := &cairnv1.VolumeServiceListResponse{}
	for _, v := range s.Volumes.List() {
		out.Volumes = append(out.Volumes, volumeToProto(v))
	}
	return connect.NewResponse(out), nil
}

func (s *VolumeServer) Get(_ context.Context, req *connect.Request[cairnv1.VolumeServiceGetRequest]) (*connect.Response[cairnv1.VolumeServiceGetResponse], error) {
	v, err := s.Volumes.Get(req.Msg.Name)
	if err != nil {
		return nil, toConnect(err)
	}
	return connect.NewResponse(&cairnv1.VolumeServiceGetResponse{Volume: volumeToProto(v)}), nil
}

func (s *VolumeServer) Remove(ctx context.Context, req *connect.Request[cairnv1.VolumeServiceRemoveRequest]) (*connect.Response[cairnv1.VolumeServiceRemoveResponse], error) {
	removed, err := s.Volumes.Remove(ctx, req.Msg.Name, req.Msg.Force)
	if err != nil {
		return nil, toConnect(err)
	}
	out := &cairnv1.VolumeServiceRemoveResponse{}
	if removed {
		out.Name = req.Msg.Name
	}
	return connect.NewResponse(out), nil
}

func (s *VolumeServer) Prune(ctx context.Context, req *connect.Request[cairnv1.VolumeServicePruneRequest]) (*connect.Response[cairnv1.VolumeServicePruneResponse], error) {
	removed, err := s.Volumes.Prune(ctx, req.Msg.All)
	if err != nil {
		return nil, toConnect(err)
	}
	return connect.NewResponse(&cairnv1.VolumeServicePruneResponse{Removed: removed}), nil
}

func volumeToProto(v volumes.Volume) *cairnv1.Volume {
	return &cairnv1.Volume{Name: v.Name, Driver: "local", Mountpoint: v.Mountpoint, Labels: v.Labels, Anonymous: v.Anonymous,
		CreatedAt: timestamp(v.CreatedAt), UsedBy: v.UsedBy, PendingEvent: string(v.Pending)}
}
