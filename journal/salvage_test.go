package journal

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cairn-run/cairn/internal/errdefs"
	"github.com/cairn-run/cairn/internal/schema"
	"github.com/cairn-run/cairn/internal/storecheck"
	sm "github.com/cairn-run/cairn/statemachine"
)

// bigFixture is v1.db migrated, with a random workload on top so that the
// journal spans many pages.
func bigFixture(t *testing.T) (path string, records uint64) {
	t.Helper()
	path = fixture(t, "v1.db")
	j, err := Open(path, Options{Checks: storecheck.All()})
	if err != nil {
		t.Fatal(err)
	}
	randomWorkload(t, j, 8, 150, 5)
	records = j.LastSeq()
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	return path, records
}

// journalLeafPage finds a page of the journal bucket in the middle of the
// file: one that holds the record with seq.
func journalLeafPage(t *testing.T, path string, seq uint64) int64 {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var value []byte
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	_ = db.View(func(tx *bolt.Tx) error {
		value = bytes.Clone(schema.Journal(tx).Get(seqKey(seq)))
		return nil
	})
	_ = db.Close()
	at := bytes.Index(data, value)
	if value == nil || at < 0 {
		t.Fatalf("record %d not found in the file", seq)
	}
	ps := int64(os.Getpagesize())
	return int64(at) / ps * ps
}

func TestSalvage_DamagedPageYieldsAFileThatPassesCheckAndOpen(t *testing.T) {
	src, records := bigFixture(t)
	page := journalLeafPage(t, src, records/2)
	data, _ := os.ReadFile(src)
	for i := page + 16; i < page+int64(os.Getpagesize()); i++ {
		data[i] = byte(i * 7)
	}
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := CheckFile(src, time.Second, storecheck.All()...); err == nil {
		t.Fatal("the damage went unnoticed: the test damages nothing")
	}
	dst := filepath.Join(t.TempDir(), "salvaged.db")
	rep, err := Salvage(src, dst, Options{Checks: storecheck.All()})
	if err != nil {
		t.Fatalf("salvage: %v (%+v)", err, rep)
	}
	t.Logf("kept %d of %d records, dropped %d, unreadable %v", rep.Kept, records, len(rep.Dropped), rep.Unreadable)
	if rep.Kept == 0 || uint64(rep.Kept) >= records || len(rep.Unreadable) == 0 {
		t.Fatalf("report %+v: want some but not all of %d records kept, and the damage reported", rep, records)
	}
	if rep.StoreRecords["images"] != 2 || rep.StoreRecords["layers"] != 1 {
		t.Fatalf("store buckets not copied: %v", rep.StoreRecords)
	}
	after, _ := os.ReadFile(src)
	if !bytes.Equal(after, data) {
		t.Fatal("salvage modified the damaged file")
	}
	if _, err := CheckFile(dst, time.Second, storecheck.All()...); err != nil {
		t.Fatal(err)
	}
	j, err := Open(dst, Options{Checks: storecheck.All()})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	info, err := j.MarkStarted("55d46946-8f88-40b8-b1a4-435c73a5da29")
	if err != nil || info.CleanShutdown || info.FirstStart {
		t.Fatalf("a salvaged journal must start as after a crash: %+v %v", info, err)
	}
	// New records never reuse a sequence number of the damaged file.
	if j.LastSeq() < records {
		t.Fatalf("sequence %d after salvage, the damaged file had reached %d", j.LastSeq(), records)
	}
}

func TestSalvage_RecordsThatNoLongerFoldAreDroppedAndReported(t *testing.T) {
	src := fixture(t, "v1-pending.db")
	// Lose the pending stop's INTENT (seq 50) and the create INTENT of
	// "made" (the first record): its DONE, and everything after, no longer
	// fold.
	db, err := bolt.Open(src, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var made string
	err = db.Update(func(tx *bolt.Tx) error {
		var first sm.Record
		if first, err = decodeRecord(seqKey(1), schema.Journal(tx).Get(seqKey(1))); err != nil {
			return err
		}
		made = first.Container
		if err := schema.Journal(tx).Delete(seqKey(1)); err != nil {
			return err
		}
		return schema.Journal(tx).Delete(seqKey(50))
	})
	_ = db.Close()
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "salvaged.db")
	rep, err := Salvage(src, dst, Options{Checks: storecheck.All()})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Kept+len(rep.Dropped) != 48 || len(rep.Dropped) == 0 || rep.Dropped[0].Seq != 2 {
		t.Fatalf("report %+v", rep)
	}
	j, err := Open(dst, Options{Checks: storecheck.All()})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if _, ok := j.Container(made); ok {
		t.Fatal("a container whose create was lost is in the salvaged view")
	}
	runner, ok := j.Container("c4408da7825bf7e8b940094df16c792c00659440fa5fbe293c2696d060ac0d42")
	if !ok || runner.Pending != nil || runner.State != sm.StateRunning {
		t.Fatalf("runner after losing its pending intent: %+v", runner)
	}
}

func TestSalvage_RefusesAnExistingTarget(t *testing.T) {
	src := fixture(t, "v1.db")
	dst := filepath.Join(t.TempDir(), "there.db")
	if err := os.WriteFile(dst, []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Salvage(src, dst, Options{})
	if !errors.Is(err, errdefs.ErrAlreadyExists) || !strings.Contains(err.Error(), dst) {
		t.Fatalf("got %v", err)
	}
	if got, _ := os.ReadFile(dst); string(got) != "mine" {
		t.Fatal("an existing file was overwritten")
	}
}

func TestSalvage_TruncatedFile(t *testing.T) {
	src, records := bigFixture(t)
	fm, err := schema.ReadFileMeta(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(src, int64(fm.Pgid-2)*int64(fm.PageSize)); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "salvaged.db")
	rep, err := Salvage(src, dst, Options{Checks: storecheck.All()})
	if err != nil {
		t.Fatalf("salvage of a truncated file: %v", err)
	}
	t.Logf("truncated: kept %d of %d, dropped %d, unreadable %v, store repairs %v", rep.Kept, records, len(rep.Dropped), rep.Unreadable, rep.StoreRepairs)
	if _, err := CheckFile(dst, time.Second, storecheck.All()...); err != nil {
		t.Fatal(err)
	}
}
