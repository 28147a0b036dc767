package statemachine_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cairn-run/cairn/internal/errdefs"
	"github.com/cairn-run/cairn/internal/schema"
	"github.com/cairn-run/cairn/journal"
	sm "github.com/cairn-run/cairn/statemachine"
)

// fakeWorld stands in for the executor and the layer store: processes are
// channels, mounts are booleans. It records what the driver asked for.
type fakeWorld struct {
	mu        sync.Mutex
	nextPID   int
	procs     map[int]*fakeProc
	mounted   map[string]bool
	layers    map[string]bool
	claimed   map[string]bool
	frozen    map[string]bool
	failStart error
	failBuild error
	ignoreSig map[syscall.Signal]bool
	// waitErrs are returned, in order, by the next calls of Wait; a nil
	// entry lets that call wait for real.
	waitErrs []error
	waits    int
	signals  []syscall.Signal
	lastSpec sm.RunSpec
}

type fakeProc struct {
	exited chan struct{}
	code   int
}

func newFakeWorld() *fakeWorld {
	return &fakeWorld{nextPID: 100, procs: map[int]*fakeProc{}, mounted: map[string]bool{}, layers: map[string]bool{}, claimed: map[string]bool{}, frozen: map[string]bool{}, ignoreSig: map[syscall.Signal]bool{}}
}

func (w *fakeWorld) Start(_ context.Context, spec sm.RunSpec) (sm.Process, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failStart != nil {
		return sm.Process{}, w.failStart
	}
	w.lastSpec = spec
	w.nextPID++
	w.procs[w.nextPID] = &fakeProc{exited: make(chan struct{})}
	return sm.Process{PID: w.nextPID, StartTime: uint64(w.nextPID) * 10, StartedAt: time.Now().UTC()}, nil
}

func (w *fakeWorld) Wait(ctx context.Context, _ string, p sm.Process) (sm.Exit, error) {
	w.mu.Lock()
	proc := w.procs[p.PID]
	w.waits++
	var injected error
	if len(w.waitErrs) > 0 {
		injected, w.waitErrs = w.waitErrs[0], w.waitErrs[1:]
	}
	w.mu.Unlock()
	if injected != nil {
		return sm.Exit{}, injected
	}
	select {
	case <-ctx.Done():
		return sm.Exit{}, ctx.Err()
	case <-proc.exited:
		return *sm.ExitCode(proc.code, time.Now().UTC()), nil
	}
}

// exit ends process pid with code, as if it returned.
func (w *fakeWorld) exit(pid, code int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	p := w.procs[pid]
	select {
	case <-p.exited:
	default:
		p.code = code
		close(p.exited)
	}
}

func (w *fakeWorld) Signal(_ string, p sm.Process, sig syscall.Signal) error {
	w.mu.Lock()
	_, ok := w.procs[p.PID]
	ignore := w.ignoreSig[sig]
	w.signals = append(w.signals, sig)
	w.mu.Unlock()
	if !ok {
		return fmt.Errorf("pid %d: %w", p.PID, errdefs.ErrNotFound)
	}
	if !ignore && sig != syscall.SIGUSR1 {
		w.exit(p.PID, 128+int(sig))
	}
	return nil
}

func (w *fakeWorld) Pause(id string, _ sm.Process) error  { return w.setFrozen(id, true) }
func (w *fakeWorld) Resume(id string, _ sm.Process) error { return w.setFrozen(id, false) }
func (w *fakeWorld) setFrozen(id string, v bool) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.frozen[id] = v
	return nil
}

func (w *fakeWorld) Cleanup(string, sm.Process) error { return nil }
func (w *fakeWorld) Remove(string) error              { return nil }

// fakeImages are the images of the fake world: busybox without a config,
// and one with a config that sets everything a create merges.
var fakeImages = map[string]sm.ImageInfo{
	"busybox": {Ref: "docker.io/library/busybox:latest", ID: "sha256:" + strings.Repeat("b", 64)},
	"configured": {Ref: "docker.io/library/configured:latest", ID: "sha256:" + strings.Repeat("c", 64), Config: sm.ImageConfig{
		Entrypoint: []string{"/entry"}, Cmd: []string{"default"}, Env: []string{"PATH=/img", "A=image"},
		WorkingDir: "work", User: "app", StopSignal: "USR1", ExposedPorts: []string{"80/tcp"}, Volumes: []string{"/data"},
		Labels: map[string]string{"k": "v"},
	}},
}

