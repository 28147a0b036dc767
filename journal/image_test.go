package journal

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cairn-run/cairn/internal/schema"
	"github.com/cairn-run/cairn/internal/storecheck"
	"github.com/cairn-run/cairn/layer"
	sm "github.com/cairn-run/cairn/statemachine"
)

var (
	imgA = "sha256:" + strings.Repeat("a", 64)
	imgB = "sha256:" + strings.Repeat("b", 64)
)

func imageRec(kind sm.Kind, id string, ev sm.Event, from, to sm.State, intent uint64) sm.Record {
	return sm.Record{Kind: kind, Object: sm.ObjectImage, ObjectID: id, Event: ev, From: from, To: to, Intent: intent}
}

// imageTransition appends an image's INTENT and its outcome.
func imageTransition(t testing.TB, j *Journal, id string, ev sm.Event, from, to sm.State, outcome sm.Kind) {
	t.Helper()
	intent := imageRec(sm.KindIntent, id, ev, from, to, 0)
	intent.Args = &sm.Args{Refs: []string{"docker.io/library/x:latest"}, Layers: []sm.LayerClaim{{ChainID: "sha256:c", CacheID: strings.Repeat("0", 32)}}}
	in := mustAppend(t, j, intent)
	if outcome == sm.KindFailed {
		to = from
	}
	mustAppend(t, j, imageRec(outcome, id, ev, from, to, in.Seq))
}

