package daemon

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/cairn-run/cairn/executor"
	"github.com/cairn-run/cairn/images"
	"github.com/cairn-run/cairn/internal/errdefs"
	"github.com/cairn-run/cairn/journal"
	"github.com/cairn-run/cairn/layer"
	"github.com/cairn-run/cairn/metrics"
	"github.com/cairn-run/cairn/network"
	"github.com/cairn-run/cairn/recovery"
	sm "github.com/cairn-run/cairn/statemachine"
	"github.com/cairn-run/cairn/volumes"
)

// The adapters translate between the driver's plain types and the
// executor's and layer store's, so neither side imports the other.

// runtime adapts the executor to the driver's Runner, Freezer and Janitor.
type runtime struct {
	exec    *executor.Executor
	metrics *metrics.Metrics
	// net and journal: a start joins the container's network first, a
	// removal releases it (see network.go).
	net     *network.Manager
	journal *journal.Journal
	// The daemon's log rotation, for a container that asked for none.
	logMaxSize  int64
	logMaxFiles int
	volumes     *volumes.Service
}

func (r runtime) Start(ctx context.Context, spec sm.RunSpec) (sm.Process, error) {
	es := executor.Spec{ID: spec.ID, Rootfs: spec.Rootfs, Args: spec.Args, Env: spec.Env, Hostname: spec.Hostname, Cwd: spec.Cwd,
		Terminal: spec.TTY, OpenStdin: spec.OpenStdin, StdinOnce: spec.StdinOnce, AwaitAttach: spec.AwaitAttach,
		LogMaxSize: cmp.Or(spec.LogMaxSize, r.logMaxSize), LogMaxFiles: cmp.Or(spec.LogMaxFiles, r.logMaxFiles),
		Resources: spec.Resources}
	sec, err := securitySpec(spec.Security)
	if err != nil {
		return sm.Process{}, fmt.Errorf("start %s: %w", spec.ID, err)
	}
	es.Security = sec
	if spec.User != "" {
		// Resolved at each start, in the container's own /etc/passwd and
		// /etc/group, as Docker does.
		u, err := images.ResolveUser(spec.Rootfs, spec.User)
		if err != nil {
			return sm.Process{}, fmt.Errorf("start %s: %w", spec.ID, err)
		}
		es.UID, es.GID, es.AdditionalGIDs = u.UID, u.GID, u.AdditionalGIDs
	}
	if r.net != nil {
		if c, ok := r.journal.Container(spec.ID); ok {
			join, err := joinNetwork(ctx, r.net, c, spec.Rootfs)
			if err != nil {
				return sm.Process{}, fmt.Errorf("start %s: %w", spec.ID, err)
			}
			es.NetNS, es.HostNetwork = join.NetNS, join.Host
		}
	}
	mounts, err := runMounts(r.volumes, spec)
	if err != nil {
		return sm.Process{}, fmt.Errorf("start %s: %w", spec.ID, err)
	}
	es.Mounts = mounts
	p, err := r.exec.Start(ctx, es)
	return sm.Process(p), err
}

func (r runtime) Warm() { r.exec.WarmUp() }

func (r runtime) Wait(ctx context.Context, id string, p sm.Process) (sm.Exit, error) {
	e, err := r.exec.Wait(ctx, id, executor.Process(p))
	if err == nil && e.Code == nil {
		r.metrics.ExitCodeUnknown()
	}
	return exitOf(e), err
}

// exitOf is the journal's form of an exit the executor observed.
func exitOf(e executor.Exit) sm.Exit {
	exit := sm.Exit{Code: e.Code, Reason: e.Reason, FinishedAt: e.FinishedAt, OOMKilled: e.OOMKilled}
	if exit.Reason == "" && e.Signal != "" {
		exit.Reason = "killed by " + e.Signal
	}
	if e.OOMKilled && e.Code != nil {
		exit.Reason = sm.ReasonOOMKilled
	}
	return exit
}

func (r runtime) Signal(id string, p sm.Process, sig syscall.Signal) error {
	return r.exec.Signal(id, executor.Process(p), sig)
}

func (r runtime) Pause(id string, p sm.Process) error {
	return r.exec.Pause(id, executor.Process(p))
}

func (r runtime) Resume(id string, p sm.Process) error {
	return r.exec.Resume(id, executor.Process(p))
}

func (r runtime) Cleanup(id string, p sm.Process) error {
	return r.exec.Cleanup(id, executor.Process(p))
}
func (r runtime) Remove(id string) error {
	if r.net != nil {
		if err := r.net.Release(context.Background(), id); err != nil {
			return fmt.Errorf("release the network of %s: %w", id, err)
		}
	}
	return r.exec.Remove(id)
}

// LogPath names the container's log, which readers only open read-only:
// a log (or directory) made by a reader could outlive a Remove running at
// the same time.
func (r runtime) LogPath(id string) string { return r.exec.LogPath(id) }

// layers adapts the layer store (and the image service, which reads
// image configs) to the driver's Layers and Mounter.
type layers struct {
	store  *layer.Store
	images *images.Service
}

func (l layers) ResolveImage(ref string) (sm.ImageInfo, error) { return l.images.Resolve(ref) }

func (l layers) ClaimMount(mountID, image string) (sm.Write, error) {
	op, err := l.store.RegisterMount(mountID, image)
	if err != nil {
		return nil, err // a nil Op in the interface would not be nil
	}
	return op, nil
}

func (l layers) BuildMount(ctx context.Context, mountID, hostname string) error {
	_, err := l.store.BuildMount(ctx, mountID, layer.InitConfig{Hostname: hostname})
	return err
}

