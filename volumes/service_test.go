package volumes

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-run/cairn/internal/errdefs"
	"github.com/cairn-run/cairn/journal"
	sm "github.com/cairn-run/cairn/statemachine"
)

func newService(t *testing.T) (*Service, *journal.Journal) {
	t.Helper()
	dir := t.TempDir()
	j, err := journal.Open(filepath.Join(dir, "cairn.db"), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = j.Close() })
	return &Service{Dir: filepath.Join(dir, "volumes"), Journal: j,
		Driver: sm.NewVolumes(sm.VolumeDeps{Journal: j, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})}, j
}

func TestService_ALeftoverDirectoryIsNeitherAdoptedNorDeleted(t *testing.T) {
	s, j := newService(t)
	leftover := filepath.Join(s.Dir, "old", "_data")
	if err := os.MkdirAll(leftover, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(leftover, "keep"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(context.Background(), "old", nil); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("create over a leftover directory: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(leftover, "keep")); err != nil || string(b) != "x" {
		t.Fatalf("the leftover's data: %q %v", b, err)
	}
	if _, ok := j.Volume("old"); ok {
		t.Fatal("a failed create left a view")
	}
	if err := j.Verify(); err != nil {
		t.Fatal(err)
	}
}

func TestService_RemoveRefusesAVolumeAContainerNamesAndTheJournalDoesToo(t *testing.T) {
	s, j := newService(t)
	ctx := context.Background()
	if _, err := s.Create(ctx, "data", map[string]string{"a": "b"}); err != nil {
		t.Fatal(err)
	}
	id := strings.Repeat("c", 64)
	mounts := []sm.Mount{{Type: sm.MountVolume, Source: "data", Destination: "/data"}}
	create := sm.Record{Kind: sm.KindIntent, Container: id, Event: sm.EventCreate, From: sm.StateNone, To: sm.StateCreated,
		Args: &sm.Args{Image: "busybox", Command: []string{"true"}, MountID: strings.Repeat("d", 64), Hostname: id[:12], Mounts: mounts}}
	in, err := j.Append(create)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.Append(sm.Record{Kind: sm.KindDone, Container: id, Event: sm.EventCreate, From: sm.StateNone, To: sm.StateCreated, Intent: in.Seq}); err != nil {
		t.Fatal(err)
	}
	for _, force := range []bool{false, true} {
		if _, err := s.Remove(ctx, "data", force); !errors.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), id[:12]) {
			t.Fatalf("remove (force %v) of a volume in use: %v", force, err)
		}
	}
	// The fold refuses the intent even if a caller skipped the check.
	if _, err := j.Append(sm.Record{Kind: sm.KindIntent, Object: sm.ObjectVolume, ObjectID: "data", Event: sm.EventVolumeRemove, From: sm.StatePresent, To: sm.StateRemoved}); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("remove intent of a volume in use: %v", err)
	}
	// And a create that names a volume that does not exist.
	other := create
	other.Container = strings.Repeat("e", 64)
	other.Args = &sm.Args{Image: "busybox", Command: []string{"true"}, MountID: strings.Repeat("f", 64), Hostname: "x",
		Mounts: []sm.Mount{{Type: sm.MountVolume, Source: "nope", Destination: "/data"}}}
	if _, err := j.Append(other); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("create naming no volume: %v", err)
	}
	v, err := s.Get("data")
	if err != nil || len(v.UsedBy) != 1 || v.UsedBy[0] != id || v.Labels["a"] != "b" {
		t.Fatalf("get: %+v %v", v, err)
	}
	if removed, err := s.Prune(ctx, true); err != nil || len(removed) != 0 {
		t.Fatalf("prune removed a volume in use: %v %v", removed, err)
	}
	if err := j.Verify(); err != nil {
		t.Fatal(err)
	}
}

func TestService_PopulateCopiesTheImagesContentOnceAndNeverOutOfTheRootfs(t *testing.T) {
	s, _ := newService(t)
	ctx := context.Background()
	if _, err := s.Create(ctx, "v1", nil); err != nil {
		t.Fatal(err)
	}
	rootfs := t.TempDir()
	for _, d := range []string{"data/ro", "etc"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(rootfs, "data/ro/f"), []byte("image"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(rootfs, "data/ro"), 0o555); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(rootfs, "data/link")); err != nil {
		t.Fatal(err)
	}
	// A VOLUME path that is a symlink out of the rootfs resolves inside it.
	if err := os.Symlink("/etc", filepath.Join(rootfs, "escape")); err != nil {
		t.Fatal(err)
	}
	if err := s.Populate("v1", rootfs, "/data"); err != nil {
		t.Fatal(err)
	}
	data := s.Mountpoint("v1")
	if b, err := os.ReadFile(filepath.Join(data, "ro/f")); err != nil || string(b) != "image" {
		t.Fatalf("copied file: %q %v", b, err)
	}
	if fi, err := os.Stat(filepath.Join(data, "ro")); err != nil || fi.Mode().Perm() != 0o555 {
		t.Fatalf("copied directory mode: %v %v", fi.Mode(), err)
	}
	if l, err := os.Readlink(filepath.Join(data, "link")); err != nil || l != "/etc/passwd" {
		t.Fatalf("copied symlink: %q %v", l, err)
	}
	// Not empty any more: a second populate leaves it as it is.
	if err := os.Remove(filepath.Join(data, "link")); err != nil {
		t.Fatal(err)
	}
	if err := s.Populate("v1", rootfs, "/data"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(data, "link")); !os.IsNotExist(err) {
		t.Fatal("a volume with content was filled again")
	}
	if _, err := s.Create(ctx, "v2", nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Populate("v2", rootfs, "/escape"); err != nil {
		t.Fatal(err)
	}
	if empty, err := isEmptyDir(s.Mountpoint("v2")); err != nil || !empty {
		t.Fatalf("a symlink out of the rootfs was followed: empty %v %v", empty, err)
	}
	_ = os.Chmod(filepath.Join(data, "ro"), 0o755) // for t.TempDir's cleanup
	_ = os.Chmod(filepath.Join(rootfs, "data/ro"), 0o755)
}
