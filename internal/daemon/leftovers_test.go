package daemon_test

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/cairn-run/cairn/internal/daemon"
	"github.com/cairn-run/cairn/internal/inspect"
	"github.com/cairn-run/cairn/internal/testenv/scratch"
	"github.com/cairn-run/cairn/journal"
)

func TestRecover_StaleRootfsMountOfAStoppedContainerIsUnmounted(t *testing.T) {
	e := scratch.NewBinaryDaemon(t)
	c := runDetached(t, e, "true")
	wait(t, e, c.Id)
	l := get(t, e, c.Id).Layers
	e.Kill()
	opts := "lowerdir=" + l.Init + ":" + strings.Join(l.Lower, ":") + ",upperdir=" + l.Upper + ",workdir=" + l.Work
	if err := unix.Mount("overlay", l.Rootfs, "overlay", 0, opts); err != nil {
		t.Fatal(err)
	}
	e.Start()
	if isMounted(l.Rootfs) {
		t.Fatal("the stale mount of a stopped container is still there")
	}
	if reasons := reconciledReasons(t, e, c.Id); len(reasons) != 1 || !strings.Contains(reasons[0], "unmounted a stale rootfs") {
		t.Fatalf("history: %v", reasons)
	}
	assertWorldMatchesJournal(t, e)
}

func TestRecover_LeftoversOfAContainerTheJournalDoesNotKnowAreRemoved(t *testing.T) {
	e := scratch.NewBinaryDaemon(t)
	e.Stop()
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	ghost := hex.EncodeToString(raw)
	dir := filepath.Join(e.Config.Root, "exec", "containers", ghost)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "container.log"), []byte("old\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cgroup := filepath.Join(inspect.CgroupRoot, "freezer", e.CgroupParent, ghost)
	if err := os.MkdirAll(cgroup, 0o755); err != nil {
		t.Fatal(err)
	}
	e.Start()
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("leftover directory still there: %v", err)
	}
	if _, err := os.Stat(cgroup); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("leftover cgroup still there: %v", err)
	}
	if reasons := reconciledReasons(t, e, ghost); len(reasons) != 1 || !strings.Contains(reasons[0], "leftovers") {
		t.Fatalf("history of the leftover: %v", reasons)
	}
}

func TestDaemon_CorruptJournalIsRefusedNamedAndKept(t *testing.T) {
	e := scratch.NewDaemon(t)
	create(t, e, "before-corruption", "true")
	e.Stop()
	path := filepath.Join(e.Config.Root, "cairn.db")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	page := os.Getpagesize()
	for i := 2 * page; i < 6*page && i < len(data); i++ {
		data[i] = 0xff
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = daemon.Start(e.Config)
	if !errors.Is(err, journal.ErrCorrupt) || !strings.Contains(err.Error(), path) {
		t.Fatalf("daemon start on a corrupt journal: %v, want ErrCorrupt naming %s", err, path)
	}
	if _, err := journal.CheckFile(path, 0); !errors.Is(err, journal.ErrCorrupt) {
		t.Fatalf("offline check: %v, want ErrCorrupt", err)
	}
	after, err := os.ReadFile(path)
	if err != nil || string(after) != string(data) {
		t.Fatalf("the corrupt journal was changed or deleted (%v)", err)
	}
	// Give teardown a journal it can open, so it can clean up.
	if err := os.Rename(path, path+".corrupt"); err != nil {
		t.Fatal(err)
	}
	e.Start()
}
