package api

import (
	"context"

	"connectrpc.com/connect"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/internal/buildinfo"
)

// Version is the version of the cairn.v1 API this daemon serves: the minor
// number grows with every compatible change (2: the Import end message,
// ErrorInfo details and SystemService).
const Version = "1.2"

// SystemServer implements cairn.v1.SystemService. It is not behind the
// recovery gate: a version is static and touches no container, and it is
// what an operator asks first of a daemon that seems stuck recovering.
type SystemServer struct {
	Build buildinfo.Info
}

func (s *SystemServer) Version(context.Context, *connect.Request[cairnv1.VersionRequest]) (*connect.Response[cairnv1.VersionResponse], error) {
	return connect.NewResponse(&cairnv1.VersionResponse{Daemon: BuildInfoToProto(s.Build), ApiVersion: Version}), nil
}

// BuildInfoToProto converts a binary's build info.
func BuildInfoToProto(b buildinfo.Info) *cairnv1.BuildInfo {
	return &cairnv1.BuildInfo{Version: b.Version, Revision: b.Revision, Time: b.Time, Modified: b.Modified, GoVersion: b.GoVersion}
}
