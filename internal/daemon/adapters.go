package daemon

import (
	"context"
	"os"
	"syscall"
	"time"

	"github.com/cairn-run/cairn/executor"
	"github.com/cairn-run/cairn/layer"
	"github.com/cairn-run/cairn/metrics"
	"github.com/cairn-run/cairn/recovery"
	sm "github.com/cairn-run/cairn/statemachine"
)

// The adapters translate between the driver's plain types and the
// executor's and layer store's, so neither side imports the other.

// runtime adapts the executor to the driver's Runner, Freezer and Janitor.
type runtime struct {
	exec    *executor.Executor
	metrics *metrics.Metrics
}

func (r runtime) Start(ctx context.Context, spec sm.RunSpec) (sm.Process, error) {
	p, err := r.exec.Start(ctx, executor.Spec{ID: spec.ID, Rootfs: spec.Rootfs, Args: spec.Args, Env: spec.Env, Hostname: spec.Hostname})
	return sm.Process(p), err
}

func (r runtime) Warm() { r.exec.WarmUp() }

func (r runtime) Wait(ctx context.Context, id string, p sm.Process) (sm.Exit, error) {
	e, err := r.exec.Wait(ctx, id, executor.Process(p))
	if err == nil && e.Code == nil {
		r.metrics.ExitCodeUnknown()
	}
	return recovery.ExitFromExecutor(e), err
}

func (r runtime) Signal(id string, p sm.Process, sig syscall.Signal) error {
	return r.exec.Signal(id, executor.Process(p), sig)
}

func (r runtime) Pause(id string) error  { return r.exec.Pause(id) }
func (r runtime) Resume(id string) error { return r.exec.Resume(id) }

func (r runtime) Cleanup(id string, p sm.Process) error {
	return r.exec.Cleanup(id, executor.Process(p))
}
func (r runtime) Remove(id string) error { return r.exec.Remove(id) }

// OpenLog opens the container's log read-only. It never creates anything:
// a log (or directory) made here could outlive a Remove running at the same
// time. A container that has not run has no log (fs.ErrNotExist).
func (r runtime) OpenLog(id string) (*os.File, error) {
	return os.Open(r.exec.LogPath(id))
}

// layers adapts the layer store to the driver's Layers and Mounter.
type layers struct{ store *layer.Store }

func (l layers) ImageExists(name string) error {
	_, err := l.store.Image(name)
	return err
}

func (l layers) CreateMount(ctx context.Context, mountID, image, hostname string) error {
	_, err := l.store.CreateMount(ctx, mountID, image, layer.InitConfig{Hostname: hostname})
	return err
}

func (l layers) RemoveMount(mountID string) error              { return l.store.RemoveMount(mountID) }
func (l layers) Mount(mountID string) (string, error)          { return l.store.Mount(mountID) }
func (l layers) Unmount(mountID string) error                  { return l.store.Unmount(mountID) }
func (l layers) MountInfo(mountID string) (layer.Mount, error) { return l.store.MountInfo(mountID) }

// observer feeds finished transitions to the metrics.
type observer struct{ metrics *metrics.Metrics }

func (o observer) Transition(event sm.Event, outcome sm.Kind, d time.Duration) {
	o.metrics.Transition(string(event), string(outcome), d)
}
