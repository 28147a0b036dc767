package api

import (
	"context"
	"fmt"
	"sync"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/executor"
	"github.com/cairn-run/cairn/internal/errdefs"
	"github.com/cairn-run/cairn/resources"
	sm "github.com/cairn-run/cairn/statemachine"
)

// StatsReader reads a running container's cgroup.
type StatsReader interface {
	Stats(id string, p sm.Process) (executor.Stats, error)
	// CPUUsage is the CPU time alone, for the first reading of a CPU
	// percentage.
	CPUUsage(id string) (ns uint64, at time.Time, err error)
}

// Updater changes a container's limits, journaled.
type Updater interface {
	Update(ctx context.Context, id string, u resources.Update) (sm.Container, error)
}

// ResourceServer implements cairn.v1.ResourceService.
type ResourceServer struct {
	View    View
	Reader  StatsReader
	Machine Updater
	Mounts  MountLookup
	// Interval between two rounds of a stream; default 1s. Window is how
	// far apart the two readings of a round's CPU percentage are; default
	// 100ms.
	Interval, Window time.Duration
}

func (s *ResourceServer) containers(refs []string) ([]string, error) {
	if len(refs) == 0 {
		return nil, nil
	}
	ids := make([]string, 0, len(refs))
	for _, ref := range refs {
		if err := checkRef(ref); err != nil {
			return nil, toConnect(err)
		}
		id, err := s.View.Resolve(ref)
		if err != nil {
			return nil, toConnect(err)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// live is what a round reads: the named containers, or every running or
// paused one.
func (s *ResourceServer) live(ids []string) []sm.Container {
	var out []sm.Container
	if ids == nil {
		for _, c := range s.View.Containers() {
			if c.Process != nil && (c.State == sm.StateRunning || c.State == sm.StatePaused) {
				out = append(out, c)
			}
		}
		return out
	}
	for _, id := range ids {
		if c, ok := s.View.Container(id); ok {
			out = append(out, c)
		}
	}
	return out
}

// reading is one container's cgroup reading (ok false when it is not
// running or its cgroup is gone).
type reading struct {
	c  sm.Container
	st executor.Stats
	ok bool
}

// readAll reads every container's cgroup, a few at a time.
func (s *ResourceServer) readAll(cs []sm.Container) []reading {
	out := make([]reading, len(cs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i, c := range cs {
		out[i].c = c
		if c.Process == nil || (c.State != sm.StateRunning && c.State != sm.StatePaused) {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			st, err := s.Reader.Stats(c.ID, *c.Process)
			out[i].st, out[i].ok = st, err == nil
		}()
	}
	wg.Wait()
	return out
}

// Stats streams rounds of readings. Each round's CPU percentage is the
// CPU time used between its reading and the one before (for the first
// round, one Window earlier), over the wall time between them, in percent
// of one CPU.
func (s *ResourceServer) Stats(ctx context.Context, req *connect.Request[cairnv1.StatsRequest], stream *connect.ServerStream[cairnv1.StatsResponse]) error {
	ids, err := s.containers(req.Msg.Ids)
	if err != nil {
		return err
	}
	interval, window := s.Interval, s.Window
	if interval <= 0 {
		interval = time.Second
	}
	if window <= 0 {
		window = 100 * time.Millisecond
	}
	prev := map[string]executor.Stats{}
	for _, c := range s.live(ids) {
		if c.Process == nil || !c.State.HasProcess() {
			continue
		}
		if ns, at, err := s.Reader.CPUUsage(c.ID); err == nil {
			prev[c.ID] = executor.Stats{CPUUsageNS: ns, ReadAt: at}
		}
	}
	wait := window
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		round := s.readAll(s.live(ids))
		msg := &cairnv1.StatsResponse{Stats: make([]*cairnv1.ContainerStats, 0, len(round))}
		for _, r := range round {
			p, had := prev[r.c.ID]
			msg.Stats = append(msg.Stats, statsToProto(r, p, had))
			if r.ok {
				prev[r.c.ID] = r.st
			}
		}
		if err := stream.Send(msg); err != nil {
			return err
		}
		if req.Msg.NoStream {
			return nil
		}
		wait = interval
	}
}

func statsToProto(r reading, prev executor.Stats, hadPrev bool) *cairnv1.ContainerStats {
	out := &cairnv1.ContainerStats{Id: r.c.ID, Name: r.c.Name}
	if !r.ok {
		return out
	}
	st := r.st
	out.ReadAt = timestamppb.New(st.ReadAt)
	if hadPrev && st.ReadAt.After(prev.ReadAt) && st.CPUUsageNS >= prev.CPUUsageNS {
		out.CpuPercent = float64(st.CPUUsageNS-prev.CPUUsageNS) / float64(st.ReadAt.Sub(prev.ReadAt).Nanoseconds()) * 100
	}
	out.CpuUsageNs = st.CPUUsageNS
	out.MemoryUsageBytes, out.MemoryWorkingSetBytes, out.MemoryLimitBytes = st.MemoryUsage, st.MemoryWorkingSet, st.MemoryLimit
	out.Pids, out.PidsLimit = st.Pids, st.PidsLimit
	out.BlockReadBytes, out.BlockWriteBytes = st.BlockRead, st.BlockWrite
	out.NetRxBytes, out.NetTxBytes = st.NetRx, st.NetTx
	out.OomEvents = st.OOMKills
	return out
}

// Update changes a container's limits (see statemachine.Machine.Update).
func (s *ResourceServer) Update(ctx context.Context, req *connect.Request[cairnv1.UpdateRequest]) (*connect.Response[cairnv1.UpdateResponse], error) {
	m := req.Msg
	u := resources.Update{Memory: m.MemoryBytes, MemorySwap: m.MemorySwapBytes, NanoCPUs: m.NanoCpus, PidsLimit: m.PidsLimit}
	if u.IsZero() {
		return nil, toConnect(fmt.Errorf("nothing to update: give a memory, swap, cpus or pids limit: %w", errdefs.ErrInvalidArgument))
	}
	ids, err := s.containers([]string{m.Id})
	if err != nil {
		return nil, err
	}
	c, err := s.Machine.Update(ctx, ids[0], u)
	if err != nil {
		return nil, toConnect(err)
	}
	cs := &ContainerServer{Mounts: s.Mounts}
	return connect.NewResponse(&cairnv1.UpdateResponse{Container: cs.toProto(c)}), nil
}
