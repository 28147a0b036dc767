package daemon_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/internal/apiclient"
	"github.com/cairn-run/cairn/internal/testenv/scratch"
)

// watchErr reports whether the watch ended (leaving its error in done).
func watchErr(done chan error) bool {
	select {
	case err := <-done:
		done <- err
		return true
	default:
		return false
	}
}

// historySeqs is every record's seq, in the journal's order.
func historySeqs(t *testing.T, e *scratch.Env) []uint64 {
	t.Helper()
	stream, err := e.Journal.History(bg, connect.NewRequest(&cairnv1.HistoryRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for stream.Receive() {
		for _, r := range stream.Msg().Records {
			seqs = append(seqs, r.Seq)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	return seqs
}

// A watcher connected while cairnd is killed and restarted resumes after
// the last event it got: what it received is the journal, in order, with
// no gap and nothing twice.
func TestEvents_AWatcherResumesAcrossAKillWithNoGapAndNoDuplicate(t *testing.T) {
	e := scratch.NewBinaryDaemon(t)
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	var mu sync.Mutex
	var got []uint64
	resumes := 0
	done := make(chan error, 1)
	go func() {
		done <- apiclient.WatchEvents(ctx, e.Clients, &cairnv1.WatchEventsRequest{},
			func(ev *cairnv1.JournalRecord) error {
				mu.Lock()
				got = append(got, ev.Seq)
				mu.Unlock()
				return nil
			},
			func(uint64, error) { mu.Lock(); resumes++; mu.Unlock() })
	}()
	received := func() []uint64 { mu.Lock(); defer mu.Unlock(); return slices.Clone(got) }

	a := runDetached(t, e, "sleep", "1000")
	b := runDetached(t, e, "sh", "-c", "sleep 0.3; exit 3")
	stop(t, e, a.Id, 1)
	eventually(t, "the watcher to catch up before the crash", func() bool {
		want := historySeqs(t, e)
		return len(received()) == len(want)
	})
	e.Kill()
	// b exits while no daemon runs; recovery records it.
	time.Sleep(500 * time.Millisecond)
	e.Start()
	start(t, e, a.Id)
	remove(t, e, a.Id, true)
	remove(t, e, b.Id, false)

	want := historySeqs(t, e)
	eventually(t, "the watcher to receive the whole journal", func() bool { return len(received()) >= len(want) || watchErr(done) })
	cancel()
	if err := <-done; err != nil && ctx.Err() == nil || len(received()) < len(want) {
		t.Fatalf("watch: %v", err)
	}
	if seqs := received(); !slices.Equal(seqs, want) {
		t.Fatalf("events received:\n %v\njournal:\n %v", seqs, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if resumes == 0 {
		t.Fatal("the watcher never had to resume: the daemon was not killed under it")
	}
}

func TestEvents_AStreamEndsWithUnavailableWhenTheDaemonStops(t *testing.T) {
	e := scratch.NewDaemon(t)
	ctx, cancel := context.WithTimeout(bg, 20*time.Second)
	defer cancel()
	stream, err := e.Journal.WatchEvents(ctx, connect.NewRequest(&cairnv1.WatchEventsRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if !stream.Receive() || !stream.Msg().Watching {
		t.Fatalf("no watching message: %v", stream.Err())
	}
	began := time.Now()
	stopped := make(chan struct{})
	go func() { e.Stop(); close(stopped) }()
	for stream.Receive() {
	}
	<-stopped
	if code := connect.CodeOf(stream.Err()); code != connect.CodeUnavailable {
		t.Fatalf("stream ended with %v, want Unavailable", stream.Err())
	}
	if took := time.Since(began); took > 4*time.Second {
		t.Fatalf("the daemon's stop waited %v for the event stream", took)
	}
	e.Start()
}
