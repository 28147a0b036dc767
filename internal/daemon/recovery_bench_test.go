package daemon_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"

	"github.com/cairn-run/cairn/internal/apiclient"
	"github.com/cairn-run/cairn/internal/testenv/scratch"
	"github.com/cairn-run/cairn/journal"
	sm "github.com/cairn-run/cairn/statemachine"
)

// BenchmarkRecovery measures how long a killed daemon takes to come back
// serving: from the start of the cairnd process until gRPC health says
// SERVING, i.e. journal check, recovery and reattach of every live
// container done. The journal holds `records` records in all, most of them
// of containers created and removed long ago.
func BenchmarkRecovery(b *testing.B) {
	cases := []struct {
		live, records int
		compacted     bool
	}{{10, 1_000, false}, {10, 100_000, false}, {10, 100_000, true}, {100, 100_000, false}, {100, 100_000, true}}
	for _, tc := range cases {
		name := fmt.Sprintf("live=%d/records=%d", tc.live, tc.records)
		if tc.compacted {
			name += "/compacted"
		}
		b.Run(name, func(b *testing.B) {
			e := scratch.NewBinaryDaemon(b)
			var wg sync.WaitGroup
			for range tc.live {
				wg.Go(func() { runDetached(b, e, "sleep", "100000") })
			}
			wg.Wait()
			e.Stop()
			padJournal(b, filepath.Join(e.Config.Root, "cairn.db"), tc.records, tc.compacted)
			var total, worst time.Duration
			for range b.N {
				start := time.Now()
				e.StartWith()
				waitHealthy(b, e)
				d := time.Since(start)
				total += d
				worst = max(worst, d)
				e.Kill()
			}
			e.Start()
			b.ReportMetric(float64(total.Microseconds())/float64(b.N)/1000, "ms/recovery")
			b.ReportMetric(float64(worst.Microseconds())/1000, "max-ms")
		})
	}
}

// padJournal appends create and remove transitions of short-lived
// containers until the journal holds n records; with compact, it then
// compacts the journal as the daemon does in the background.
func padJournal(b *testing.B, path string, n int, compact bool) {
	b.Helper()
	j, err := journal.Open(path, journal.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	const workers = 64
	perWorker := (n - int(j.LastSeq())) / 8 / workers
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				id := fmt.Sprintf("old-%d-%d", w, i)
				for _, step := range []struct {
					ev       sm.Event
					from, to sm.State
					args     *sm.Args
				}{
					{sm.EventCreate, sm.StateNone, sm.StateCreated, &sm.Args{Image: "busybox", Command: []string{"true"}, MountID: id}},
					{sm.EventStart, sm.StateCreated, sm.StateRunning, nil},
					{sm.EventExit, sm.StateRunning, sm.StateStopped, nil},
					{sm.EventRemove, sm.StateStopped, sm.StateRemoved, nil},
				} {
					intent, err := j.Append(sm.Record{Kind: sm.KindIntent, Container: id, Event: step.ev, From: step.from, To: step.to, Args: step.args})
					if err != nil {
						b.Error(err)
						return
					}
					if _, err := j.Append(sm.Record{Kind: sm.KindDone, Container: id, Event: step.ev, From: step.from, To: step.to, Intent: intent.Seq}); err != nil {
						b.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if compact {
		if _, err := j.Compact(10_000, 1000); err != nil {
			b.Fatal(err)
		}
	}
}

func waitHealthy(b *testing.B, e *scratch.Env) {
	b.Helper()
	health := grpchealth.NewClient(apiclient.New(e.Socket).HTTP, apiclient.BaseURL, connect.WithGRPC())
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		res, err := health.Check(context.Background(), &grpchealth.CheckRequest{})
		if err == nil && res.Status == grpchealth.StatusServing {
			return
		}
		time.Sleep(time.Millisecond)
	}
	b.Fatal("cairnd did not become healthy within 30s")
}
