package api

import (
	"context"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	sm "github.com/cairn-run/cairn/statemachine"
)

// volumeRemover is the part of the lifecycle that removes a container with
// its anonymous volumes (rm -v).
type volumeRemover interface {
	RemoveWith(ctx context.Context, id string, o sm.RemoveOptions) (sm.Container, error)
}

var mountTypeFromProto = map[cairnv1.MountType]sm.MountType{
	cairnv1.MountType_MOUNT_TYPE_VOLUME: sm.MountVolume,
	cairnv1.MountType_MOUNT_TYPE_BIND:   sm.MountBind,
	cairnv1.MountType_MOUNT_TYPE_TMPFS:  sm.MountTmpfs,
}

// mountsFromProto is the driver's form of a create's mounts; an
// unspecified type stays empty, which the driver refuses.
func mountsFromProto(ms []*cairnv1.Mount) []sm.Mount {
	var out []sm.Mount
	for _, m := range ms {
		out = append(out, sm.Mount{Type: mountTypeFromProto[m.Type], Source: m.Source, Destination: m.Destination,
			ReadOnly: m.ReadOnly, TmpfsSize: m.TmpfsSize, Anonymous: m.Type == cairnv1.MountType_MOUNT_TYPE_VOLUME && m.Source == ""})
	}
	return out
}

func mountsToProto(ms []sm.Mount) []*cairnv1.Mount {
	var out []*cairnv1.Mount
	for _, m := range ms {
		pm := &cairnv1.Mount{Source: m.Source, Destination: m.Destination, ReadOnly: m.ReadOnly, TmpfsSize: m.TmpfsSize, Anonymous: m.Anonymous}
		for pt, t := range mountTypeFromProto {
			if t == m.Type {
				pm.Type = pt
			}
		}
		if m.Type == sm.MountBind {
			pm.HostPath = m.Source
		}
		out = append(out, pm)
	}
	return out
}
