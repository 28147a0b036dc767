package api

import (
	"context"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	sm "github.com/cairn-run/cairn/statemachine"
)

func rec(seq uint64, id string, kind sm.Kind, ev sm.Event) sm.Record {
	return sm.Record{Seq: seq, Kind: kind, Time: time.Unix(int64(1000+seq), 0).UTC(), Container: id, Event: ev}
}

// watch collects events until the stream ends or n have come.
func watch(t *testing.T, r *rig, req *cairnv1.WatchEventsRequest, n int) ([]uint64, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(bg, 10*time.Second)
	defer cancel()
	stream, err := r.Journal.WatchEvents(ctx, connect.NewRequest(req))
	if err != nil {
		return nil, err
	}
	defer stream.Close()
	var seqs []uint64
	first := true
	for len(seqs) < n && stream.Receive() {
		msg := stream.Msg()
		if first != msg.Watching || (msg.Event == nil) != first {
			t.Fatalf("message %+v: want the watching message first, then events", msg)
		}
		if !first {
			seqs = append(seqs, msg.Event.Seq)
		}
		first = false
	}
	return seqs, stream.Err()
}

func TestWatchEvents_ReplaysThenFollowsAndStopsAtUntil(t *testing.T) {
	r := newRig(t)
	c := r.machine.add(sm.Container{Name: "web", State: sm.StateRunning, Image: "busybox"})
	r.records.add(rec(1, c.ID, sm.KindIntent, sm.EventStart), rec(2, c.ID, sm.KindDone, sm.EventStart))
	go func() {
		time.Sleep(50 * time.Millisecond) // the watcher is following by now
		r.records.add(rec(3, c.ID, sm.KindIntent, sm.EventStop), rec(4, c.ID, sm.KindDone, sm.EventStop), rec(5, c.ID, sm.KindIntent, sm.EventStart))
	}()
	seqs, err := watch(t, r, &cairnv1.WatchEventsRequest{UntilSeq: 4}, 100)
	if err != nil || len(seqs) != 4 || seqs[0] != 1 || seqs[3] != 4 {
		t.Fatalf("events %v, %v; want 1..4 and the end", seqs, err)
	}
	// A client resuming after the last event it got sees the rest once.
	seqs, err = watch(t, r, &cairnv1.WatchEventsRequest{AfterSeq: 4, UntilSeq: 5}, 100)
	if err != nil || len(seqs) != 1 || seqs[0] != 5 {
		t.Fatalf("resumed: %v %v", seqs, err)
	}
}

func TestWatchEvents_FiltersAndTimes(t *testing.T) {
	r := newRig(t)
	web := r.machine.add(sm.Container{Name: "web", State: sm.StateRunning, Image: "busybox"})
	// Records carry canonical names and ids: a filter in any form Docker
	// takes matches them.
	pgID := "sha256:" + strings.Repeat("a1", 32)
	db := r.machine.add(sm.Container{Name: "db", State: sm.StateRunning, Image: "docker.io/library/postgres:latest", ImageID: pgID})
	r.records.add(
		rec(1, web.ID, sm.KindIntent, sm.EventStart), rec(2, db.ID, sm.KindIntent, sm.EventStart),
		rec(3, web.ID, sm.KindDone, sm.EventStart), rec(4, db.ID, sm.KindDone, sm.EventStop),
		rec(5, db.ID, sm.KindIntent, sm.EventRemove),
	)
	cases := []struct {
		name    string
		filters []*cairnv1.EventFilter
		want    []uint64
	}{
		{"by name", []*cairnv1.EventFilter{{Key: "container", Value: "web"}}, []uint64{1, 3}},
		{"two containers", []*cairnv1.EventFilter{{Key: "container", Value: "web"}, {Key: "container", Value: "db"}}, []uint64{1, 2, 3, 4, 5}},
		{"by event", []*cairnv1.EventFilter{{Key: "event", Value: "stop"}, {Key: "event", Value: "remove"}}, []uint64{4, 5}},
		{"by image and event", []*cairnv1.EventFilter{{Key: "image", Value: "postgres"}, {Key: "event", Value: "start"}}, []uint64{2}},
		{"by canonical image", []*cairnv1.EventFilter{{Key: "image", Value: "docker.io/library/postgres:latest"}}, []uint64{2, 4, 5}},
		{"by image id", []*cairnv1.EventFilter{{Key: "image", Value: pgID}}, []uint64{2, 4, 5}},
		{"by another tag", []*cairnv1.EventFilter{{Key: "image", Value: "postgres:16"}}, nil},
		{"by type", []*cairnv1.EventFilter{{Key: "type", Value: "container"}}, []uint64{1, 2, 3, 4, 5}},
		{"another type", []*cairnv1.EventFilter{{Key: "type", Value: "network"}}, nil},
	}
	for _, tc := range cases {
		got, err := watch(t, r, &cairnv1.WatchEventsRequest{Filters: tc.filters, UntilSeq: 5}, 100)
		if err != nil || len(got) != len(tc.want) {
			t.Errorf("%s: %v %v, want %v", tc.name, got, err, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
				break
			}
		}
	}
	got, err := watch(t, r, &cairnv1.WatchEventsRequest{Since: timestamppb.New(time.Unix(1003, 0)), Until: timestamppb.New(time.Unix(1004, 0))}, 100)
	if err != nil || len(got) != 2 || got[0] != 3 || got[1] != 4 {
		t.Errorf("since and until times: %v %v", got, err)
	}
	for _, bad := range []*cairnv1.EventFilter{{Key: "colour", Value: "red"}, {Key: "type", Value: "planet"}} {
		_, err := watch(t, r, &cairnv1.WatchEventsRequest{Filters: []*cairnv1.EventFilter{bad}}, 1)
		wantCode(t, "filter "+bad.Key, err, connect.CodeInvalidArgument)
	}
}

func TestWatchEvents_ResumingIntoCompactedHistoryIsRefused(t *testing.T) {
	r := newRig(t)
	r.records.compacted = 40
	r.records.add(rec(41, fakeID(1), sm.KindIntent, sm.EventCreate))
	_, err := watch(t, r, &cairnv1.WatchEventsRequest{AfterSeq: 10}, 1)
	wantCode(t, "resume below the compaction", err, connect.CodeFailedPrecondition)
	if got, err := watch(t, r, &cairnv1.WatchEventsRequest{AfterSeq: 40}, 1); err != nil || len(got) != 1 {
		t.Fatalf("resume above it: %v %v", got, err)
	}
}

func TestWatchEvents_EndWithUnavailableWhenTheDaemonStops(t *testing.T) {
	stopping := make(chan struct{})
	r := newRigWith(t, func(j *JournalServer) { j.Stopping = stopping })
	go func() {
		time.Sleep(50 * time.Millisecond)
		close(stopping)
	}()
	_, err := watch(t, r, &cairnv1.WatchEventsRequest{}, 100)
	wantCode(t, "a watch when the daemon stops", err, connect.CodeUnavailable)
}
