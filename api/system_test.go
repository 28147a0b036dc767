package api

import (
	"context"
	"errors"
	"testing"
	"time"

	"connectrpc.com/connect"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/internal/errdefs"
	"github.com/cairn-run/cairn/internal/sysinfo"
)

type fakeFacts struct {
	info sysinfo.Info
	du   sysinfo.DiskUsage
	err  error
}

func (f fakeFacts) Info(context.Context) (sysinfo.Info, error)           { return f.info, f.err }
func (f fakeFacts) DiskUsage(context.Context) (sysinfo.DiskUsage, error) { return f.du, f.err }

func TestSystemServer_InfoAndDiskUsage(t *testing.T) {
	facts := fakeFacts{
		info: sysinfo.Info{Root: "/r", JournalRecords: 9, Containers: map[string]int64{"running": 2, "paused": 0},
			Host:         sysinfo.Host{CgroupVersion: "v1", Kernel: "6.1"},
			LastRecovery: sysinfo.Recovery{Duration: 3 * time.Millisecond, Actions: map[string]int64{"reattach": 2}, Err: "later"}},
		du: sysinfo.DiskUsage{
			Images:           sysinfo.Summary{Total: 1, Active: 1, SizeBytes: 100},
			Containers:       sysinfo.Summary{Total: 2, Active: 1, SizeBytes: 30, ReclaimableBytes: 20},
			ImageDetails:     []sysinfo.ImageUsage{{ID: "sha256:a", SizeBytes: 100, Containers: 2}},
			ContainerDetails: []sysinfo.Container{{ID: "c", State: "stopped", SizeBytes: 20}},
		},
	}
	s := &SystemServer{Facts: facts}
	info, err := s.Info(context.Background(), connect.NewRequest(&cairnv1.InfoRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	m := info.Msg
	if m.Root != "/r" || m.JournalRecords != 9 || m.Containers["running"] != 2 || m.CgroupVersion != "v1" || m.ApiVersion != Version ||
		m.LastRecovery.Duration.AsDuration() != 3*time.Millisecond || m.LastRecovery.Actions["reattach"] != 2 || m.LastRecovery.Error != "later" {
		t.Errorf("info = %v", m)
	}
	du, err := s.DiskUsage(context.Background(), connect.NewRequest(&cairnv1.DiskUsageRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if du.Msg.Containers.ReclaimableBytes != 20 || du.Msg.Images.SizeBytes != 100 || len(du.Msg.ImageDetails) != 0 {
		t.Errorf("df = %v (details only when verbose)", du.Msg)
	}
	du, _ = s.DiskUsage(context.Background(), connect.NewRequest(&cairnv1.DiskUsageRequest{Verbose: true}))
	if len(du.Msg.ImageDetails) != 1 || du.Msg.ContainerDetails[0].State != cairnv1.ContainerState_CONTAINER_STATE_STOPPED {
		t.Errorf("df -v = %v", du.Msg)
	}
	failing := &SystemServer{Facts: fakeFacts{err: errors.Join(errdefs.ErrNotFound, errors.New("gone"))}}
	if _, err := failing.Info(context.Background(), connect.NewRequest(&cairnv1.InfoRequest{})); connect.CodeOf(err) != connect.CodeNotFound {
		t.Errorf("a failing source: %v", err)
	}
	if _, err := (&SystemServer{}).DiskUsage(context.Background(), connect.NewRequest(&cairnv1.DiskUsageRequest{})); connect.CodeOf(err) != connect.CodeUnimplemented {
		t.Errorf("no facts: %v", err)
	}
}
