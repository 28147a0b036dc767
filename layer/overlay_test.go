package layer

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/cairn-run/cairn/internal/errdefs"
	"github.com/cairn-run/cairn/internal/testenv"
)

// mountinfoCount counts the mount table entries whose mount point is target.
func mountinfoCount(t *testing.T, target string) int {
	t.Helper()
	infos, err := mountinfo.GetMounts(func(m *mountinfo.Info) (skip, stop bool) { return m.Mountpoint != target, false })
	if err != nil {
		t.Fatal(err)
	}
	return len(infos)
}

func createMount(t *testing.T, s *Store, id string) Mount {
	t.Helper()
	m, err := s.CreateMount(t.Context(), id, "bb", InitConfig{Hostname: "box"})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMount_IsIdempotent(t *testing.T) {
	testenv.RequireRoot(t)
	s := newStoreWithImage(t)
	id := mountID(10)
	m := createMount(t, s, id)

	for range 2 {
		rootfs, err := s.Mount(id)
		if err != nil {
			t.Fatal(err)
		}
		if rootfs != m.Rootfs {
			t.Errorf("Mount = %s, want %s", rootfs, m.Rootfs)
		}
	}
	if n := mountinfoCount(t, m.Rootfs); n != 1 {
		t.Fatalf("%d mounts on %s, want 1", n, m.Rootfs)
	}
	if ok, err := s.Mounted(id); err != nil || !ok {
		t.Errorf("Mounted = %v, %v; want true", ok, err)
	}
	ids, err := s.MountedIDs()
	if err != nil || len(ids) != 1 || !ids[id] {
		t.Errorf("MountedIDs = %v, %v; want {%s}", ids, err, id)
	}
	// The image, the init layer and the symlinks are all visible.
	if got := readFile(t, filepath.Join(m.Rootfs, "etc/hostname")); got != "box\n" {
		t.Errorf("etc/hostname = %q", got)
	}
	if got := readFile(t, filepath.Join(m.Rootfs, "etc/os-release")); got != "NAME=cairn-test\n" {
		t.Errorf("etc/os-release = %q", got)
	}
	if target, _ := os.Readlink(filepath.Join(m.Rootfs, "bin/sh")); target != "/bin/busybox" {
		t.Errorf("bin/sh -> %q", target)
	}

	for range 2 {
		if err := s.Unmount(id); err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := s.Mounted(id); err != nil || ok {
		t.Errorf("Mounted after Unmount = %v, %v; want false", ok, err)
	}
	if n := mountinfoCount(t, m.Rootfs); n != 0 {
		t.Errorf("%d mounts left on %s", n, m.Rootfs)
	}
}

func TestMount_WrittenFileSurvivesRemountAndLandsInUpper(t *testing.T) {
	testenv.RequireRoot(t)
	s := newStoreWithImage(t)
	id := mountID(11)
	m := createMount(t, s, id)
	if _, err := s.Mount(id); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(m.Rootfs, "tmp/note"), []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Unmount(id); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(m.Upper, "tmp/note")); got != "hello" {
		t.Errorf("upper/tmp/note = %q", got)
	}
	if _, err := os.Stat(filepath.Join(m.Lower[0], "tmp/note")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the image layer was written to: %v", err)
	}
	if _, err := s.Mount(id); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(m.Rootfs, "tmp/note")); got != "hello" {
		t.Errorf("after remount tmp/note = %q", got)
	}
}

func TestRemoveMount_DeletesEverything(t *testing.T) {
	testenv.RequireRoot(t)
	s := newStoreWithImage(t)
	id := mountID(12)
	m := createMount(t, s, id)
	if _, err := s.Mount(id); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(m.Rootfs, "written"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveMount(id); err != nil {
		t.Fatal(err)
	}
	if n := mountinfoCount(t, m.Rootfs); n != 0 {
		t.Errorf("still mounted")
	}
	if _, err := os.Stat(filepath.Join(s.mountsDir, id)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("mount dir still there: %v", err)
	}
	if _, err := s.MountInfo(id); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("MountInfo after remove = %v, want ErrNotFound", err)
	}
	if err := s.RemoveMount(id); err != nil {
		t.Errorf("second RemoveMount = %v, want nil", err)
	}
	if names := dirEntries(t, s.layersDir); len(names) != 1 {
		t.Errorf("the image layer must stay: %v", names)
	}
}

func TestMount_ConcurrentCallsMountOnce(t *testing.T) {
	testenv.RequireRoot(t)
	s := newStoreWithImage(t)
	id := mountID(14)
	m := createMount(t, s, id)
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			_, err := s.Mount(id)
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if n := mountinfoCount(t, m.Rootfs); n != 1 {
		t.Errorf("%d mounts on %s, want 1", n, m.Rootfs)
	}
}

func TestUnmount_OfAnUnknownOrUnmountedIDIsNil(t *testing.T) {
	s := newTestStore(t)
	if err := s.Unmount(mountID(13)); err != nil {
		t.Errorf("Unmount(unknown) = %v", err)
	}
	if ok, err := s.Mounted(mountID(13)); err != nil || ok {
		t.Errorf("Mounted(unknown) = %v, %v", ok, err)
	}
	if _, err := s.Mount(mountID(13)); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Mount(unknown) = %v, want ErrNotFound", err)
	}
}

// The store's own directories never hold whitespace (overlay options could
// not name them), but the mount table lookups it uses must read a mount
// point with a space, which the kernel writes as "\040", as the path it is.
func TestMountTable_MountPointWithASpace(t *testing.T) {
	testenv.RequireRoot(t)
	dir := filepath.Join(t.TempDir(), "with space")
	id := mountID(20)
	merged := filepath.Join(dir, id, "merged")
	if err := os.MkdirAll(merged, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", merged, "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(merged, unix.MNT_DETACH) })
	if n := mountinfoCount(t, merged); n != 1 {
		t.Fatalf("%d mounts on %q in the table, want 1", n, merged)
	}
	if ok, err := isMountPoint(merged); err != nil || !ok {
		t.Errorf("isMountPoint(%q) = %v, %v; want true", merged, ok, err)
	}
	if ok, err := isMountPoint(filepath.Join(dir, id)); err != nil || ok {
		t.Errorf("isMountPoint of its parent = %v, %v; want false", ok, err)
	}
	if ids, err := mountedIDsIn(dir); err != nil || len(ids) != 1 || !ids[id] {
		t.Errorf("mountedIDsIn(%q) = %v, %v; want {%s}", dir, ids, err, id)
	}
}