func (w *fakeWorld) ResolveImage(ref string) (sm.ImageInfo, error) {
	img, ok := fakeImages[ref]
	if !ok {
		return img, fmt.Errorf("image %q: %w", ref, errdefs.ErrNotFound)
	}
	return img, nil
}

// ClaimMount's write runs in the journal's transaction, as the layer
// store's does: it marks the mount claimed when the intent commits.
func (w *fakeWorld) ClaimMount(mountID, _ string) (sm.Write, error) {
	return schema.Op(func(*bolt.Tx) error {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.claimed[mountID] = true
		return nil
	}), nil
}

func (w *fakeWorld) BuildMount(_ context.Context, mountID, _ string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failBuild != nil {
		return w.failBuild
	}
	if !w.claimed[mountID] {
		return fmt.Errorf("mount %s built before it was claimed", mountID)
	}
	w.layers[mountID] = true
	return nil
}

func (w *fakeWorld) DiscardMount(mountID string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.layers, mountID)
	delete(w.mounted, mountID)
	return nil
}

func (w *fakeWorld) ReleaseMount(mountID string) (sm.Write, error) {
	return schema.Op(func(*bolt.Tx) error {
		w.mu.Lock()
		defer w.mu.Unlock()
		delete(w.claimed, mountID)
		return nil
	}), nil
}

func (w *fakeWorld) Mount(mountID string) (string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.mounted[mountID] = true
	return "/rootfs/" + mountID, nil
}

func (w *fakeWorld) Unmount(mountID string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.mounted, mountID)
	return nil
}

func (w *fakeWorld) isClaimed(mountID string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.claimed[mountID]
}

func (w *fakeWorld) isMounted(mountID string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.mounted[mountID]
}

type harness struct {
	j       *journal.Journal
	w       *fakeWorld
	m       *sm.Machine
	commits *commitCounter
	vols    *fakeVolumes
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	commits := &commitCounter{}
	j, err := journal.Open(filepath.Join(t.TempDir(), "cairn.db"), journal.Options{Observer: commits})
	if err != nil {
		t.Fatal(err)
	}
	w := newFakeWorld()
	vols := &fakeVolumes{driver: sm.NewVolumes(sm.VolumeDeps{Journal: j})}
	m := sm.New(sm.Deps{Journal: j, Runner: w, Freezer: w, Janitor: w, Layers: w, Mounter: w, Volumes: vols, KillWait: 2 * time.Second})
	t.Cleanup(func() {
		m.Close()
		if err := j.Verify(); err != nil {
			t.Errorf("journal does not fold to its view: %v", err)
		}
		_ = j.Close()
	})
	return &harness{j: j, w: w, m: m, commits: commits, vols: vols}
}

// fakeVolumes makes and removes volumes through the real volume driver,
// with no directories.
type fakeVolumes struct {
	driver  *sm.Volumes
	mu      sync.Mutex
	removed []string
}

func (f *fakeVolumes) PrepareMounts(ctx context.Context, mounts []sm.Mount) ([]sm.Mount, func(), error) {
	out := slices.Clone(mounts)
	for i, m := range out {
		if m.Type != sm.MountVolume {
			continue
		}
		if m.Source == "" {
			out[i].Source = fmt.Sprintf("anon%d", time.Now().UnixNano())
		}
		if _, err := f.driver.Run(ctx, sm.VolumeOp{Event: sm.EventVolumeCreate, Name: out[i].Source, Spec: &sm.VolumeSpec{Anonymous: m.Anonymous}}); err != nil && !errors.Is(err, errdefs.ErrFailedPrecondition) {
			return nil, nil, err
		}
	}
	return out, func() {}, nil
}

func (f *fakeVolumes) RemoveAnonymous(ctx context.Context, names []string) error {
	for _, n := range names {
		if _, err := f.driver.Run(ctx, sm.VolumeOp{Event: sm.EventVolumeRemove, Name: n}); err != nil {
			return err
		}
		f.mu.Lock()
		f.removed = append(f.removed, n)
		f.mu.Unlock()
	}
	return nil
}

// commitCounter counts the journal's group commits (each one fsync).
type commitCounter struct{ n atomic.Int64 }

func (c *commitCounter) Committed(int, time.Duration) { c.n.Add(1) }

func (h *harness) create(t *testing.T, name string) sm.Container {
	t.Helper()
	c, err := h.m.Create(context.Background(), sm.CreateRequest{Name: name, Image: "busybox", Command: []string{"sh"}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (w *fakeWorld) signalsSent() []syscall.Signal {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]syscall.Signal(nil), w.signals...)
}
