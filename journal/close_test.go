package journal

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cairn-run/cairn/internal/errdefs"
	sm "github.com/cairn-run/cairn/statemachine"
)

// TestClose_RacingAppendsNeverBlockAndAreCommittedOrClosed races 8 appends
// with Close, many times: every call returns, with ErrClosed (an
// Unavailable error) or with a record that the reopened file holds.
func TestClose_RacingAppendsNeverBlockAndAreCommittedOrClosed(t *testing.T) {
	rounds := 300
	if testing.Short() {
		rounds = 50
	}
	for round := range rounds {
		path := filepath.Join(t.TempDir(), "cairn.db")
		j, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		committed := make([]bool, 8)
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rec := createIntent(fmt.Sprintf("c%d", i), "")
				var err error
				if i%2 == 0 {
					_, err = j.Append(rec)
				} else {
					_, err = j.Commit([]sm.Record{rec})
				}
				switch {
				case err == nil:
					committed[i] = true
				case !errors.Is(err, ErrClosed) || !errors.Is(err, errdefs.ErrUnavailable):
					t.Errorf("round %d: append %d: %v", round, i, err)
				}
			}()
		}
		closed := make(chan error, 1)
		go func() { closed <- j.Close() }()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatalf("round %d: an append racing Close never returned", round)
		}
		if err := <-closed; err != nil {
			t.Fatal(err)
		}
		if _, err := j.Append(createIntent("late", "")); !errors.Is(err, ErrClosed) {
			t.Fatalf("append after Close: %v", err)
		}
		if _, err := j.Commit([]sm.Record{createIntent("late", "")}); !errors.Is(err, ErrClosed) {
			t.Fatalf("commit after Close: %v", err)
		}
		j, err = Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for i, ok := range committed {
			if _, found := j.Container(fmt.Sprintf("c%d", i)); found != ok {
				t.Fatalf("round %d: append %d returned committed=%v, the file has it: %v", round, i, ok, found)
			}
		}
		if err := j.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestClose_Twice(t *testing.T) {
	j, err := Open(filepath.Join(t.TempDir(), "cairn.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
