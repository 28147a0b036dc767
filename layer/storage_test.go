package layer

import (
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairn-run/cairn/internal/errdefs"
	"github.com/cairn-run/cairn/internal/schema"
	"github.com/cairn-run/cairn/journal"
	sm "github.com/cairn-run/cairn/statemachine"
)

func TestRegisterMount_ChecksInTheTransactionAndIsIdempotent(t *testing.T) {
	s := newStoreWithImage(t)
	if _, err := s.RegisterMount("nothex", "bb"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("bad id: %v", err)
	}
	op, err := s.RegisterMount(mountID(1), "nosuch")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.update(op); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("missing image: %v", err)
	}
	if _, err := s.MountInfo(mountID(1)); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatal("a refused registration left a record")
	}
	if _, err := s.BuildMount(t.Context(), mountID(1), InitConfig{Hostname: "h"}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("build of an unregistered mount: %v", err)
	}
	op, _ = s.RegisterMount(mountID(1), "bb")
	for range 2 {
		if err := s.update(op); err != nil {
			t.Fatal(err)
		}
	}
	other, _ := s.RegisterMount(mountID(1), "other")
	if err := s.update(other); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Fatalf("same id on another image: %v", err)
	}
	// Registered, not built: no directory yet; BuildMount makes them, twice
	// is the same, and a half-built mount is finished.
	if _, err := os.Lstat(s.mountDir(mountID(1))); !os.IsNotExist(err) {
		t.Fatal("registering made directories")
	}
	m, err := s.BuildMount(t.Context(), mountID(1), InitConfig{Hostname: "web"})
	if err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(m.Init, "etc/hostname")); got != "web\n" {
		t.Fatalf("hostname %q", got)
	}
	if err := os.Remove(m.Rootfs); err != nil {
		t.Fatal(err)
	}
	if _, err := s.BuildMount(t.Context(), mountID(1), InitConfig{Hostname: "web"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(m.Rootfs); err != nil {
		t.Fatal("a half-built mount was not finished")
	}
	if err := s.db.View(CheckTx); err != nil {
		t.Fatal(err)
	}
}

func TestUnregisterMount_AfterRemoveMountDirs(t *testing.T) {
	s := newStoreWithImage(t)
	if _, err := s.CreateMount(t.Context(), mountID(2), "bb", InitConfig{Hostname: "h"}); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveMountDirs(mountID(2)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(s.mountDir(mountID(2))); !os.IsNotExist(err) {
		t.Fatal("directories left")
	}
	if _, err := s.MountInfo(mountID(2)); err != nil {
		t.Fatal("RemoveMountDirs dropped the record")
	}
	if err := s.RemoveImage("bb"); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("image removable while its mount is registered: %v", err)
	}
	op, err := s.UnregisterMount(mountID(2))
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // idempotent
		if err := s.update(op); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.MountInfo(mountID(2)); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatal("record left")
	}
	if err := s.RemoveImage("bb"); err != nil {
		t.Fatal(err)
	}
}

type commitCounter struct{ commits atomic.Int64 }

func (c *commitCounter) Committed(int, time.Duration) { c.commits.Add(1) }

// TestStore_OnTheJournalAMountJoinsItsIntentInOneCommit runs the store on a
// real journal: the mount record and the create's INTENT commit in one
// transaction (one fsync), and a mount on a missing image refuses the
// INTENT with it.
func TestStore_OnTheJournalAMountJoinsItsIntentInOneCommit(t *testing.T) {
	dir := t.TempDir()
	counter := &commitCounter{}
	j, err := journal.Open(filepath.Join(dir, "cairn.db"), journal.Options{Observer: counter, Checks: []schema.Check{Check}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = j.Close() })
	s, err := Open(filepath.Join(dir, "layer"), j)
	if err != nil {
		t.Fatal(err)
	}
	mustImport(t, s, "bb", busyboxTar(t))
	intent := func(id, mount, image string) sm.Record {
		return sm.Record{Kind: sm.KindIntent, Container: id, Event: sm.EventCreate, To: sm.StateCreated,
			Args: &sm.Args{Image: image, MountID: mount, Command: []string{"sh"}}}
	}

	op, _ := s.RegisterMount(mountID(3), "nosuch")
	before := j.LastSeq()
	if _, err := j.Commit([]sm.Record{intent("c1", mountID(3), "nosuch")}, op); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("got %v, want the mount's ErrNotFound", err)
	}
	if _, ok := j.Container("c1"); ok || j.LastSeq() != before {
		t.Fatal("the INTENT committed without its mount")
	}

	op, _ = s.RegisterMount(mountID(4), "bb")
	commits := counter.commits.Load()
	if _, err := j.Commit([]sm.Record{intent("c2", mountID(4), "bb")}, op); err != nil {
		t.Fatal(err)
	}
	if n := counter.commits.Load() - commits; n != 1 {
		t.Fatalf("INTENT and mount record took %d commits", n)
	}
	if _, ok := j.Container("c2"); !ok {
		t.Fatal("INTENT missing")
	}
	if _, err := s.BuildMount(t.Context(), mountID(4), InitConfig{Hostname: "h"}); err != nil {
		t.Fatal(err)
	}
	if err := j.Verify(); err != nil {
		t.Fatal(err)
	}
}
