package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/cairn-run/cairn/api/cairn/v1/cairnv1connect"
	"github.com/cairn-run/cairn/images"
	"github.com/cairn-run/cairn/internal/apiclient"
	"github.com/cairn-run/cairn/internal/errdefs"
	"github.com/cairn-run/cairn/layer"
	sm "github.com/cairn-run/cairn/statemachine"
)

// fakeMachine is the driver and the journal's view in memory: each verb
// moves a container between states as Docker's rules would, records its
// arguments, and fails with fail[verb] when that is set.
type fakeMachine struct {
	mu         sync.Mutex
	containers map[string]sm.Container
	names      map[string]string
	changed    map[string]chan struct{}
	fail       map[string]error
	calls      []string
	grace      time.Duration
	signal     syscall.Signal
	force      bool
	created    sm.CreateRequest
	// onStart, if set, runs after a successful Start (a test's container
	// "runs" then).
	onStart func(id string)
	// afterStarted runs in Run once its started callback has returned:
	// what the machine lets happen to the container only then (its exit
	// recorded, an auto-remove).
	afterStarted func(id string)
}

func newFakeMachine() *fakeMachine {
	return &fakeMachine{containers: map[string]sm.Container{}, names: map[string]string{}, changed: map[string]chan struct{}{}, fail: map[string]error{}}
}

func fakeID(n int) string { return fmt.Sprintf("%064x", n) }

// add puts a container in the view.
func (f *fakeMachine) add(c sm.Container) sm.Container {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c.ID == "" {
		c.ID = fakeID(len(f.containers) + 1)
	}
	f.containers[c.ID] = c
	if c.Name != "" {
		f.names[c.Name] = c.ID
	}
	return c
}

// set changes a container's view and wakes its followers.
func (f *fakeMachine) set(id string, change func(*sm.Container)) sm.Container {
	f.mu.Lock()
	c := f.containers[id]
	change(&c)
	f.containers[id] = c
	ch := f.changed[id]
	delete(f.changed, id)
	f.mu.Unlock()
	if ch != nil {
		close(ch)
	}
	return c
}

func (f *fakeMachine) record(verb, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, verb+" "+id)
	return f.fail[verb]
}

func (f *fakeMachine) called() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fakeMachine) exists(id string) (sm.Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[id]
	if !ok {
		return c, fmt.Errorf("no such container: %s: %w", id, errdefs.ErrNotFound)
	}
	return c, nil
}

func (f *fakeMachine) to(id string, state sm.State) (sm.Container, error) {
	if _, err := f.exists(id); err != nil {
		return sm.Container{}, err
	}
	return f.set(id, func(c *sm.Container) { c.State = state }), nil
}

func (f *fakeMachine) Create(_ context.Context, req sm.CreateRequest) (sm.Container, error) {
	if err := f.record("create", req.Name); err != nil {
		return sm.Container{}, err
	}
	if err := sm.ValidateCreate(req); err != nil {
		return sm.Container{}, err
	}
	f.mu.Lock()
	f.created = req
	f.mu.Unlock()
	return f.add(sm.Container{Name: req.Name, Image: req.Image, Command: req.Command, Env: req.Env, AutoRemove: req.AutoRemove,
		State: sm.StateCreated, MountID: fakeID(99), CreatedAt: time.Now()}), nil
}

// Run is Create then Start, as the machine's Run chains them; started runs
// before Start's hooks let anything else act on the container.
func (f *fakeMachine) Run(ctx context.Context, req sm.CreateRequest, started func(sm.Container)) (sm.Container, error) {
	c, err := f.Create(ctx, req)
	if err != nil {
		return c, err
	}
	created := c
	if c, err = f.Start(ctx, c.ID); err != nil {
		return created, err // the machine's Run leaves the created container
	}
	if started != nil {
		started(c)
	}
	f.mu.Lock()
	after := f.afterStarted
	f.mu.Unlock()
	if after != nil {
		after(c.ID)
	}
	return c, nil
}