func (l layers) DiscardMount(mountID string) error { return l.store.RemoveMountDirs(mountID) }

func (l layers) ReleaseMount(mountID string) (sm.Write, error) {
	op, err := l.store.UnregisterMount(mountID)
	if err != nil {
		return nil, err
	}
	return op, nil
}

func (l layers) Mount(mountID string) (string, error)          { return l.store.Mount(mountID) }
func (l layers) Unmount(mountID string) error                  { return l.store.Unmount(mountID) }
func (l layers) MountInfo(mountID string) (layer.Mount, error) { return l.store.MountInfo(mountID) }

// recoveryRuntime adapts the executor to recovery's Runtime.
type recoveryRuntime struct{ exec *executor.Executor }

func (r recoveryRuntime) Observe(id string, p sm.Process) recovery.Observation {
	o := r.exec.Observe(id, executor.Process(p))
	obs := recovery.Observation{ShimAlive: o.ShimAlive, ProcessAlive: o.ProcessAlive, StateDirExists: o.StateDirExists}
	if o.Exit != nil {
		e := exitOf(*o.Exit)
		obs.Exit = &e
	}
	// Read on its own: Observe cannot say a freezer it failed to read
	// from one that is not there, and recovery must not guess.
	switch state, err := r.exec.FreezerState(id); {
	case errors.Is(err, errdefs.ErrNotFound):
		obs.Freezer = recovery.FreezerAbsent
	case err != nil:
		obs.Freezer = recovery.FreezerUnknown
	default:
		obs.Freezer = recovery.Freezer(state)
	}
	return obs
}

func (r recoveryRuntime) Discover(ctx context.Context, id string) (sm.Process, bool) {
	p, ok := r.exec.Discover(ctx, id)
	return sm.Process(p), ok
}

func (r recoveryRuntime) StartTime(pid int) uint64 {
	t, _ := executor.StartTime(pid)
	return t
}

func (r recoveryRuntime) FinishFreeze(id string, p sm.Process) error {
	return r.exec.Pause(id, executor.Process(p))
}
func (r recoveryRuntime) Cleanup(id string, p sm.Process) error {
	return r.exec.Cleanup(id, executor.Process(p))
}
func (r recoveryRuntime) Remove(id string) error { return r.exec.Remove(id) }
func (r recoveryRuntime) IDs() ([]string, error) { return r.exec.IDs() }

// recoveryLayers adapts the layer store to recovery's Layers.
type recoveryLayers struct{ store *layer.Store }

func (l recoveryLayers) MountComplete(mountID string) (bool, error) {
	m, err := l.store.MountInfo(mountID)
	if errors.Is(err, errdefs.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for _, dir := range []string{m.Init, m.Upper, m.Work, m.Rootfs} {
		if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
			return false, nil
		} else if err != nil {
			return false, err
		}
	}
	return true, nil
}

func (l recoveryLayers) Mounted(mountID string) (bool, error) { return l.store.Mounted(mountID) }

func (l recoveryLayers) MountIDs() ([]string, error) {
	mounts, err := l.store.Mounts()
	ids := make([]string, 0, len(mounts))
	for _, m := range mounts {
		ids = append(ids, m.ID)
	}
	return ids, err
}

func (l recoveryLayers) MountedIDs() (map[string]bool, error) { return l.store.MountedIDs() }

func (l recoveryLayers) CreateMount(ctx context.Context, mountID, image, hostname string) error {
	_, err := l.store.CreateMount(ctx, mountID, image, layer.InitConfig{Hostname: hostname})
	return err
}

func (l recoveryLayers) Unmount(mountID string) error     { return l.store.Unmount(mountID) }
func (l recoveryLayers) RemoveMount(mountID string) error { return l.store.RemoveMount(mountID) }

// recoveryImages adapts the layer store to image recovery.
type recoveryImages struct{ store *layer.Store }

func (l recoveryImages) ImageRegistered(id string) (bool, error) {
	_, err := l.store.ImageByID(id)
	if errors.Is(err, errdefs.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

func (l recoveryImages) NameOf(name string) (string, error) { return l.store.NameID(name) }

func (l recoveryImages) RemoveUnregisteredLayers(cacheIDs []string) error {
	return l.store.RemoveUnregisteredLayers(cacheIDs)
}

func (l recoveryImages) VerifiedLayerKept(cacheID string) (bool, error) {
	return l.store.VerifiedLayerKept(cacheID)
}

// observer feeds finished transitions to the metrics.
type observer struct{ metrics *metrics.Metrics }

func (o observer) Transition(event sm.Event, outcome sm.Kind, d time.Duration) {
	o.metrics.Transition(string(event), string(outcome), d)
}

// runMounts turns a container's recorded mounts into the executor's: a
// volume is a bind of its directory, filled from the image's content at
// its path when it is empty (Docker's first use).
func runMounts(vs *volumes.Service, spec sm.RunSpec) ([]executor.Mount, error) {
	var out []executor.Mount
	for _, m := range spec.Mounts {
		em := executor.Mount{Type: string(m.Type), Source: m.Source, Destination: m.Destination, ReadOnly: m.ReadOnly, TmpfsSize: m.TmpfsSize}
		if m.Type == sm.MountVolume {
			if vs == nil {
				return nil, fmt.Errorf("volume %s: no volume service", m.Source)
			}
			if _, err := vs.Get(m.Source); err != nil {
				return nil, err
			}
			if err := vs.Populate(m.Source, spec.Rootfs, m.Destination); err != nil {
				return nil, err
			}
			em.Type, em.Source = "bind", vs.Mountpoint(m.Source)
		}
		out = append(out, em)
	}
	return out, nil
}
