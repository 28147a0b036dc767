package journal

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cairn-run/cairn/internal/schema"
	"github.com/cairn-run/cairn/internal/storecheck"
)

// schemaFourFromFixture is the v2 fixture as a schema 4 cairnd leaves it:
// migrated by Open, then without execs/ and volumes/ and stamped 4
// (schemas 5 and 6 only add those buckets).
func schemaFourFromFixture(t *testing.T) string {
	t.Helper()
	path := fixture(t, "v2.db")
	j, err := Open(path, Options{Checks: storecheck.All()})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{schema.BucketExecs, schema.BucketVolumes} { // schemas 5 and 6
			if err := tx.DeleteBucket(b); err != nil {
				return err
			}
		}
		return schema.Meta(tx).Put(schema.MetaSchema, []byte("4"))
	})
	if err2 := db.Close(); err == nil {
		err = err2
	}
	if err != nil {
		t.Fatal(err)
	}
	return path
}

func TestMigrate4to5_AddsExecsAndKeepsEveryView(t *testing.T) {
	path := schemaFourFromFixture(t)
	if v, _ := storedSchema(t, path); v != 4 {
		t.Fatalf("fixture is schema %d", v)
	}
	before, _ := os.ReadFile(path)
	rep, err := CheckFile(path, time.Second, storecheck.All()...)
	if err != nil || rep.Schema != 4 {
		t.Fatalf("offline check of the schema 4 file: %+v %v", rep, err)
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
		if schema.Execs(tx) == nil || schema.Execs(tx).Stats().KeyN != 0 {
			t.Error("no empty execs/ bucket after the migration")
		}
		return nil
	})
	want := readPSFile(t, "ps-v2.json")
	got := j.Containers()
	if len(got) != len(want) {
		t.Fatalf("%d containers after migration, schema 4 showed %d", len(got), len(want))
	}
	for i := range want {
		gj, _ := json.Marshal(asPS(got[i]))
		wj, _ := json.Marshal(want[i])
		if !bytes.Equal(gj, wj) {
			t.Errorf("container %d after migration:\n got %s\nwant %s", i, gj, wj)
		}
	}
}
