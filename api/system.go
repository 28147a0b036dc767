package api

import (
	"context"
	"errors"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/internal/buildinfo"
	"github.com/cairn-run/cairn/internal/sysinfo"
	sm "github.com/cairn-run/cairn/statemachine"
)

// Version is the version of the cairn.v1 API this daemon serves: the minor
// number grows with every compatible change (2: the Import end message,
// ErrorInfo details and SystemService; 3: Info, DiskUsage, and
// side-effect-free calls over HTTP GET; 4: pull, push, save, commit and
// export, networks, attach, exec, resize and top, log entries with their
// stream and time, wait conditions).
const Version = "1.4"

// SystemServer implements cairn.v1.SystemService. It is not behind the
// recovery gate: a version is static and touches no container, and it is
// what an operator asks first of a daemon that seems stuck recovering.
type SystemServer struct {
	Build buildinfo.Info
	// Facts, if set, answers Info and DiskUsage.
	Facts SystemFacts
}

func (s *SystemServer) Version(context.Context, *connect.Request[cairnv1.VersionRequest]) (*connect.Response[cairnv1.VersionResponse], error) {
	return connect.NewResponse(&cairnv1.VersionResponse{Daemon: BuildInfoToProto(s.Build), ApiVersion: Version}), nil
}

// BuildInfoToProto converts a binary's build info.
func BuildInfoToProto(b buildinfo.Info) *cairnv1.BuildInfo {
	return &cairnv1.BuildInfo{Version: b.Version, Revision: b.Revision, Time: b.Time, Modified: b.Modified, GoVersion: b.GoVersion}
}

// SystemFacts gathers what Info and DiskUsage report.
type SystemFacts interface {
	Info(ctx context.Context) (sysinfo.Info, error)
	DiskUsage(ctx context.Context) (sysinfo.DiskUsage, error)
}

func (s *SystemServer) Info(ctx context.Context, _ *connect.Request[cairnv1.InfoRequest]) (*connect.Response[cairnv1.InfoResponse], error) {
	if s.Facts == nil {
		return nil, connect.NewError(connect.CodeUnimplemented, errors.New("this daemon does not report its info"))
	}
	info, err := s.Facts.Info(ctx)
	if err != nil {
		return nil, toConnect(err)
	}
	r := info.LastRecovery
	return connect.NewResponse(&cairnv1.InfoResponse{
		Daemon: BuildInfoToProto(s.Build), ApiVersion: Version,
		Root: info.Root, JournalPath: info.JournalPath, JournalBytes: info.JournalBytes, JournalRecords: info.JournalRecords,
		Containers: info.Containers, Images: info.Images, Layers: info.Layers, LayerBytes: info.LayerBytes, Shims: info.Shims,
		CgroupVersion: info.Host.CgroupVersion, KernelVersion: info.Host.Kernel, OperatingSystem: info.Host.OS,
		Architecture: info.Host.Architecture, Cpus: info.Host.CPUs, MemoryBytes: info.Host.MemoryBytes,
		StartedAt: timestamp(info.StartedAt), Recovering: info.Recovering,
		LastRecovery: &cairnv1.RecoveryInfo{
			CleanShutdown: r.CleanShutdown, Rebooted: r.Rebooted, Duration: durationpb.New(r.Duration),
			Containers: r.Containers, Images: r.Images, Actions: r.Actions, UnknownExits: r.UnknownExits, Error: r.Err,
		},
	}), nil
}

func (s *SystemServer) DiskUsage(ctx context.Context, req *connect.Request[cairnv1.DiskUsageRequest]) (*connect.Response[cairnv1.DiskUsageResponse], error) {
	if s.Facts == nil {
		return nil, connect.NewError(connect.CodeUnimplemented, errors.New("this daemon does not report its disk usage"))
	}
	du, err := s.Facts.DiskUsage(ctx)
	if err != nil {
		return nil, toConnect(err)
	}
	summary := func(x sysinfo.Summary) *cairnv1.DiskUsageSummary {
		return &cairnv1.DiskUsageSummary{Total: x.Total, Active: x.Active, SizeBytes: x.SizeBytes, ReclaimableBytes: x.ReclaimableBytes}
	}
	res := &cairnv1.DiskUsageResponse{Images: summary(du.Images), Containers: summary(du.Containers), Volumes: summary(du.Volumes)}
	if req.Msg.Verbose {
		for _, img := range du.ImageDetails {
			res.ImageDetails = append(res.ImageDetails, &cairnv1.ImageUsage{Id: img.ID, Names: img.Names, SizeBytes: img.SizeBytes, UniqueBytes: img.UniqueBytes, Containers: img.Containers})
		}
		for _, v := range du.VolumeDetails {
			res.VolumeDetails = append(res.VolumeDetails, &cairnv1.VolumeUsage{Name: v.Name, Containers: v.Containers, SizeBytes: v.SizeBytes})
		}
		for _, c := range du.ContainerDetails {
			res.ContainerDetails = append(res.ContainerDetails, &cairnv1.ContainerUsage{Id: c.ID, Name: c.Name, Image: c.Image, State: stateToProto[sm.State(c.State)], SizeBytes: c.SizeBytes})
		}
	}
	return connect.NewResponse(res), nil
}
