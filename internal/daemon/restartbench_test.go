package daemon_test

import (
	"encoding/json"
	"testing"
	"time"

	"connectrpc.com/connect"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/internal/testenv/scratch"
)

// BenchmarkPolicyRestart measures the time from a container's crash exit
// to its policy restart: from the exit the shim recorded (exit 1 of the
// first run of an on-failure:1 container) to the DONE of the policy
// restart, when the restarted process runs and the journal proves it
// ("exit-to-restart"); "exit-to-handoff" ends when the container is handed
// to its shim instead (the process's started_at). The policy's first
// delay, 100 ms, is part of both by design; "overhead" is the rest of the
// first: the exit's record, the timer, the policy-restart intent, mount,
// exec, DONE.
func BenchmarkPolicyRestart(b *testing.B) {
	e := benchDaemon(b)
	var total, handoff, overhead []time.Duration
	for range b.N {
		c := withPolicy(b, e, "on-failure:1", "sh", "-c", "if [ -f /ran ]; then exec sleep 1000; fi; touch /ran; exit 1")
		start(b, e, c.Id)
		exitAt, startAt, doneAt := crashAndRestart(b, e, c.Id)
		total = append(total, doneAt.Sub(exitAt))
		handoff = append(handoff, startAt.Sub(exitAt))
		overhead = append(overhead, doneAt.Sub(exitAt)-100*time.Millisecond)
		remove(b, e, c.Id, true)
	}
	reportQuantiles(b, "exit-to-restart", total)
	reportQuantiles(b, "exit-to-handoff", handoff)
	reportQuantiles(b, "overhead", overhead)
}

// crashAndRestart waits for container id's policy restart and returns when
// its first run exited, its second was handed to the shim, and the policy
// restart's DONE was recorded.
func crashAndRestart(b *testing.B, e *scratch.Env, id string) (exitAt, startAt, doneAt time.Time) {
	b.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if g := get(b, e, id); g.RestartCount == 1 && g.State == running && g.PendingEvent == "" {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("no policy restart within 10 s")
		}
		time.Sleep(2 * time.Millisecond)
	}
	stream, err := e.Journal.History(bg, connect.NewRequest(&cairnv1.HistoryRequest{Id: id}))
	if err != nil {
		b.Fatal(err)
	}
	for stream.Receive() {
		for _, r := range stream.Msg().Records {
			var d struct {
				Result *struct {
					Process *struct {
						StartedAt time.Time `json:"started_at"`
					} `json:"process"`
					Exit *struct {
						FinishedAt time.Time `json:"finished_at"`
					} `json:"exit"`
				} `json:"result"`
			}
			if r.Kind != cairnv1.RecordKind_RECORD_KIND_DONE || json.Unmarshal([]byte(r.DetailsJson), &d) != nil || d.Result == nil {
				continue
			}
			switch {
			case r.Event == "exit" && d.Result.Exit != nil:
				exitAt = d.Result.Exit.FinishedAt
			case r.Event == "policy-restart" && d.Result.Process != nil:
				startAt, doneAt = d.Result.Process.StartedAt, r.Time.AsTime()
			}
		}
	}
	if err := stream.Err(); err != nil || exitAt.IsZero() || startAt.IsZero() {
		b.Fatalf("history: exit at %v, restart at %v, %v", exitAt, startAt, err)
	}
	return exitAt, startAt, doneAt
}
