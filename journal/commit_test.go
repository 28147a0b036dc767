package journal

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/cairn-run/cairn/internal/errdefs"
	"github.com/cairn-run/cairn/internal/schema"
	sm "github.com/cairn-run/cairn/statemachine"
)

func createIntent(id, name string) sm.Record {
	return sm.Record{Kind: sm.KindIntent, Container: id, Event: sm.EventCreate, To: sm.StateCreated, Args: createArgs(name)}
}

// putOp writes key=value into images/ (any store bucket will do), after
// checking that the key is free.
func putOp(key string) schema.Op {
	return func(tx *bolt.Tx) error {
		if schema.Images(tx).Get([]byte(key)) != nil {
			return fmt.Errorf("%s: %w", key, errdefs.ErrAlreadyExists)
		}
		return schema.Images(tx).Put([]byte(key), []byte(`{}`))
	}
}

var errRefused = errors.New("refused")

func refuseOp(tx *bolt.Tx) error { return errRefused }

func storeHas(t *testing.T, j *Journal, key string) bool {
	t.Helper()
	var ok bool
	if err := j.View(func(tx *bolt.Tx) error { ok = schema.Images(tx).Get([]byte(key)) != nil; return nil }); err != nil {
		t.Fatal(err)
	}
	return ok
}

func TestCommit_RecordsAndWritesCommitTogetherOrNotAtAll(t *testing.T) {
	j := openTemp(t)
	recs, err := j.Commit([]sm.Record{createIntent("c1", "one"), createIntent("c2", "two")}, putOp("k1"))
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].Seq != 1 || recs[1].Seq != 2 || recs[0].Time.IsZero() {
		t.Fatalf("committed %+v", recs)
	}
	if _, ok := j.Container("c2"); !ok || !storeHas(t, j, "k1") {
		t.Fatal("records or write missing")
	}
	last := j.LastSeq()
	for name, call := range map[string]struct {
		recs   []sm.Record
		writes []sm.Write
		want   error
	}{
		"second record does not fold": {[]sm.Record{createIntent("c3", "three"), createIntent("c1", "")}, []sm.Write{putOp("k3")}, ErrInconsistent},
		"name taken":                  {[]sm.Record{createIntent("c4", "one")}, []sm.Write{putOp("k4")}, errdefs.ErrAlreadyExists},
		"write refused":               {[]sm.Record{createIntent("c5", "five")}, []sm.Write{schema.Op(refuseOp)}, errRefused},
		"second write refused":        {[]sm.Record{createIntent("c6", "six")}, []sm.Write{putOp("k6"), schema.Op(refuseOp)}, errRefused},
		"not a schema.Op":             {[]sm.Record{createIntent("c7", "seven")}, []sm.Write{fakeWrite{}}, errdefs.ErrInvalidArgument},
	} {
		if _, err := j.Commit(call.recs, call.writes...); !errors.Is(err, call.want) {
			t.Errorf("%s: got %v, want %v", name, err, call.want)
		}
	}
	for _, id := range []string{"c3", "c4", "c5", "c6", "c7"} {
		if _, ok := j.Container(id); ok {
			t.Errorf("%s of a refused call is in the view", id)
		}
	}
	for _, k := range []string{"k3", "k4", "k6"} {
		if storeHas(t, j, k) {
			t.Errorf("write %s of a refused call is in the file", k)
		}
	}
	if j.LastSeq() != last {
		t.Fatalf("refused calls moved the journal from %d to %d", last, j.LastSeq())
	}
	if err := j.Verify(); err != nil {
		t.Fatal(err)
	}
}

type fakeWrite struct{}

func (fakeWrite) JournalWrite() {}

// TestCommit_ARefusedCallLeavesTheOthersOfItsBatchAlone runs one batch by
// hand, as the commit loop would: a call whose second write fails after its
// first wrote must roll the transaction back and commit the others again.
func TestCommit_ARefusedCallLeavesTheOthersOfItsBatchAlone(t *testing.T) {
	obs := &countingObserver{}
	j := openTemp(t)
	j.obs = obs
	mk := func(recs []sm.Record, writes ...sm.Write) *commitRequest {
		req, err := newCommitRequest(recs, writes)
		if err != nil {
			t.Fatal(err)
		}
		return req
	}
	batch := []*commitRequest{
		mk([]sm.Record{createIntent("a", "a")}, putOp("ka")),
		mk([]sm.Record{createIntent("b", "b")}, putOp("kb"), schema.Op(refuseOp)), // rolled back, retried without
		mk([]sm.Record{createIntent("c", "c")}, schema.Op(refuseOp)),              // refused in place
		mk([]sm.Record{createIntent("d", "a")}),                                   // name taken by a call of the same batch
		mk([]sm.Record{createIntent("e", "e")}, putOp("ke")),
	}
	j.commit(batch)
	want := []error{nil, errRefused, errRefused, errdefs.ErrAlreadyExists, nil}
	for i, req := range batch {
		res := <-req.done
		if !errors.Is(res.err, want[i]) || (want[i] == nil) != (res.err == nil) {
			t.Errorf("call %d: got %v, want %v", i, res.err, want[i])
		}
	}
	if !storeHas(t, j, "ka") || !storeHas(t, j, "ke") || storeHas(t, j, "kb") {
		t.Fatal("the batch's writes are not those of the calls that committed")
	}
	a, _ := j.Container("a")
	e, _ := j.Container("e")
	if a.Seq != 1 || e.Seq != 2 || j.LastSeq() != 2 {
		t.Fatalf("sequence: a %d, e %d, last %d; want 1, 2, 2", a.Seq, e.Seq, j.LastSeq())
	}
	if obs.commits.Load() != 1 {
		t.Fatalf("%d commits for one batch", obs.commits.Load())
	}
	if err := j.Verify(); err != nil {
		t.Fatal(err)
	}
}

func TestCommit_ConcurrentCallsWithWritesShareCommits(t *testing.T) {
	obs := &countingObserver{}
	j := openTemp(t)
	j.obs = obs
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("c%d", i)
			if _, err := j.Commit([]sm.Record{createIntent(id, "")}, putOp(id)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if obs.commits.Load() >= 64 {
		t.Fatalf("64 calls took %d commits: no group commit", obs.commits.Load())
	}
	for i := range 64 {
		if !storeHas(t, j, fmt.Sprintf("c%d", i)) {
			t.Fatalf("write of call %d missing", i)
		}
	}
}
