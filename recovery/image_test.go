package recovery

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
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
		{"load, nothing registered", pendingImage(sm.EventLoad, sm.StateNone), ImageWorld{Registered: No, RefsApplied: No}, sm.StateNone, true, false},
		{"load, registered under its names", pendingImage(sm.EventLoad, sm.StateNone), ImageWorld{Registered: Yes, RefsApplied: Yes}, sm.StatePresent, true, false},
		{"load of a present image, names not moved", pendingImage(sm.EventLoad, sm.StatePresent), ImageWorld{Registered: Yes, RefsApplied: No}, sm.StatePresent, true, false},
		{"import, nothing registered", pendingImage(sm.EventImport, sm.StateNone), ImageWorld{Registered: No, RefsApplied: No}, sm.StateNone, true, false},
		{"load, unknown", pendingImage(sm.EventLoad, sm.StateNone), ImageWorld{Registered: Unknown, RefsApplied: No}, "", false, true},
		{"pull, nothing registered", pendingImage(sm.EventPull, sm.StateNone), ImageWorld{Registered: No, RefsApplied: No}, sm.StateNone, true, false},
		{"pull, registered under its names", pendingImage(sm.EventPull, sm.StateNone), ImageWorld{Registered: Yes, RefsApplied: Yes}, sm.StatePresent, true, false},
		{"pull of a present image, name not moved", pendingImage(sm.EventPull, sm.StatePresent), ImageWorld{Registered: Yes, RefsApplied: No}, sm.StatePresent, true, false},
		{"pull, unknown", pendingImage(sm.EventPull, sm.StateNone), ImageWorld{Registered: No, RefsApplied: Unknown}, "", false, true},
		{"commit, nothing registered", pendingImage(sm.EventCommit, sm.StateNone), ImageWorld{Registered: No, RefsApplied: No}, sm.StateNone, true, false},
		{"commit, registered", pendingImage(sm.EventCommit, sm.StateNone), ImageWorld{Registered: Yes, RefsApplied: Yes}, sm.StatePresent, true, false},
		{"tag applied", pendingImage(sm.EventTag, sm.StatePresent), ImageWorld{Registered: Yes, RefsApplied: Yes}, sm.StatePresent, false, false},
		{"tag not applied", pendingImage(sm.EventTag, sm.StateNone), ImageWorld{Registered: Yes, RefsApplied: No}, sm.StateNone, false, false},
		{"tag, names unreadable", pendingImage(sm.EventTag, sm.StatePresent), ImageWorld{Registered: Yes, RefsApplied: Unknown}, "", false, true},
		{"untag applied", pendingImage(sm.EventUntag, sm.StatePresent), ImageWorld{Registered: Yes, RefsApplied: Yes}, sm.StatePresent, false, false},
		{"delete done", pendingImage(sm.EventDelete, sm.StatePresent), ImageWorld{Registered: No, RefsApplied: Yes}, sm.StateRemoved, false, false},
		{"delete not done", pendingImage(sm.EventDelete, sm.StatePresent), ImageWorld{Registered: Yes, RefsApplied: No}, sm.StatePresent, false, false},
		{"delete, unknown", pendingImage(sm.EventDelete, sm.StatePresent), ImageWorld{Registered: Unknown, RefsApplied: Unknown}, "", false, true},
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
	verified   map[string]bool
	fail       error
}

func (s *fakeImageStore) ImageRegistered(id string) (bool, error)   { return s.registered[id], s.fail }
func (s *fakeImageStore) NameOf(name string) (string, error)        { return s.names[name], s.fail }
func (s *fakeImageStore) VerifiedLayerKept(id string) (bool, error) { return s.verified[id], s.fail }
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

// pendingPull is an unfinished pull that claimed three layers.
func pendingPull() sm.ImageView {
	v := pendingImage(sm.EventPull, sm.StateNone)
	v.Pending.Args.Layers = []sm.LayerClaim{
		{ChainID: "sha256:c1", CacheID: strings.Repeat("1", 32)},
		{ChainID: "sha256:c2", CacheID: strings.Repeat("2", 32)},
		{ChainID: "sha256:c3", CacheID: strings.Repeat("3", 32)},
	}
	return v
}

