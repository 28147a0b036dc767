package recovery

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-run/cairn/journal"
	sm "github.com/cairn-run/cairn/statemachine"
)

var imgID = "sha256:" + strings.Repeat("9", 64)

func pendingImage(event sm.Event, from sm.State) sm.ImageView {
	to, _ := sm.ImageTarget(from, event)
	return sm.ImageView{ID: imgID, State: from, Pending: &sm.Pending{Seq: 7, Event: event, From: from, To: to,
		Args: &sm.Args{Refs: []string{"docker.io/library/x:latest"}, Layers: []sm.LayerClaim{{ChainID: "sha256:c", CacheID: strings.Repeat("a", 32)}}}}}
}

func TestDecideImage(t *testing.T) {
	for _, tt := range []struct {
		name      string
		view      sm.ImageView
		world     ImageWorld
		to        sm.State
		removes   bool
		uncertain bool
	}{
		{"load, nothing registered", pendingImage(sm.EventLoad, sm.StateNone), ImageWorld{No, No}, sm.StateNone, true, false},
		{"load, registered under its names", pendingImage(sm.EventLoad, sm.StateNone), ImageWorld{Yes, Yes}, sm.StatePresent, true, false},
		{"load of a present image, names not moved", pendingImage(sm.EventLoad, sm.StatePresent), ImageWorld{Yes, No}, sm.StatePresent, true, false},
		{"import, nothing registered", pendingImage(sm.EventImport, sm.StateNone), ImageWorld{No, No}, sm.StateNone, true, false},
		{"load, unknown", pendingImage(sm.EventLoad, sm.StateNone), ImageWorld{Unknown, No}, "", false, true},
		{"tag applied", pendingImage(sm.EventTag, sm.StatePresent), ImageWorld{Yes, Yes}, sm.StatePresent, false, false},
		{"tag not applied", pendingImage(sm.EventTag, sm.StateNone), ImageWorld{Yes, No}, sm.StateNone, false, false},
		{"tag, names unreadable", pendingImage(sm.EventTag, sm.StatePresent), ImageWorld{Yes, Unknown}, "", false, true},
		{"untag applied", pendingImage(sm.EventUntag, sm.StatePresent), ImageWorld{Yes, Yes}, sm.StatePresent, false, false},
		{"delete done", pendingImage(sm.EventDelete, sm.StatePresent), ImageWorld{No, Yes}, sm.StateRemoved, false, false},
		{"delete not done", pendingImage(sm.EventDelete, sm.StatePresent), ImageWorld{Yes, No}, sm.StatePresent, false, false},
		{"delete, unknown", pendingImage(sm.EventDelete, sm.StatePresent), ImageWorld{Unknown, Unknown}, "", false, true},
	} {
		plan := DecideImage(tt.view, tt.world)
		if tt.uncertain {
			if plan.Uncertain == "" || plan.Record != nil {
				t.Errorf("%s: %+v, want nothing decided", tt.name, plan)
			}
			continue
		}
		rec := plan.Record
		if rec == nil || rec.Kind != sm.KindReconciled || rec.To != tt.to || rec.Intent != 7 || rec.Object != sm.ObjectImage || rec.ObjectID != imgID || rec.Error == "" {
			t.Errorf("%s: record %+v, want RECONCILED to %q", tt.name, rec, tt.to)
			continue
		}
		if got := len(plan.Actions) > 0 && plan.Actions[0] == ActionRemoveClaimedLayers; got != tt.removes {
			t.Errorf("%s: actions %v", tt.name, plan.Actions)
		}
		// Every decision folds: the journal accepts it after the intent.
		if _, err := journal.ApplyImage(&tt.view, *rec); err != nil {
			t.Errorf("%s: the record does not fold: %v", tt.name, err)
		}
	}
	if plan := DecideImage(sm.ImageView{ID: imgID, State: sm.StatePresent}, ImageWorld{}); plan.Record != nil || len(plan.Actions) > 0 {
		t.Errorf("an image without an intent: %+v", plan)
	}
}

// fakeImageStore is the layer store as image recovery sees it.
type fakeImageStore struct {
	registered map[string]bool
	names      map[string]string
	removed    []string
	fail       error
}

func (s *fakeImageStore) ImageRegistered(id string) (bool, error) { return s.registered[id], s.fail }
func (s *fakeImageStore) NameOf(name string) (string, error)      { return s.names[name], s.fail }
func (s *fakeImageStore) RemoveUnregisteredLayers(ids []string) error {
	s.removed = append(s.removed, ids...)
	return nil
}

func TestRunner_RollsBackAnUnfinishedLoadAndKeepsAnUncertainOne(t *testing.T) {
	j, err := journal.Open(filepath.Join(t.TempDir(), "cairn.db"), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	in, err := j.Append(sm.Record{Kind: sm.KindIntent, Object: sm.ObjectImage, ObjectID: imgID, Event: sm.EventLoad, From: sm.StateNone, To: sm.StatePresent,
		Args: &sm.Args{Refs: []string{"docker.io/library/x:latest"}, Layers: []sm.LayerClaim{{ChainID: "sha256:c", CacheID: strings.Repeat("a", 32)}}}})
	if err != nil {
		t.Fatal(err)
	}
	store := &fakeImageStore{fail: errors.New("store unreadable")}
	fj := newFakeJournal()
	w := newWorld(fj)
	r := Runner{Journal: fj, Runtime: w, Layers: w, Lifecycle: lifecycle{w},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Images: store, ImageJournal: j}
	if _, err := r.Run(context.Background()); err == nil {
		t.Fatal("an unreadable store decided something")
	}
	if v, _ := j.Image(imgID); v.Pending == nil || v.Pending.Seq != in.Seq {
		t.Fatalf("the uncertain intent was not kept: %+v", v)
	}
	store.fail = nil
	rep, err := r.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Images != 1 || len(store.removed) != 1 || store.removed[0] != strings.Repeat("a", 32) {
		t.Fatalf("report %+v, removed %v", rep, store.removed)
	}
	if _, ok := j.Image(imgID); ok {
		t.Fatal("a rolled-back first load keeps a view")
	}
	var last sm.Record
	_ = j.ObjectRecords(0, sm.ObjectImage, imgID, func(r sm.Record) error { last = r; return nil })
	if last.Kind != sm.KindReconciled || last.Intent != in.Seq || !strings.Contains(last.Error, "rolled back") {
		t.Fatalf("last record %+v", last)
	}
	if err := j.Verify(); err != nil {
		t.Fatal(err)
	}
}