func (f *fakeMachine) Start(_ context.Context, id string) (sm.Container, error) {
	if err := f.record("start", id); err != nil {
		return sm.Container{}, err
	}
	c, err := f.to(id, sm.StateRunning)
	if err == nil && f.onStart != nil {
		f.onStart(id)
	}
	return c, err
}

func (f *fakeMachine) Stop(_ context.Context, id string, grace time.Duration) (sm.Container, error) {
	if err := f.record("stop", id); err != nil {
		return sm.Container{}, err
	}
	f.mu.Lock()
	f.grace = grace
	f.mu.Unlock()
	return f.to(id, sm.StateStopped)
}

func (f *fakeMachine) Kill(_ context.Context, id string, sig syscall.Signal) (sm.Container, error) {
	if err := f.record("kill", id); err != nil {
		return sm.Container{}, err
	}
	f.mu.Lock()
	f.signal = sig
	f.mu.Unlock()
	return f.exists(id)
}

func (f *fakeMachine) Pause(_ context.Context, id string) (sm.Container, error) {
	if err := f.record("pause", id); err != nil {
		return sm.Container{}, err
	}
	return f.to(id, sm.StatePaused)
}

func (f *fakeMachine) Unpause(_ context.Context, id string) (sm.Container, error) {
	if err := f.record("unpause", id); err != nil {
		return sm.Container{}, err
	}
	return f.to(id, sm.StateRunning)
}

func (f *fakeMachine) Restart(_ context.Context, id string, grace time.Duration) (sm.Container, error) {
	if err := f.record("restart", id); err != nil {
		return sm.Container{}, err
	}
	f.mu.Lock()
	f.grace = grace
	f.mu.Unlock()
	return f.to(id, sm.StateRunning)
}

func (f *fakeMachine) Remove(_ context.Context, id string, force bool) (sm.Container, error) {
	if err := f.record("remove", id); err != nil {
		return sm.Container{}, err
	}
	c, err := f.exists(id)
	if err != nil {
		return c, err
	}
	f.mu.Lock()
	f.force = force
	delete(f.containers, id)
	delete(f.names, c.Name)
	ch := f.changed[id]
	delete(f.changed, id)
	f.mu.Unlock()
	if ch != nil {
		close(ch)
	}
	c.State = sm.StateRemoved
	return c, nil
}

func (f *fakeMachine) Wait(ctx context.Context, id string) (sm.Container, error) {
	if err := f.record("wait", id); err != nil {
		return sm.Container{}, err
	}
	for {
		changed := f.Changes(id)
		c, err := f.exists(id)
		if err != nil || !c.State.HasProcess() {
			if err != nil {
				// Gone: as the driver's tombstone would, report stopped.
				return sm.Container{ID: id, State: sm.StateRemoved}, nil
			}
			return c, nil
		}
		select {
		case <-ctx.Done():
			return c, ctx.Err()
		case <-changed:
		}
	}
}

func (f *fakeMachine) Changes(id string) <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch, ok := f.changed[id]
	if !ok {
		ch = make(chan struct{})
		f.changed[id] = ch
	}
	return ch
}

func (f *fakeMachine) Settle(id string) { _ = f.record("settle", id) }

// The View.

