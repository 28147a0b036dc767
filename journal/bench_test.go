package journal

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	sm "github.com/cairn-run/cairn/statemachine"
)

// BenchmarkTransitions measures durable transitions (an INTENT and its DONE,
// each fsynced before Append returns) per second with concurrent clients,
// each driving its own container through pause/unpause.
func BenchmarkTransitions(b *testing.B) {
	for _, clients := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			j := openTemp(b)
			for c := range clients {
				id := fmt.Sprintf("c%d", c)
				transition(b, j, id, sm.EventCreate, sm.StateNone, sm.StateCreated, createArgs(""), nil)
				transition(b, j, id, sm.EventStart, sm.StateCreated, sm.StateRunning, nil, &sm.Result{Process: &sm.Process{PID: 1}})
			}
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for c := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					id := fmt.Sprintf("c%d", c)
					paused := false
					for next.Add(1) <= int64(b.N) {
						from, to, ev := sm.StateRunning, sm.StatePaused, sm.EventPause
						if paused {
							from, to, ev = sm.StatePaused, sm.StateRunning, sm.EventUnpause
						}
						transition(b, j, id, ev, from, to, nil, nil)
						paused = !paused
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "transitions/s")
		})
	}
}

// BenchmarkBoltUpdate is the baseline: one plain bbolt Update (one fsync'd
// commit) per record on the same disk.
func BenchmarkBoltUpdate(b *testing.B) {
	db, err := bolt.Open(filepath.Join(b.TempDir(), "raw.db"), 0o600, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	value := make([]byte, 300)
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		err := db.Update(func(tx *bolt.Tx) error {
			bk, err := tx.CreateBucketIfNotExists([]byte("raw"))
			if err != nil {
				return err
			}
			return bk.Put(seqKey(uint64(i)), value)
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "commits/s")
}

// BenchmarkFdatasync is the disk's raw rate: one 4 KiB write and one
// fdatasync per op, on the same filesystem as the journal.
func BenchmarkFdatasync(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "raw"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	page := make([]byte, 4096)
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		if _, err := f.WriteAt(page, int64(i%256)*4096); err != nil {
			b.Fatal(err)
		}
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "fsyncs/s")
}

// BenchmarkOpen measures Open (with every startup check) and Close of a
// journal of about 100k records: 64 clients driving random transitions of
// their containers, as randomWorkload does.
func BenchmarkOpen(b *testing.B) {
	path := filepath.Join(b.TempDir(), "cairn.db")
	j, err := Open(path, Options{})
	if err != nil {
		b.Fatal(err)
	}
	randomWorkload(b, j, 64, 1400, 7)
	records := j.LastSeq()
	if err := j.Close(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		j, err := Open(path, benchOpenOptions())
		if err != nil {
			b.Fatal(err)
		}
		if err := j.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(records), "records")
}