func TestDecideImage_APullKeepsItsVerifiedLayers(t *testing.T) {
	one, three := strings.Repeat("1", 32), strings.Repeat("3", 32)
	for _, tt := range []struct {
		name      string
		view      sm.ImageView
		world     ImageWorld
		kept      []string
		uncertain bool
	}{
		{"none verified", pendingPull(), ImageWorld{Registered: No, RefsApplied: No}, nil, false},
		{"two of three verified", pendingPull(), ImageWorld{Registered: No, RefsApplied: No, Verified: []string{one, three}}, []string{one, three}, false},
		{"a verified layer nobody claimed is not kept", pendingPull(), ImageWorld{Registered: No, RefsApplied: No, Verified: []string{strings.Repeat("f", 32)}}, nil, false},
		{"registered: rolled forward, nothing kept", pendingPull(), ImageWorld{Registered: Yes, RefsApplied: Yes, Verified: []string{one}}, nil, false},
		{"a claim unreadable", pendingPull(), ImageWorld{Registered: No, RefsApplied: No, VerifiedUnknown: true}, nil, true},
		{"a load keeps nothing", pendingImage(sm.EventLoad, sm.StateNone), ImageWorld{Registered: No, RefsApplied: No, Verified: []string{strings.Repeat("a", 32)}}, nil, false},
	} {
		plan := DecideImage(tt.view, tt.world)
		if tt.uncertain {
			if plan.Uncertain == "" || plan.Record != nil {
				t.Errorf("%s: %+v, want nothing decided", tt.name, plan)
			}
			continue
		}
		var kept []string
		for _, c := range plan.Kept {
			kept = append(kept, c.CacheID)
		}
		if strings.Join(kept, ",") != strings.Join(tt.kept, ",") {
			t.Errorf("%s: kept %v, want %v", tt.name, kept, tt.kept)
		}
		// The record proves what is kept: its layers are the kept claims.
		var recorded []string
		if plan.Record != nil && plan.Record.Args != nil {
			for _, c := range plan.Record.Args.Layers {
				recorded = append(recorded, c.CacheID)
			}
		}
		if strings.Join(recorded, ",") != strings.Join(tt.kept, ",") {
			t.Errorf("%s: the record lists %v, want %v", tt.name, recorded, tt.kept)
		}
		if keeps := slices.Contains(plan.Actions, ActionKeepVerifiedLayers); keeps != (len(tt.kept) > 0) {
			t.Errorf("%s: actions %v", tt.name, plan.Actions)
		}
		if _, err := journal.ApplyImage(&tt.view, *plan.Record); err != nil {
			t.Errorf("%s: the record does not fold: %v", tt.name, err)
		}
	}
}

func TestRunner_AnUnfinishedPullKeepsItsVerifiedLayersAndRemovesTheRest(t *testing.T) {
	j, err := journal.Open(filepath.Join(t.TempDir(), "cairn.db"), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	v := pendingPull()
	if _, err := j.Append(sm.Record{Kind: sm.KindIntent, Object: sm.ObjectImage, ObjectID: imgID, Event: sm.EventPull, From: sm.StateNone, To: sm.StatePresent, Args: v.Pending.Args}); err != nil {
		t.Fatal(err)
	}
	one, two, three := strings.Repeat("1", 32), strings.Repeat("2", 32), strings.Repeat("3", 32)
	store := &fakeImageStore{verified: map[string]bool{one: true, three: true}}
	fj := newFakeJournal()
	w := newWorld(fj)
	r := Runner{Journal: fj, Runtime: w, Layers: w, Lifecycle: lifecycle{w},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Images: store, ImageJournal: j}
	if _, err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if strings.Join(store.removed, ",") != two {
		t.Fatalf("removed %v, want only %s", store.removed, two)
	}
	got, _ := j.Image(imgID)
	if got.Pending != nil || got.State != sm.StateNone {
		t.Fatalf("after recovery: %+v", got)
	}
}
