package api

import (
	"encoding/json"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/images"
	"github.com/cairn-run/cairn/layer"
	sm "github.com/cairn-run/cairn/statemachine"
)

var stateToProto = map[sm.State]cairnv1.ContainerState{
	sm.StateCreated: cairnv1.ContainerState_CONTAINER_STATE_CREATED,
	sm.StateRunning: cairnv1.ContainerState_CONTAINER_STATE_RUNNING,
	sm.StatePaused:  cairnv1.ContainerState_CONTAINER_STATE_PAUSED,
	sm.StateStopped: cairnv1.ContainerState_CONTAINER_STATE_STOPPED,
	sm.StateRemoved: cairnv1.ContainerState_CONTAINER_STATE_REMOVED,
}

var kindToProto = map[sm.Kind]cairnv1.RecordKind{
	sm.KindIntent:     cairnv1.RecordKind_RECORD_KIND_INTENT,
	sm.KindDone:       cairnv1.RecordKind_RECORD_KIND_DONE,
	sm.KindFailed:     cairnv1.RecordKind_RECORD_KIND_FAILED,
	sm.KindReconciled: cairnv1.RecordKind_RECORD_KIND_RECONCILED,
}

func timestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// containerToProto converts a view; m may be nil when the layers are gone.
func containerToProto(c sm.Container, m *layer.Mount) *cairnv1.Container {
	out := &cairnv1.Container{
		Id: c.ID, Name: c.Name, Image: c.Image, Command: c.Command, Env: c.Env,
		State:    stateToProto[c.State],
		MountId:  c.MountID,
		Hostname: c.Hostname, AutoRemove: c.AutoRemove, RestartCount: int32(c.RestartCount),
		CreatedAt: timestamp(c.CreatedAt), StartedAt: timestamp(c.StartedAt), FinishedAt: timestamp(c.FinishedAt),
	}
	if c.Process != nil {
		out.Pid = int64(c.Process.PID)
		out.PidStartTime = c.Process.StartTime
		out.ShimPid = int64(c.Process.ShimPID)
	}
	if c.Exit != nil {
		if c.Exit.Code != nil {
			code := int32(*c.Exit.Code)
			out.ExitCode = &code
		}
		out.ExitReason = c.Exit.Reason
		out.OomKilled = c.Exit.OOMKilled
	}
	if c.Pending != nil {
		out.PendingEvent = string(c.Pending.Event)
	}
	out.RestartPolicy, out.UserStopped = c.RestartPolicy.String(), c.UserStopped
	out.RestartDelayMs = time.Duration(c.RestartDelay).Milliseconds()
	if m != nil {
		out.Layers = &cairnv1.LayerPaths{Rootfs: m.Rootfs, Upper: m.Upper, Work: m.Work, Init: m.Init, Lower: m.Lower}
	}
	out.ImageId = c.ImageID
	out.Tty, out.OpenStdin, out.StdinOnce = c.TTY, c.OpenStdin, c.StdinOnce
	out.LogMaxSize, out.LogMaxFiles = c.LogMaxSize, int32(c.LogMaxFiles)
	out.Mounts = mountsToProto(c.Mounts)
	if cfg := c.Config; cfg != nil {
		out.Config = &cairnv1.ContainerConfig{WorkingDir: cfg.WorkingDir, User: cfg.User, StopSignal: cfg.StopSignal,
			ExposedPorts: cfg.ExposedPorts, Volumes: cfg.Volumes, Labels: cfg.Labels,
			Resources: resourcesToProto(cfg.Resources), Security: securityToProto(cfg.Security)}
		networkSettingsToProto(out.Config, cfg.Network)
	}
	return out
}

func waitToProto(c sm.Container) *cairnv1.WaitResponse {
	out := &cairnv1.WaitResponse{State: stateToProto[c.State]}
	if c.Exit != nil {
		if c.Exit.Code != nil {
			code := int32(*c.Exit.Code)
			out.ExitCode = &code
		}
		out.ExitReason = c.Exit.Reason
	}
	return out
}

func recordToProto(r sm.Record) *cairnv1.JournalRecord {
	r = r.Normalized()
	out := &cairnv1.JournalRecord{
		ExecId: r.Exec,
		Seq:    r.Seq, Kind: kindToProto[r.Kind], Time: timestamp(r.Time),
		ContainerId: r.Container, Event: string(r.Event), Object: string(r.Object), ObjectId: r.ObjectID,
		FromState: string(r.From), ToState: string(r.To),
		IntentSeq: r.Intent, Error: r.Error,
	}
	if r.Args != nil || r.Result != nil {
		details, err := json.Marshal(struct {
			Args   *sm.Args   `json:"args,omitempty"`
			Result *sm.Result `json:"result,omitempty"`
		}{r.Args, r.Result})
		if err == nil {
			out.DetailsJson = string(details)
		}
	}
	return out
}

func imageToProto(img layer.Image) *cairnv1.Image {
	out := &cairnv1.Image{Name: img.Name, DiffIds: img.DiffIDs, ChainId: img.ChainID, Size: img.Size, CreatedAt: timestamp(img.CreatedAt),
		Id: img.ID, Names: img.Names}
	if len(img.Config) > 0 {
		if cfg, err := images.ParseConfig(img.Config); err == nil {
			rc := images.RunConfig(cfg)
			out.Config = &cairnv1.ImageConfig{Entrypoint: rc.Entrypoint, Cmd: rc.Cmd, Env: rc.Env, WorkingDir: rc.WorkingDir, User: rc.User,
				StopSignal: rc.StopSignal, ExposedPorts: rc.ExposedPorts, Volumes: rc.Volumes, Labels: rc.Labels,
				Architecture: cfg.Architecture, Os: cfg.OS, Created: timestamp(cfg.Created.Time)}
		}
	}
	return out
}

// createRequest is the driver's form of a create request.
func createRequest(m *cairnv1.CreateRequest) sm.CreateRequest {
	req := sm.CreateRequest{Name: m.Name, Image: m.Image, Command: m.Command, Env: m.Env, AutoRemove: m.AutoRemove,
		WorkingDir: m.WorkingDir, User: m.User,
		TTY: m.Tty, OpenStdin: m.OpenStdin, StdinOnce: m.StdinOnce, LogMaxSize: m.LogMaxSize, LogMaxFiles: int(m.LogMaxFiles),
		Resources: resourcesFromProto(m.Resources), Security: securityFromProto(m.Security),
		Mounts: mountsFromProto(m.Mounts)}
	req.RestartPolicy = restartPolicyOf(m.RestartPolicy)
	if m.OverrideEntrypoint {
		ep := append([]string{}, m.Entrypoint...)
		req.Entrypoint = &ep
	}
	return req
}