func TestImageFold_LoadTagDeleteAndTheirPendingIntents(t *testing.T) {
	j := openTemp(t)
	in := mustAppend(t, j, imageRec(sm.KindIntent, imgA, sm.EventLoad, sm.StateNone, sm.StatePresent, 0))
	v, ok := j.Image(imgA)
	if !ok || v.State != sm.StateNone || v.Pending == nil || v.Pending.Event != sm.EventLoad || v.Pending.Seq != in.Seq {
		t.Fatalf("after the load's intent: %+v", v)
	}
	mustAppend(t, j, imageRec(sm.KindDone, imgA, sm.EventLoad, sm.StateNone, sm.StatePresent, in.Seq))
	v, _ = j.Image(imgA)
	if v.State != sm.StatePresent || v.Pending != nil || v.CreatedAt.IsZero() {
		t.Fatalf("after the load: %+v", v)
	}
	imageTransition(t, j, imgA, sm.EventTag, sm.StatePresent, sm.StatePresent, sm.KindDone)
	// A first load that fails leaves no view.
	imageTransition(t, j, imgB, sm.EventLoad, sm.StateNone, sm.StatePresent, sm.KindFailed)
	if _, ok := j.Image(imgB); ok {
		t.Fatal("a failed first load has a view")
	}
	// An intent stays pending across a reopening; a second one is refused.
	del := mustAppend(t, j, imageRec(sm.KindIntent, imgA, sm.EventDelete, sm.StatePresent, sm.StateRemoved, 0))
	if _, err := j.Append(imageRec(sm.KindIntent, imgA, sm.EventTag, sm.StatePresent, sm.StatePresent, 0)); !errors.Is(err, ErrInconsistent) {
		t.Fatalf("a second intent: %v", err)
	}
	path := j.Path()
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	v, _ = j.Image(imgA)
	if v.Pending == nil || v.Pending.Event != sm.EventDelete || v.State != sm.StatePresent {
		t.Fatalf("after reopening: %+v", v)
	}
	mustAppend(t, j, imageRec(sm.KindDone, imgA, sm.EventDelete, sm.StatePresent, sm.StateRemoved, del.Seq))
	if _, ok := j.Image(imgA); ok || len(j.Images()) != 0 {
		t.Fatal("a deleted image keeps its view")
	}
	if err := j.Verify(); err != nil {
		t.Fatal(err)
	}
	var events []string
	if err := j.RecordsOf(0, RecordFilter{Object: sm.ObjectImage, ObjectID: imgA}, func(r sm.Record) error {
		events = append(events, string(r.Kind)+" "+string(r.Event))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if want := "INTENT load,DONE load,INTENT tag,DONE tag,INTENT delete,DONE delete"; strings.Join(events, ",") != want {
		t.Fatalf("image history %v, want %s", events, want)
	}
}

func TestImageFold_RefusesRecordsThatDoNotFit(t *testing.T) {
	j := openTemp(t)
	imageTransition(t, j, imgA, sm.EventLoad, sm.StateNone, sm.StatePresent, sm.KindDone)
	before := j.LastSeq()
	withContainer := imageRec(sm.KindIntent, imgA, sm.EventTag, sm.StatePresent, sm.StatePresent, 0)
	withContainer.Container = "c1"
	for name, rec := range map[string]sm.Record{
		"an id that is no image id":  imageRec(sm.KindIntent, "busybox", sm.EventLoad, sm.StateNone, sm.StatePresent, 0),
		"a container event":          imageRec(sm.KindIntent, imgA, sm.EventStart, sm.StatePresent, sm.StatePresent, 0),
		"a DONE without its intent":  imageRec(sm.KindDone, imgA, sm.EventTag, sm.StatePresent, sm.StatePresent, 99),
		"a RECONCILED of no intent":  imageRec(sm.KindReconciled, imgA, sm.EventLoad, sm.StatePresent, sm.StatePresent, 5),
		"a record naming container":  withContainer,
		"an unknown kind of record":  imageRec("MAYBE", imgA, sm.EventTag, sm.StatePresent, sm.StatePresent, 0),
		"a FAILED of an unknown one": imageRec(sm.KindFailed, imgB, sm.EventLoad, sm.StateNone, sm.StateNone, 1),
	} {
		if _, err := j.Append(rec); !errors.Is(err, ErrInconsistent) {
			t.Errorf("%s: %v, want ErrInconsistent", name, err)
		}
	}
	if j.LastSeq() != before {
		t.Fatal("refused records were written")
	}
}

func TestCompact_DeletedImagesGoLiveOnesStay(t *testing.T) {
	j := openTemp(t)
	imageTransition(t, j, imgA, sm.EventLoad, sm.StateNone, sm.StatePresent, sm.KindDone)
	imageTransition(t, j, imgB, sm.EventLoad, sm.StateNone, sm.StatePresent, sm.KindDone)
	imageTransition(t, j, imgB, sm.EventDelete, sm.StatePresent, sm.StateRemoved, sm.KindDone)
	res, err := j.Compact(0, 100)
	if err != nil || res.Deleted != 4 {
		t.Fatalf("compaction %+v %v, want the deleted image's 4 records", res, err)
	}
	if err := j.Verify(); err != nil {
		t.Fatal(err)
	}
	if _, ok := j.Image(imgA); !ok {
		t.Fatal("the live image lost its view")
	}
}

func TestMigrate2to3_ViewsEqualWhatSchema2ShowedAndLegacyImagesStay(t *testing.T) {
	path := fixture(t, "v2.db")
	if v, _ := storedSchema(t, path); v != 2 {
		t.Fatalf("fixture is schema %d", v)
	}
	before, _ := os.ReadFile(path)
	rep, err := CheckFile(path, time.Second, storecheck.All()...)
	if err != nil || rep.Schema != 2 || rep.Images != 0 {
		t.Fatalf("offline check of the v2 fixture: %+v %v", rep, err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("the offline check changed the file")
	}
	j, err := Open(path, Options{Checks: storecheck.All()})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if err := j.Verify(); err != nil {
		t.Fatal(err)
	}
	_ = j.View(func(tx *bolt.Tx) error {
		if v, _ := schema.StoredVersion(tx); v != schema.Version {
			t.Errorf("schema %d after Open", v)
		}
		if schema.ImageViews(tx) == nil {
			t.Error("no imageviews/ bucket")
		}
		return nil
	})
	want := readPSFile(t, "ps-v2.json")
	got := j.Containers()
	if len(got) != len(want) {
		t.Fatalf("%d containers after migration, schema 2 showed %d", len(got), len(want))
	}
	for i := range want {
		gj, _ := json.Marshal(asPS(got[i]))
		wj, _ := json.Marshal(want[i])
		if !bytes.Equal(gj, wj) {
			t.Errorf("container %d after migration:\n got %s\nwant %s", i, gj, wj)
		}
	}
	if len(j.Images()) != 0 {
		t.Fatal("the migration made image views")
	}
	// The layer store reads the schema 2 image records as they are: the
	// two names imported from one tar are one image, found by their old
	// spelling, with the flat config of its layer.
	s, err := layer.Open(filepath.Join(t.TempDir(), "layer"), j)
	if err != nil {
		t.Fatal(err)
	}
	img, err := s.Image("busybox")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(img.Names, []string{"busybox", "other"}) || img.ID != layer.ConfigID(layer.FlatConfig(img.DiffIDs)) {
		t.Fatalf("legacy image %+v", img)
	}
	if other, err := s.Image("other"); err != nil || other.ID != img.ID {
		t.Fatalf("other: %+v %v", other, err)
	}
	// A container that uses it keeps it from being deleted, by its old name.
	if err := s.RemoveImage("busybox"); err != nil {
		t.Fatalf("untag of a legacy name: %v", err)
	}
	if err := s.RemoveImage("other"); err == nil || !strings.Contains(err.Error(), "used by") {
		t.Fatalf("delete of an image a schema 2 mount uses: %v", err)
	}
}
