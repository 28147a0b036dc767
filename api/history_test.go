package api

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/internal/apiclient"
	sm "github.com/cairn-run/cairn/statemachine"
)

func history(t *testing.T, r *rig, ref string) ([]*cairnv1.JournalRecord, int, error) {
	t.Helper()
	stream, err := r.Journal.History(bg, connect.NewRequest(&cairnv1.HistoryRequest{Id: ref}))
	if err != nil {
		return nil, 0, err
	}
	defer stream.Close()
	var out []*cairnv1.JournalRecord
	batches := 0
	for stream.Receive() {
		batches++
		out = append(out, stream.Msg().Records...)
	}
	return out, batches, stream.Err()
}

func TestHistory_StreamsInBatchesByContainer(t *testing.T) {
	r := newRig(t)
	live := r.machine.add(sm.Container{Name: "live", State: sm.StateRunning})
	gone := fakeID(500) // removed: the view no longer knows it
	code := 0
	for i := range 600 {
		id := live.ID
		if i%3 == 0 {
			id = gone
		}
		rec := sm.Record{Seq: uint64(i + 1), Kind: sm.KindDone, Time: time.Now(), Container: id, Event: sm.EventStart, From: sm.StateCreated, To: sm.StateRunning}
		if i == 0 {
			rec.Kind, rec.Args, rec.Result = sm.KindIntent, &sm.Args{Image: "busybox"}, &sm.Result{Exit: &sm.Exit{Code: &code}}
		}
		r.records.records = append(r.records.records, rec)
	}
	all, batches, err := history(t, r, "")
	if err != nil || len(all) != 600 || batches != 3 {
		t.Fatalf("all: %d records in %d batches, %v", len(all), batches, err)
	}
	if all[0].Kind != cairnv1.RecordKind_RECORD_KIND_INTENT || all[0].DetailsJson == "" || all[1].DetailsJson != "" {
		t.Errorf("first records: %v %v", all[0], all[1])
	}
	byName, _, err := history(t, r, "live")
	if err != nil || len(byName) != 400 {
		t.Fatalf("by name: %d %v", len(byName), err)
	}
	removed, _, err := history(t, r, gone)
	if err != nil || len(removed) != 200 {
		t.Fatalf("a removed container by its full id: %d %v", len(removed), err)
	}
	_, _, err = history(t, r, "nobody")
	wantCode(t, "history of nobody", err, connect.CodeNotFound)
	_, _, err = history(t, r, string(make([]byte, MaxRefBytes+1)))
	wantCode(t, "history of an overlong ref", err, connect.CodeInvalidArgument)
	r.records.fail = errBoom
	_, _, err = history(t, r, "")
	wantCode(t, "history failing", err, connect.CodeInternal)
}

func TestHistory_OfImagesByKindAndByReference(t *testing.T) {
	r := newRig(t)
	if _, err := apiclient.ImportImage(bg, r.Images, "busybox", bytes.NewReader([]byte("tar"))); err != nil {
		t.Fatal(err)
	}
	id := r.images.images["busybox"].ID
	c := r.machine.add(sm.Container{Name: "c", State: sm.StateRunning})
	other := "sha256:" + strings.Repeat("f", 64)
	r.records.records = []sm.Record{
		{Seq: 1, Kind: sm.KindIntent, Object: sm.ObjectImage, ObjectID: id, Event: sm.EventImport},
		{Seq: 2, Kind: sm.KindDone, Object: sm.ObjectImage, ObjectID: id, Event: sm.EventImport, Intent: 1},
		{Seq: 3, Kind: sm.KindDone, Container: c.ID, Event: sm.EventStart},
		{Seq: 4, Kind: sm.KindDone, Object: sm.ObjectImage, ObjectID: other, Event: sm.EventDelete},
	}
	walk := func(req *cairnv1.HistoryRequest) ([]uint64, error) {
		stream, err := r.Journal.History(bg, connect.NewRequest(req))
		if err != nil {
			return nil, err
		}
		var seqs []uint64
		for stream.Receive() {
			for _, rec := range stream.Msg().Records {
				seqs = append(seqs, rec.Seq)
				if rec.Object == "image" && rec.ObjectId == "" {
					t.Errorf("record %d has no object id", rec.Seq)
				}
			}
		}
		return seqs, stream.Err()
	}
	for name, tt := range map[string]struct {
		req  *cairnv1.HistoryRequest
		want []uint64
	}{
		"every image record":          {&cairnv1.HistoryRequest{Object: "image"}, []uint64{1, 2, 4}},
		"one image by name":           {&cairnv1.HistoryRequest{Object: "image", Id: "busybox"}, []uint64{1, 2}},
		"a deleted image by its id":   {&cairnv1.HistoryRequest{Object: "image", Id: other}, []uint64{4}},
		"every container record":      {&cairnv1.HistoryRequest{Object: "container"}, []uint64{3}},
		"everything":                  {&cairnv1.HistoryRequest{}, []uint64{1, 2, 3, 4}},
		"one container, as it always": {&cairnv1.HistoryRequest{Id: "c"}, []uint64{3}},
	} {
		got, err := walk(tt.req)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("%s: %v %v, want %v", name, got, err, tt.want)
		}
	}
	_, err := walk(&cairnv1.HistoryRequest{Object: "image", Id: "nope"})
	wantCode(t, "an unknown image", err, connect.CodeNotFound)
	_, err = walk(&cairnv1.HistoryRequest{Object: "sandbox"})
	wantCode(t, "a kind without records", err, connect.CodeInvalidArgument)
}
