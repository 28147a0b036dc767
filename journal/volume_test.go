package journal

import (
	"errors"
	"testing"

	sm "github.com/cairn-run/cairn/statemachine"
)

func volumeRec(kind sm.Kind, name string, ev sm.Event, from, to sm.State, intent uint64) sm.Record {
	return sm.Record{Kind: kind, Object: sm.ObjectVolume, ObjectID: name, Event: ev, From: from, To: to, Intent: intent}
}

func TestVolumeFold_CreateRemoveAndTheirPendingIntents(t *testing.T) {
	j := openTemp(t)
	intent := volumeRec(sm.KindIntent, "data", sm.EventVolumeCreate, sm.StateNone, sm.StatePresent, 0)
	intent.Args = &sm.Args{Volume: &sm.VolumeSpec{Labels: map[string]string{"k": "v"}}}
	in := mustAppend(t, j, intent)
	v, ok := j.Volume("data")
	if !ok || v.State != sm.StateNone || v.Pending == nil || v.Pending.Event != sm.EventVolumeCreate || len(v.Labels) != 0 {
		t.Fatalf("after the create's intent: %+v", v)
	}
	mustAppend(t, j, volumeRec(sm.KindDone, "data", sm.EventVolumeCreate, sm.StateNone, sm.StatePresent, in.Seq))
	v, _ = j.Volume("data")
	if v.State != sm.StatePresent || v.Pending != nil || v.CreatedAt.IsZero() || v.Labels["k"] != "v" || v.Anonymous {
		t.Fatalf("after the create: %+v", v)
	}
	// A second create of a present volume, an intent of a bad name, a
	// remove of an absent one: refused.
	for _, rec := range []sm.Record{
		volumeRec(sm.KindIntent, "data", sm.EventVolumeCreate, sm.StateNone, sm.StatePresent, 0),
		volumeRec(sm.KindIntent, "-bad", sm.EventVolumeCreate, sm.StateNone, sm.StatePresent, 0),
		volumeRec(sm.KindIntent, "other", sm.EventVolumeRemove, sm.StatePresent, sm.StateRemoved, 0),
		{Kind: sm.KindIntent, Object: sm.ObjectVolume, ObjectID: "data", Event: sm.EventStart, From: sm.StatePresent, To: sm.StatePresent},
	} {
		if _, err := j.Append(rec); !errors.Is(err, ErrInconsistent) {
			t.Errorf("%s %s of %s: %v, want ErrInconsistent", rec.Kind, rec.Event, rec.ObjectID, err)
		}
	}
	// A failed first create leaves no view.
	f := mustAppend(t, j, volumeRec(sm.KindIntent, "other", sm.EventVolumeCreate, sm.StateNone, sm.StatePresent, 0))
	mustAppend(t, j, volumeRec(sm.KindFailed, "other", sm.EventVolumeCreate, sm.StateNone, sm.StateNone, f.Seq))
	if _, ok := j.Volume("other"); ok {
		t.Fatal("a failed create has a view")
	}
	// A remove intent stays pending across a reopening, and the reopened
	// file passes its check.
	rm := mustAppend(t, j, volumeRec(sm.KindIntent, "data", sm.EventVolumeRemove, sm.StatePresent, sm.StateRemoved, 0))
	path := j.Path()
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	v, _ = j.Volume("data")
	if v.Pending == nil || v.Pending.Event != sm.EventVolumeRemove || v.State != sm.StatePresent || v.Labels["k"] != "v" {
		t.Fatalf("after reopening: %+v", v)
	}
	if err := j.Verify(); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, j, volumeRec(sm.KindReconciled, "data", sm.EventVolumeRemove, sm.StatePresent, sm.StateRemoved, rm.Seq))
	if _, ok := j.Volume("data"); ok || len(j.Volumes()) != 0 {
		t.Fatalf("after the remove: %v", j.Volumes())
	}
	if err := j.Verify(); err != nil {
		t.Fatal(err)
	}
}