func (f *fakeMachine) Resolve(ref string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.containers[ref]; ok {
		return ref, nil
	}
	if id, ok := f.names[ref]; ok {
		return id, nil
	}
	var found []string
	for id := range f.containers {
		if len(ref) >= 4 && strings.HasPrefix(id, ref) {
			found = append(found, id)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return "", fmt.Errorf("no such container: %s: %w", ref, errdefs.ErrNotFound)
	default:
		return "", fmt.Errorf("container prefix %s is ambiguous: %w", ref, errdefs.ErrInvalidArgument)
	}
}

func (f *fakeMachine) Container(id string) (sm.Container, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[id]
	return c, ok
}

func (f *fakeMachine) Containers() []sm.Container {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []sm.Container
	for _, c := range f.containers {
		out = append(out, c)
	}
	return out
}

// fakeMounts knows one mount.
type fakeMounts struct{}

func (fakeMounts) MountInfo(id string) (layer.Mount, error) {
	if id != fakeID(99) {
		return layer.Mount{}, fmt.Errorf("mount %s: %w", id, errdefs.ErrNotFound)
	}
	return layer.Mount{Rootfs: "/m/merged", Upper: "/m/upper", Work: "/m/work", Init: "/m/init", Lower: []string{"/l/1"}}, nil
}

// dirLogs keeps each container's log as dir/<id>, like the executor.
type dirLogs struct{ dir string }

func (l dirLogs) path(id string) string { return filepath.Join(l.dir, id) }

func (l dirLogs) LogPath(id string) string { return l.path(id) }

func (l dirLogs) write(t *testing.T, id, s string) {
	t.Helper()
	f, err := os.OpenFile(l.path(id), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

// fakeImages is an image store in memory; Import reads the whole stream.
type fakeImages struct {
	mu     sync.Mutex
	images map[string]layer.Image
	read   map[string][]byte
	fail   error
}

func newFakeImages() *fakeImages {
	return &fakeImages{images: map[string]layer.Image{}, read: map[string][]byte{}}
}

func (s *fakeImages) Import(_ context.Context, name string, r io.Reader) (layer.Image, error) {
	if s.fail != nil {
		return layer.Image{}, s.fail
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return layer.Image{}, fmt.Errorf("read image stream: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.images[name]; ok {
		return layer.Image{}, fmt.Errorf("image %s: %w", name, errdefs.ErrAlreadyExists)
	}
	sum := sha256.Sum256([]byte(name))
	img := layer.Image{Name: name, ID: "sha256:" + hex.EncodeToString(sum[:]), DiffIDs: []string{"sha256:d"}, ChainID: "sha256:d", Size: int64(len(data)), CreatedAt: time.Now()}
	s.images[name] = img
	s.read[name] = data
	return img, nil
}

func (s *fakeImages) List() ([]layer.Image, error) {
	if s.fail != nil {
		return nil, s.fail
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []layer.Image
	for _, img := range s.images {
		out = append(out, img)
	}
	return out, nil
}

func (s *fakeImages) Remove(_ context.Context, name string) (images.Removed, error) {
	if s.fail != nil {
		return images.Removed{}, s.fail
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	img, ok := s.images[name]
	if !ok {
		return images.Removed{}, fmt.Errorf("image %s: %w", name, errdefs.ErrNotFound)
	}
	delete(s.images, name)
	return images.Removed{Untagged: []string{name}, Deleted: img.ID}, nil
}

// Load reads the whole stream and registers one image named after its
// first line.
func (s *fakeImages) Load(_ context.Context, r io.Reader) ([]layer.Image, error) {
	if s.fail != nil {
		return nil, s.fail
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read image stream: %w", err)
	}
	name, _, _ := strings.Cut(string(data), "\n")
	s.mu.Lock()
	defer s.mu.Unlock()
	img := layer.Image{Name: name, ID: "sha256:" + strings.Repeat("e", 64), DiffIDs: []string{"sha256:d"}, ChainID: "sha256:d", Size: int64(len(data))}
	s.images[name] = img
	s.read[name] = data
	return []layer.Image{img}, nil
}

func (s *fakeImages) Inspect(ref string) (images.Inspection, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	img, ok := s.images[ref]
	if !ok {
		return images.Inspection{}, fmt.Errorf("image %s: %w", ref, errdefs.ErrNotFound)
	}
	return images.Inspection{Image: img}, nil
}

func (s *fakeImages) Tag(_ context.Context, src, dst string) (layer.Image, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	img, ok := s.images[src]
	if !ok {
		return layer.Image{}, fmt.Errorf("image %s: %w", src, errdefs.ErrNotFound)
	}
	img.Name = dst
	s.images[dst] = img
	return img, nil
}

func (s *fakeImages) Prune(context.Context, bool) ([]string, error) { return nil, s.fail }

func (s *fakeImages) ImageID(ref string) (string, error) {
	img, err := s.Inspect(ref)
	return img.Image.ID, err
}

// fakeRecords is a journal of records that can grow while it is read.
type fakeRecords struct {
	mu        sync.Mutex
	records   []sm.Record
	appended  chan struct{}
	compacted uint64
	view      *fakeMachine
	fail      error
}

func (j *fakeRecords) RecordsAfter(after uint64, max int) ([]sm.Record, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.fail != nil {
		return nil, j.fail
	}
	var out []sm.Record
	for _, r := range j.records {
		if r.Seq > after && len(out) < max {
			out = append(out, r)
		}
	}
	return out, nil
}

// add appends records (their seqs must grow) and wakes watchers.
func (j *fakeRecords) add(recs ...sm.Record) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.records = append(j.records, recs...)
	if j.appended != nil {
		close(j.appended)
		j.appended = nil
	}
}

func (j *fakeRecords) Appended() <-chan struct{} {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.appended == nil {
		j.appended = make(chan struct{})
	}
	return j.appended
}

func (j *fakeRecords) LastSeq() uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.records) == 0 {
		return 0
	}
	return j.records[len(j.records)-1].Seq
}

func (j *fakeRecords) CompactedThrough() (uint64, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.compacted, nil
}

func (j *fakeRecords) Resolve(ref string) (string, error)       { return j.view.Resolve(ref) }
func (j *fakeRecords) Container(id string) (sm.Container, bool) { return j.view.Container(id) }

func journalServer(records *fakeRecords, images ImageIDs, change func(*JournalServer)) *JournalServer {
	j := &JournalServer{Journal: records, Images: images}
	if change != nil {
		change(j)
	}
	return j
}

// rig is an API server over fakes, reached through real Connect clients.
type rig struct {
	machine *fakeMachine
	logs    dirLogs
	images  *fakeImages
	records *fakeRecords
	apiclient.Clients
}

func newRig(t *testing.T) *rig {
	t.Helper()
	return newRigWith(t, nil)
}

// newRigWith is newRig with the journal server adjusted by change.
func newRigWith(t *testing.T, change func(*JournalServer)) *rig {
	t.Helper()
	r := &rig{machine: newFakeMachine(), logs: dirLogs{dir: t.TempDir()}, images: newFakeImages()}
	r.records = &fakeRecords{view: r.machine}
	gate := &Gate{}
	gate.Open()
	h := Handlers{
		Containers: &ContainerServer{Machine: r.machine, View: r.machine, Mounts: fakeMounts{}, LogFiles: r.logs, LogPoll: time.Millisecond},
		Images:     &ImageServer{Images: r.images},
		Journal:    journalServer(r.records, r.images, change),
		Health:     NewHealth(),
		Gate:       gate,
	}
	srv := httptest.NewUnstartedServer(h.Mux())
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	r.Clients = apiclient.Clients{
		Containers: cairnv1connect.NewContainerServiceClient(srv.Client(), srv.URL),
		Images:     cairnv1connect.NewImageServiceClient(srv.Client(), srv.URL),
		Journal:    cairnv1connect.NewJournalServiceClient(srv.Client(), srv.URL),
		System:     cairnv1connect.NewSystemServiceClient(srv.Client(), srv.URL),
		HTTP:       srv.Client(),
	}
	return r
}

func wantCode(t *testing.T, what string, err error, want connect.Code) {
	t.Helper()
	if got := connect.CodeOf(err); err == nil || got != want {
		t.Errorf("%s: got %v, want %v", what, err, want)
	}
}

var errBoom = errors.New("boom")
