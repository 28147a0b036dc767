package journal

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairn-run/cairn/internal/errdefs"
	sm "github.com/cairn-run/cairn/statemachine"
)

func openTemp(t testing.TB) *Journal {
	t.Helper()
	j, err := Open(filepath.Join(t.TempDir(), "cairn.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = j.Close() })
	return j
}

func mustAppend(t testing.TB, j *Journal, rec sm.Record) sm.Record {
	t.Helper()
	got, err := j.Append(rec)
	if err != nil {
		t.Fatalf("append %+v: %v", rec, err)
	}
	return got
}

func createArgs(name string) *sm.Args {
	return &sm.Args{Name: name, Image: "busybox", Command: []string{"sh"}, MountID: "m-" + name, Hostname: "h"}
}

// transition appends an INTENT and its DONE, as the driver does.
func transition(t testing.TB, j *Journal, id string, ev sm.Event, from, to sm.State, args *sm.Args, res *sm.Result) {
	t.Helper()
	intent := mustAppend(t, j, sm.Record{Kind: sm.KindIntent, Container: id, Event: ev, From: from, To: to, Args: args})
	mustAppend(t, j, sm.Record{Kind: sm.KindDone, Container: id, Event: ev, From: from, To: to, Intent: intent.Seq, Result: res})
}

func TestAppend_CreateStartStopBuildsTheView(t *testing.T) {
	j := openTemp(t)
	transition(t, j, "c1", sm.EventCreate, sm.StateNone, sm.StateCreated, createArgs("web"), nil)
	started := time.Now().UTC()
	transition(t, j, "c1", sm.EventStart, sm.StateCreated, sm.StateRunning, nil,
		&sm.Result{Process: &sm.Process{PID: 42, StartTime: 7, StartedAt: started}})
	c, ok := j.Container("c1")
	if !ok || c.State != sm.StateRunning || c.Process.PID != 42 || c.Name != "web" || c.CreatedAt.IsZero() {
		t.Fatalf("view after start: %+v", c)
	}
	transition(t, j, "c1", sm.EventStop, sm.StateRunning, sm.StateStopped, nil,
		&sm.Result{Exit: sm.ExitCode(137, started.Add(time.Second))})
	c, _ = j.Container("c1")
	if c.State != sm.StateStopped || c.Process != nil || c.Exit == nil || *c.Exit.Code != 137 {
		t.Fatalf("view after stop: %+v", c)
	}
	if id, err := j.Resolve("web"); err != nil || id != "c1" {
		t.Fatalf("resolve by name: %q %v", id, err)
	}
	if err := j.Verify(); err != nil {
		t.Fatal(err)
	}
}

func TestAppend_IntentIsVisibleAsPendingUntilDone(t *testing.T) {
	j := openTemp(t)
	transition(t, j, "c1", sm.EventCreate, sm.StateNone, sm.StateCreated, createArgs(""), nil)
	intent := mustAppend(t, j, sm.Record{Kind: sm.KindIntent, Container: "c1", Event: sm.EventStart, From: sm.StateCreated, To: sm.StateRunning})
	c, _ := j.Container("c1")
	if c.Pending == nil || c.Pending.Seq != intent.Seq || c.State != sm.StateCreated {
		t.Fatalf("pending intent not in view: %+v", c)
	}
	mustAppend(t, j, sm.Record{Kind: sm.KindFailed, Container: "c1", Event: sm.EventStart, From: sm.StateCreated, To: sm.StateCreated, Intent: intent.Seq, Error: "boom"})
	c, _ = j.Container("c1")
	if c.Pending != nil || c.State != sm.StateCreated {
		t.Fatalf("failed intent left: %+v", c)
	}
}

func TestAppend_FailedCreateReleasesNameAndContainer(t *testing.T) {
	j := openTemp(t)
	intent := mustAppend(t, j, sm.Record{Kind: sm.KindIntent, Container: "c1", Event: sm.EventCreate, To: sm.StateCreated, Args: createArgs("web")})
	if _, err := j.Resolve("web"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("a create in flight must not resolve, got %v", err)
	}
	mustAppend(t, j, sm.Record{Kind: sm.KindFailed, Container: "c1", Event: sm.EventCreate, Intent: intent.Seq, Error: "no image"})
	if _, ok := j.Container("c1"); ok {
		t.Fatal("failed create left a container")
	}
	if _, ok := j.IDByName("web"); ok {
		t.Fatal("failed create left its name taken")
	}
	if err := j.Verify(); err != nil {
		t.Fatal(err)
	}
}

func TestAppend_InconsistentRecordIsRefusedAndNothingWritten(t *testing.T) {
	j := openTemp(t)
	transition(t, j, "c1", sm.EventCreate, sm.StateNone, sm.StateCreated, createArgs("web"), nil)
	before := j.LastSeq()
	cases := []sm.Record{
		{Kind: sm.KindDone, Container: "c1", Event: sm.EventStart, To: sm.StateRunning, Intent: 99},
		{Kind: sm.KindIntent, Container: "nope", Event: sm.EventStart},
		{Kind: sm.KindIntent, Container: "c1", Event: sm.EventCreate, Args: createArgs("x")},
		{Kind: "BOGUS", Container: "c1"},
	}
	for _, rec := range cases {
		if _, err := j.Append(rec); !errors.Is(err, ErrInconsistent) {
			t.Errorf("%+v: got %v, want ErrInconsistent", rec, err)
		}
	}
	_, err := j.Append(sm.Record{Kind: sm.KindIntent, Container: "c2", Event: sm.EventCreate, Args: createArgs("web")})
	if !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Errorf("duplicate name: got %v, want ErrAlreadyExists", err)
	}
	if got := j.LastSeq(); got != before {
		t.Fatalf("refused records advanced the journal from %d to %d", before, got)
	}
	if err := j.Verify(); err != nil {
		t.Fatal(err)
	}
}

func TestOpen_SecondOpenerGetsLockedError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cairn.db")
	j, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	start := time.Now()
	_, err = Open(path, Options{LockTimeout: 200 * time.Millisecond})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("got %v, want ErrLocked", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("second open hung for %v", time.Since(start))
	}
}

func TestOpen_CorruptFileIsRefusedAndKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cairn.db")
	j, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	transition(t, j, "c1", sm.EventCreate, sm.StateNone, sm.StateCreated, createArgs("web"), nil)
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pageSize := os.Getpagesize()
	for i := 2 * pageSize; i < 6*pageSize && i < len(data); i++ {
		data[i] = 0xff
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Open(path, Options{})
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("got %v, want ErrCorrupt", err)
	}
	after, err := os.ReadFile(path)
	if err != nil || string(after) != string(data) {
		t.Fatalf("corrupt journal was modified or deleted (%v)", err)
	}
}

func TestReopen_ViewSurvivesAndEqualsFold(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cairn.db")
	j, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	transition(t, j, "c1", sm.EventCreate, sm.StateNone, sm.StateCreated, createArgs("web"), nil)
	want, _ := j.Container("c1")
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	got, ok := j.Container("c1")
	if !ok || got.Seq != want.Seq || got.Name != "web" || !got.CreatedAt.Equal(want.CreatedAt) {
		t.Fatalf("after reopen: %+v, want %+v", got, want)
	}
	if _, err := j.Append(sm.Record{Kind: sm.KindIntent, Container: "c2", Event: sm.EventCreate, Args: createArgs("web")}); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Fatalf("names not reloaded: %v", err)
	}
}

// randomWorkload drives n containers through random legal transitions from
// concurrent goroutines, with random failures, as the driver would.
func randomWorkload(t testing.TB, j *Journal, workers, steps int, seed uint64) {
	var wg sync.WaitGroup
	events := []sm.Event{sm.EventStart, sm.EventPause, sm.EventUnpause, sm.EventStop, sm.EventExit, sm.EventRestart, sm.EventRemove, sm.EventForceRemove, sm.EventKill}
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			id, state, gen := "", sm.StateNone, 0
			for range steps {
				if state == sm.StateNone || state == sm.StateRemoved {
					gen++
					id = fmt.Sprintf("w%d-%d", w, gen)
					name := ""
					if rng.IntN(2) == 0 {
						name = "n" + id
					}
					transition(t, j, id, sm.EventCreate, sm.StateNone, sm.StateCreated, createArgs(name), nil)
					state = sm.StateCreated
					continue
				}
				ev := events[rng.IntN(len(events))]
				to, err := sm.Target(state, ev)
				if err != nil {
					continue
				}
				intent := mustAppend(t, j, sm.Record{Kind: sm.KindIntent, Container: id, Event: ev, From: state, To: to})
				var res *sm.Result
				if to == sm.StateRunning && ev != sm.EventUnpause && ev != sm.EventKill {
					res = &sm.Result{Process: &sm.Process{PID: rng.IntN(1 << 20), StartTime: rng.Uint64(), StartedAt: time.Now().UTC()}}
				}
				if to == sm.StateStopped {
					res = &sm.Result{Exit: sm.ExitCode(rng.IntN(256), time.Now().UTC())}
				}
				kind := sm.KindDone
				if rng.IntN(5) == 0 {
					kind, to, res = sm.KindFailed, state, nil
				}
				mustAppend(t, j, sm.Record{Kind: kind, Container: id, Event: ev, From: state, To: to, Intent: intent.Seq, Result: res})
				state = to
			}
		}()
	}
	wg.Wait()
}

