package recovery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-run/cairn/journal"
	sm "github.com/cairn-run/cairn/statemachine"
)

// The runner's tests use fakes of its ports and the journal's pure fold, so
// they run without root, daemon or containers; the decisions themselves
// are decide_test.go's.

// fakeJournal folds appended records with journal.Apply, as the real
// journal does, and keeps them.
type fakeJournal struct {
	mu      sync.Mutex
	views   map[string]sm.Container
	records []sm.Record
	fail    error
}

func newFakeJournal(views ...sm.Container) *fakeJournal {
	j := &fakeJournal{views: map[string]sm.Container{}}
	for _, c := range views {
		j.views[c.ID] = c
	}
	return j
}

func (j *fakeJournal) Append(rec sm.Record) (sm.Record, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.fail != nil {
		return rec, j.fail
	}
	rec.Seq = uint64(100 + len(j.records))
	var prev *sm.Container
	if c, ok := j.views[rec.Container]; ok {
		prev = &c
	}
	next, err := journal.Apply(prev, rec)
	if err != nil {
		return rec, err
	}
	if next == nil {
		delete(j.views, rec.Container)
	} else {
		j.views[rec.Container] = *next
	}
	j.records = append(j.records, rec)
	return rec, nil
}

func (j *fakeJournal) Container(id string) (sm.Container, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	c, ok := j.views[id]
	return c, ok
}

func (j *fakeJournal) Containers() []sm.Container {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []sm.Container
	for _, c := range j.views {
		out = append(out, c)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].ID < out[b].ID })
	return out
}

func (j *fakeJournal) recorded() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []string
	for _, r := range j.records {
		out = append(out, fmt.Sprintf("%s %s %s->%s", r.Container, r.Event, r.From, r.To))
	}
	return out
}

// world is the machine the fakes show and the log of what was done to it,
// in order, each entry tagged with the number of records appended by then.
type world struct {
	mu         sync.Mutex
	j          *fakeJournal
	procs      map[int]uint64 // live pid -> start time
	exits      map[string]*sm.Exit
	freezer    map[string]Freezer
	mounted    map[string]bool
	complete   map[string]bool
	registered []string
	runtimeIDs []string
	failures   map[string]error // action -> error
	did        []string
	reattached []string
	removed    []string
}

func newWorld(j *fakeJournal) *world {
	return &world{j: j, procs: map[int]uint64{}, exits: map[string]*sm.Exit{}, freezer: map[string]Freezer{},
		mounted: map[string]bool{}, complete: map[string]bool{}, failures: map[string]error{}}
}

func (w *world) act(what string) error {
	w.j.mu.Lock()
	n := len(w.j.records)
	w.j.mu.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.did = append(w.did, fmt.Sprintf("%s@%d", what, n))
	return w.failures[strings.Fields(what)[0]]
}

func (w *world) actions() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.did)
}

// Runtime
func (w *world) Observe(id string, p sm.Process) Observation {
	w.mu.Lock()
	defer w.mu.Unlock()
	return Observation{
		ShimAlive: w.procs[p.ShimPID] == p.ShimStartTime && p.ShimPID != 0, ProcessAlive: w.procs[p.PID] == p.StartTime && p.PID != 0,
		Exit: w.exits[id], Freezer: w.freezer[id],
	}
}
func (w *world) Discover(context.Context, string) (sm.Process, bool) { return sm.Process{}, false }
func (w *world) StartTime(pid int) uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.procs[pid]
}
func (w *world) FinishFreeze(id string, _ sm.Process) error { return w.act("finish-freeze " + id) }
func (w *world) Cleanup(id string, _ sm.Process) error      { return w.act("cleanup " + id) }
func (w *world) Remove(id string) error                     { return w.act("remove-runtime " + id) }
func (w *world) IDs() ([]string, error)                     { return w.runtimeIDs, nil }

// Layers
func (w *world) MountComplete(id string) (bool, error) { return w.complete[id], nil }
func (w *world) Mounted(id string) (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.mounted[id], nil
}
func (w *world) MountIDs() ([]string, error) { return w.registered, nil }
func (w *world) MountedIDs() (map[string]bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps(w.mounted), nil
}
func (w *world) CreateMount(_ context.Context, id, _, _ string) error {
	return w.act("create-mount " + id)
}
func (w *world) Unmount(id string) error     { return w.act("unmount " + id) }
func (w *world) RemoveMount(id string) error { return w.act("remove-mount " + id) }

// Lifecycle
func (w *world) Reattach(cs []sm.Container) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range cs {
		w.reattached = append(w.reattached, fmt.Sprintf("%s %s pid %d", c.ID, c.State, c.Process.PID))
	}
}
func (w *world) removeContainer(id string) (sm.Container, error) {
	w.mu.Lock()
	w.removed = append(w.removed, id)
	w.mu.Unlock()
	return sm.Container{}, nil
}

func maps(m map[string]bool) map[string]bool {
	out := map[string]bool{}
	for k, v := range m {
		if v {
			out[k] = true
		}
	}
	return out
}

// lifecycle is the world seen as the driver, whose Remove would clash with
// the runtime's.
type lifecycle struct{ w *world }

func (l lifecycle) Reattach(cs []sm.Container) { l.w.Reattach(cs) }
func (l lifecycle) Remove(_ context.Context, id string, _ bool) (sm.Container, error) {
	return l.w.removeContainer(id)
}

func runner(j *fakeJournal, w *world) (*Runner, *[]string) {
	var crashes []string
	var mu sync.Mutex
	return &Runner{Journal: j, Runtime: w, Layers: w, Lifecycle: lifecycle{w}, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		CrashPoint: func(name string) { mu.Lock(); crashes = append(crashes, name); mu.Unlock() }}, &crashes
}

