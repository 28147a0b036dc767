package recovery

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/cairn-run/cairn/journal"
	sm "github.com/cairn-run/cairn/statemachine"
)

func pendingVolume(event sm.Event, from sm.State) sm.VolumeView {
	to, _ := sm.VolumeTarget(from, event)
	return sm.VolumeView{Name: "data", State: from, Pending: &sm.Pending{Seq: 7, Event: event, From: from, To: to}}
}

func TestDecideVolume(t *testing.T) {
	for _, tt := range []struct {
		name      string
		view      sm.VolumeView
		world     VolumeWorld
		to        sm.State
		removes   bool
		uncertain bool
	}{
		{"create, no directory", pendingVolume(sm.EventVolumeCreate, sm.StateNone), VolumeWorld{No, No}, sm.StateNone, false, false},
		{"create, directory without _data", pendingVolume(sm.EventVolumeCreate, sm.StateNone), VolumeWorld{Yes, No}, sm.StateNone, true, false},
		{"create, directory with _data", pendingVolume(sm.EventVolumeCreate, sm.StateNone), VolumeWorld{Yes, Yes}, sm.StatePresent, false, false},
		{"create, unreadable", pendingVolume(sm.EventVolumeCreate, sm.StateNone), VolumeWorld{Unknown, Unknown}, "", false, true},
		{"create, _data unreadable", pendingVolume(sm.EventVolumeCreate, sm.StateNone), VolumeWorld{Yes, Unknown}, "", false, true},
		{"remove, directory there", pendingVolume(sm.EventVolumeRemove, sm.StatePresent), VolumeWorld{Yes, Yes}, sm.StateRemoved, true, false},
		{"remove, _data already gone", pendingVolume(sm.EventVolumeRemove, sm.StatePresent), VolumeWorld{Yes, No}, sm.StateRemoved, true, false},
		{"remove, everything gone", pendingVolume(sm.EventVolumeRemove, sm.StatePresent), VolumeWorld{No, No}, sm.StateRemoved, false, false},
		{"remove, unreadable: removed anyway", pendingVolume(sm.EventVolumeRemove, sm.StatePresent), VolumeWorld{Unknown, Unknown}, sm.StateRemoved, true, false},
	} {
		plan := DecideVolume(tt.view, tt.world)
		if tt.uncertain {
			if plan.Uncertain == "" || plan.Record != nil || len(plan.Actions) > 0 {
				t.Errorf("%s: %+v, want nothing decided", tt.name, plan)
			}
			continue
		}
		rec := plan.Record
		if rec == nil || rec.Kind != sm.KindReconciled || rec.To != tt.to || rec.Intent != 7 || rec.Object != sm.ObjectVolume || rec.ObjectID != "data" || rec.Error == "" {
			t.Errorf("%s: record %+v, want RECONCILED to %q", tt.name, rec, tt.to)
			continue
		}
		if got := len(plan.Actions) == 1 && plan.Actions[0] == ActionRemoveVolumeDirectory; got != tt.removes {
			t.Errorf("%s: actions %v", tt.name, plan.Actions)
		}
		if _, err := journal.ApplyVolume(&tt.view, *rec); err != nil {
			t.Errorf("%s: the record does not fold: %v", tt.name, err)
		}
	}
	if plan := DecideVolume(sm.VolumeView{Name: "data", State: sm.StatePresent}, VolumeWorld{}); plan.Record != nil || len(plan.Actions) > 0 {
		t.Errorf("a volume without an intent: %+v", plan)
	}
}

type fakeVolumeStore struct {
	dir, data bool
	fail      error
	removed   []string
}

func (s *fakeVolumeStore) Exists(string) (bool, bool, error) { return s.dir, s.data, s.fail }
func (s *fakeVolumeStore) RemoveDirectory(name string) error {
	s.removed = append(s.removed, name)
	s.dir, s.data = false, false
	return nil
}

func TestRunner_FinishesAnUnfinishedVolumeRemoveAndKeepsAnUncertainCreate(t *testing.T) {
	j, err := journal.Open(filepath.Join(t.TempDir(), "cairn.db"), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	rec := func(kind sm.Kind, ev sm.Event, from, to sm.State, intent uint64) sm.Record {
		r, err := j.Append(sm.Record{Kind: kind, Object: sm.ObjectVolume, ObjectID: "data", Event: ev, From: from, To: to, Intent: intent})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	in := rec(sm.KindIntent, sm.EventVolumeCreate, sm.StateNone, sm.StatePresent, 0)
	store := &fakeVolumeStore{fail: errors.New("unreadable")}
	fj := newFakeJournal()
	w := newWorld(fj)
	r := Runner{Journal: fj, Runtime: w, Layers: w, Lifecycle: lifecycle{w},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Volumes: store, VolumeJournal: j}
	if _, err := r.Run(context.Background()); err == nil {
		t.Fatal("an unreadable directory decided something")
	}
	if v, _ := j.Volume("data"); v.Pending == nil || v.Pending.Seq != in.Seq {
		t.Fatalf("the uncertain intent was not kept: %+v", v)
	}
	store.fail, store.dir, store.data = nil, true, true
	if rep, err := r.Run(context.Background()); err != nil || rep.Volumes != 1 {
		t.Fatalf("report %+v, %v", rep, err)
	}
	if v, ok := j.Volume("data"); !ok || v.State != sm.StatePresent || v.Pending != nil {
		t.Fatalf("a create whose directory is there was not rolled forward: %+v", v)
	}
	rec(sm.KindIntent, sm.EventVolumeRemove, sm.StatePresent, sm.StateRemoved, 0)
	rep, err := r.Run(context.Background())
	if err != nil || rep.Volumes != 1 || len(store.removed) != 1 {
		t.Fatalf("report %+v, %v, removed %v", rep, err, store.removed)
	}
	if _, ok := j.Volume("data"); ok {
		t.Fatal("an unfinished remove left the volume")
	}
	if err := j.Verify(); err != nil {
		t.Fatal(err)
	}
}
