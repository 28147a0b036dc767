package journal

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cairn-run/cairn/internal/schema"
	"github.com/cairn-run/cairn/internal/storecheck"
	sm "github.com/cairn-run/cairn/statemachine"
)

// fixture copies testdata/name into a temp dir and returns the copy's path.
// The fixtures were written by cairnd at schema 1: an image imported twice
// (busybox, other), containers created, running, paused, exited 3, killed
// 137, restarted, one removed; v1-pending.db is the same after a crash at
// stop.after-signal, with the stop of "runner" pending.
func fixture(t testing.TB, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "cairn.db")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// psRow is one line of `cairn ps -a --format json` as schema 1 showed it.
type psRow struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	Image    string    `json:"image"`
	Command  []string  `json:"command"`
	State    string    `json:"state"`
	PID      int       `json:"pid"`
	ExitCode *int      `json:"exit_code"`
	Created  time.Time `json:"created"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
}

func readPS(t *testing.T) []psRow {
	t.Helper()
	return readPSFile(t, "ps.json")
}

func readPSFile(t *testing.T, name string) []psRow {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows []psRow
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r psRow
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, r)
	}
	return rows
}

func asPS(c sm.Container) psRow {
	r := psRow{ID: c.ID, Name: c.Name, Image: c.Image, Command: c.Command, State: string(c.State),
		Created: c.CreatedAt, Started: c.StartedAt, Finished: c.FinishedAt}
	if c.Process != nil {
		r.PID = c.Process.PID
	}
	if c.Exit != nil {
		r.ExitCode = c.Exit.Code
	}
	return r
}

func storedSchema(t *testing.T, path string) (int, map[string]string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v int
	pending := map[string]string{}
	err = db.View(func(tx *bolt.Tx) error {
		var err error
		v, err = schema.StoredVersion(tx)
		if err != nil {
			return err
		}
		return schema.Pending(tx).ForEach(func(k, val []byte) error {
			pending[string(k)] = string(val)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return v, pending
}

func TestMigrate1to2_ViewsEqualWhatSchema1Showed(t *testing.T) {
	path := fixture(t, "v1.db")
	j, err := Open(path, Options{Checks: storecheck.All()})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Verify(); err != nil {
		t.Fatalf("after migration the journal does not fold to the stored view: %v", err)
	}
	want := readPS(t)
	got := j.Containers()
	if len(got) != len(want) {
		t.Fatalf("%d containers after migration, schema 1 showed %d", len(got), len(want))
	}
	for i := range want {
		g, w := asPS(got[i]), want[i]
		gj, _ := json.Marshal(g)
		wj, _ := json.Marshal(w)
		if !bytes.Equal(gj, wj) {
			t.Errorf("container %d after migration:\n got %s\nwant %s", i, gj, wj)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if v, _ := storedSchema(t, path); v != schema.Version {
		t.Fatalf("stored schema %d after Open, want %d", v, schema.Version)
	}
	// Reopening a migrated file verifies it like any other, and changes nothing.
	j, err = Open(path, Options{Checks: storecheck.All()})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if n := len(j.Containers()); n != len(want) {
		t.Fatalf("%d containers after reopening", n)
	}
}

func TestMigrate1to2_PendingStopStaysPendingUnderItsObjectKey(t *testing.T) {
	path := fixture(t, "v1-pending.db")
	const runner = "c4408da7825bf7e8b940094df16c792c00659440fa5fbe293c2696d060ac0d42"
	j, err := Open(path, Options{Checks: storecheck.All()})
	if err != nil {
		t.Fatal(err)
	}
	c, ok := j.Container(runner)
	if !ok || c.Pending == nil || c.Pending.Event != sm.EventStop || c.Pending.Seq != 50 || c.State != sm.StateRunning {
		t.Fatalf("runner after migration: %+v (pending %+v)", c, c.Pending)
	}
	if c.Pending.Args == nil || time.Duration(c.Pending.Args.Timeout) != time.Second {
		t.Fatalf("pending stop lost its arguments: %+v", c.Pending.Args)
	}
	if err := j.Verify(); err != nil {
		t.Fatal(err)
	}
	// The pending stop still refuses a second intent and accepts its DONE.
	if _, err := j.Append(sm.Record{Kind: sm.KindIntent, Container: runner, Event: sm.EventPause, From: sm.StateRunning, To: sm.StatePaused}); !errors.Is(err, ErrInconsistent) {
		t.Fatalf("second intent over the pending stop: %v", err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	_, pending := storedSchema(t, path)
	if _, ok := pending[schema.ContainerKeyPrefix+runner]; !ok || len(pending) != 1 {
		t.Fatalf("pending/ after migration: %v, want only container/%s", pending, runner)
	}
}

func TestMigrate_ContainerKeyPrefixIsTheContainersObjectKey(t *testing.T) {
	if got := sm.ObjectKey(sm.ObjectContainer, ""); got != schema.ContainerKeyPrefix {
		t.Fatalf("the migration keys pending intents by %q, a container's object key starts %q", schema.ContainerKeyPrefix, got)
	}
	if got := pendingKey("abc"); string(got) != "container/abc" {
		t.Fatalf("pending key %q", got)
	}
}

func TestOpen_NewerSchemaIsRefusedByNameAndKept(t *testing.T) {
	path := fixture(t, "v1.db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		return schema.Meta(tx).Put(schema.MetaSchema, []byte(strconv.Itoa(schema.Version+1)))
	}); err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
	before, _ := os.ReadFile(path)
	_, err = Open(path, Options{})
	if !errors.Is(err, schema.ErrNewerSchema) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), strconv.Itoa(schema.Version+1)) {
		t.Fatalf("got %v, want ErrNewerSchema naming %s and version %d", err, path, schema.Version+1)
	}
	if _, err := CheckFile(path, time.Second); !errors.Is(err, schema.ErrNewerSchema) {
		t.Fatalf("offline check: %v", err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Fatal("a refused file was modified")
	}
}

func TestOpen_NewFileGetsEveryBucketOfTheSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cairn.db")
	j, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_ = j.Close()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		if err := schema.CheckBuckets(tx, schema.Version); err != nil {
			return err
		}
		v, err := schema.StoredVersion(tx)
		if v != schema.Version {
			t.Errorf("version %d", v)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestCheckFile_SchemaOneIsVerifiedAsMigrated(t *testing.T) {
	path := fixture(t, "v1-pending.db")
	before, _ := os.ReadFile(path)
	rep, err := CheckFile(path, time.Second, storecheck.All()...)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Schema != 1 || rep.Records != 50 || rep.Containers != 6 {
		t.Fatalf("report %+v", rep)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Fatal("the offline check modified the file")
	}
}