func running(id string, pid int) sm.Container {
	return sm.Container{ID: id, State: sm.StateRunning, MountID: "m-" + id, Seq: 10,
		Process: &sm.Process{PID: pid, StartTime: uint64(pid * 10), ShimPID: pid - 1, ShimStartTime: uint64(pid*10 - 1)}}
}

func TestRun_ReattachesAfterRecordingAndCleansExitsAfterRecording(t *testing.T) {
	live, gone := running("live", 100), running("gone", 200)
	gone.AutoRemove = true
	j := newFakeJournal(live, gone)
	w := newWorld(j)
	w.procs[100], w.procs[99] = 1000, 989
	w.mounted["m-live"], w.mounted["m-gone"] = true, true
	code := 3
	w.exits["gone"] = &sm.Exit{Code: &code, FinishedAt: time.Now()}
	r, crashes := runner(j, w)
	rep, err := r.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := j.recorded(); !slices.Equal(got, []string{"gone exit running->stopped", "live reattach running->running"}) && !slices.Equal(got, []string{"live reattach running->running", "gone exit running->stopped"}) {
		t.Fatalf("records %v", got)
	}
	c, _ := j.Container("gone")
	if c.State != sm.StateStopped || c.Exit == nil || *c.Exit.Code != 3 {
		t.Fatalf("gone: %+v %+v", c.State, c.Exit)
	}
	for _, a := range w.actions() {
		if at := a[strings.LastIndex(a, "@")+1:]; at == "0" {
			t.Errorf("%s happened before any record: the exit record must come first", a)
		}
	}
	if !slices.Equal(w.reattached, []string{"live running pid 100"}) {
		t.Errorf("reattached %v", w.reattached)
	}
	if !slices.Equal(w.removed, []string{"gone"}) {
		t.Errorf("auto-removed %v, want gone", w.removed)
	}
	if rep.Containers != 2 || rep.Actions[string(ActionReattach)] != 1 || rep.Actions[string(ActionCleanupRun)] != 1 {
		t.Errorf("report %+v", rep)
	}
	if n := len(*crashes); n != 4 {
		t.Errorf("crash points %v, want before and after each record", *crashes)
	}
}

func TestRun_AFailedRollBackRecordsNothingAndKeepsTheIntent(t *testing.T) {
	half := sm.Container{ID: "half", State: sm.StateNone, MountID: "m-half", Seq: 1,
		Pending: &sm.Pending{Seq: 1, Event: sm.EventCreate, To: sm.StateCreated, Args: &sm.Args{MountID: "m-half"}}}
	j := newFakeJournal(half)
	w := newWorld(j)
	w.failures["remove-mount"] = errors.New("busy")
	r, _ := runner(j, w)
	if _, err := r.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "busy") {
		t.Fatalf("got %v, want the roll back's failure", err)
	}
	if got := j.recorded(); len(got) != 0 {
		t.Fatalf("a roll back that did not happen was recorded: %v", got)
	}
	if c, ok := j.Container("half"); !ok || c.Pending == nil {
		t.Fatal("the unfinished create is no longer pending")
	}
}

func TestRun_AnUncertainContainerIsLeftAsTheJournalHasIt(t *testing.T) {
	c := running("frozen?", 300)
	c.Pending = &sm.Pending{Seq: 11, Event: sm.EventPause, From: sm.StateRunning, To: sm.StatePaused}
	j := newFakeJournal(c)
	w := newWorld(j)
	w.procs[300], w.procs[299] = 3000, 2999
	w.freezer["frozen?"] = FreezerUnknown
	r, _ := runner(j, w)
	_, err := r.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "nothing decided") {
		t.Fatalf("got %v, want an uncertain container reported", err)
	}
	if len(j.recorded()) != 0 || len(w.actions()) != 0 || len(w.reattached) != 0 {
		t.Fatalf("acted on an uncertain container: records %v actions %v reattached %v", j.recorded(), w.actions(), w.reattached)
	}
}

func TestRun_LeftoversOfUnknownContainersAreRemovedAndRecorded(t *testing.T) {
	j := newFakeJournal(running("known", 400))
	w := newWorld(j)
	w.procs[400], w.procs[399] = 4000, 3999
	w.mounted["m-known"] = true
	w.runtimeIDs = []string{"known", "stray"}
	w.registered = []string{"m-known", "m-orphan"}
	w.mounted["m-mounted-orphan"] = true
	r, _ := runner(j, w)
	rep, err := r.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	acts := strings.Join(w.actions(), " ")
	for _, want := range []string{"remove-runtime stray", "remove-mount m-orphan", "remove-mount m-mounted-orphan"} {
		if !strings.Contains(acts, want) {
			t.Errorf("actions %s lack %s", acts, want)
		}
	}
	if strings.Contains(acts, "known@") && strings.Contains(acts, "remove-runtime known") {
		t.Errorf("removed the runtime of a known container: %s", acts)
	}
	var leftovers int
	for _, rec := range j.records {
		if rec.Event == EventLeftovers {
			leftovers++
		}
	}
	if leftovers != 3 || rep.Actions["remove-leftovers"] != 3 {
		t.Errorf("%d leftover records, report %v, want 3", leftovers, rep.Actions)
	}
}

func TestRun_AJournalThatRefusesTheRecordLeavesTheContainer(t *testing.T) {
	j := newFakeJournal(running("r", 500))
	w := newWorld(j)
	j.fail = errors.New("disk full")
	r, _ := runner(j, w)
	if _, err := r.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("got %v", err)
	}
	if len(w.actions()) != 0 {
		t.Fatalf("cleaned up an exit that was never recorded: %v", w.actions())
	}
}
