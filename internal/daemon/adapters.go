package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
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

// Pause and Resume pass no process: the driver's Freezer port names the
// container only, and the executor then looks the init up itself.
func (r runtime) Pause(id string) error  { return r.exec.Pause(id, executor.Process{}) }
func (r runtime) Resume(id string) error { return r.exec.Resume(id, executor.Process{}) }

func (r runtime) Cleanup(id string, p sm.Process) error {
	return r.exec.Cleanup(id, executor.Process(p))
}
func (r runtime) Remove(id string) error { return r.exec.Remove(id) }

// OpenLog opens the container's log for reading, creating it empty if the
// container never ran, so a client can follow it before the start.
func (r runtime) OpenLog(id string) (*os.File, error) {
	path := r.exec.LogPath(id)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("log of %s: %w", id, err)
	}
	return os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o640)
}

// recoveryRuntime is the executor as recovery's Runtime, whose Pause also
// names the container only.
type recoveryRuntime struct{ *executor.Executor }

func (r recoveryRuntime) Pause(id string) error { return r.Executor.Pause(id, executor.Process{}) }

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