func TestFold_RandomConcurrentWorkloadReplaysToTheStoredView(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cairn.db")
	j, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	randomWorkload(t, j, 16, 300, uint64(time.Now().UnixNano()))
	if err := j.Verify(); err != nil {
		t.Fatal(err)
	}
	memory := j.Containers()
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	reloaded := j.Containers()
	if len(reloaded) != len(memory) {
		t.Fatalf("memory view had %d containers, stored view %d", len(memory), len(reloaded))
	}
	for i := range memory {
		if memory[i].ID != reloaded[i].ID || memory[i].Seq != reloaded[i].Seq || memory[i].State != reloaded[i].State {
			t.Fatalf("memory %+v != stored %+v", memory[i], reloaded[i])
		}
	}
}

type countingObserver struct{ commits, records atomic.Int64 }

func (c *countingObserver) Committed(records int, _ time.Duration) {
	c.commits.Add(1)
	c.records.Add(int64(records))
}

func TestAppend_ConcurrentAppendsShareCommits(t *testing.T) {
	obs := &countingObserver{}
	j, err := Open(filepath.Join(t.TempDir(), "cairn.db"), Options{Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	randomWorkload(t, j, 64, 20, 1)
	if obs.records.Load() < 2*obs.commits.Load() {
		t.Fatalf("%d records in %d commits: appends are not grouped", obs.records.Load(), obs.commits.Load())
	}
}

func TestMeta_CleanShutdownMarkerTellsACrashApart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cairn.db")
	j, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	info, err := j.MarkStarted("boot-a")
	if err != nil || !info.FirstStart {
		t.Fatalf("first start: %+v %v", info, err)
	}
	// A crash: no clean-shutdown marker.
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j, _ = Open(path, Options{})
	if info, _ = j.MarkStarted("boot-a"); info.CleanShutdown || info.Rebooted {
		t.Fatalf("after a crash: %+v", info)
	}
	if err := j.MarkCleanShutdown(); err != nil {
		t.Fatal(err)
	}
	_ = j.Close()
	j, _ = Open(path, Options{})
	defer j.Close()
	if info, _ = j.MarkStarted("boot-b"); !info.CleanShutdown || !info.Rebooted {
		t.Fatalf("after a clean shutdown and a reboot: %+v", info)
	}
}

func TestCompact_DropsOldHistoriesOfGoneContainersOnly(t *testing.T) {
	j := openTemp(t)
	// Old, finished: removed long ago.
	for i := range 50 {
		id := fmt.Sprintf("old-%d", i)
		transition(t, j, id, sm.EventCreate, sm.StateNone, sm.StateCreated, createArgs(""), nil)
		transition(t, j, id, sm.EventRemove, sm.StateCreated, sm.StateRemoved, nil, nil)
	}
	// Live since the beginning: its whole history stays.
	transition(t, j, "live", sm.EventCreate, sm.StateNone, sm.StateCreated, createArgs("keep"), nil)
	for range 20 {
		transition(t, j, "filler", sm.EventCreate, sm.StateNone, sm.StateCreated, createArgs(""), nil)
		transition(t, j, "filler", sm.EventRemove, sm.StateCreated, sm.StateRemoved, nil, nil)
	}
	// Removed recently: within the retained window.
	transition(t, j, "recent", sm.EventCreate, sm.StateNone, sm.StateCreated, createArgs(""), nil)
	transition(t, j, "recent", sm.EventRemove, sm.StateCreated, sm.StateRemoved, nil, nil)
	last := j.LastSeq()

	res, err := j.Compact(10, 7)
	if err != nil {
		t.Fatal(err)
	}
	if res.Deleted != 200 {
		t.Fatalf("deleted %d records, want the 200 of the old containers", res.Deleted)
	}
	count := func(id string) int {
		n := 0
		_ = j.Records(0, id, func(sm.Record) error { n++; return nil })
		return n
	}
	if count("old-3") != 0 || count("live") != 2 || count("recent") != 4 {
		t.Fatalf("after compaction: old-3 %d, live %d, recent %d records", count("old-3"), count("live"), count("recent"))
	}
	if err := j.Verify(); err != nil {
		t.Fatalf("compacted journal no longer folds to its view: %v", err)
	}
	if j.LastSeq() != last {
		t.Fatal("compaction moved the sequence")
	}
	// The old containers' 200 records are seqs 1..200: an event watcher
	// resuming at or below 200 may have missed some.
	if through, err := j.CompactedThrough(); err != nil || through != 200 {
		t.Fatalf("compacted through %d, %v; want 200", through, err)
	}
	// Counts of finished transitions survive compaction and a reopen.
	path := j.Path()
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = j.Close() })
	got := j.Outcomes()
	if got[Outcome{"create", "DONE"}] != 72 || got[Outcome{"remove", "DONE"}] != 71 {
		t.Fatalf("outcomes after compaction and reopen: %v, want 72 creates and 71 removes", got)
	}
	transition(t, j, "after", sm.EventCreate, sm.StateNone, sm.StateCreated, createArgs(""), nil)
	if got := j.LastSeq(); got != last+2 {
		t.Fatalf("sequence after compaction %d, want %d: numbers must never repeat", got, last+2)
	}
}
