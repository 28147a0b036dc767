package layer

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/cairn-run/cairn/internal/errdefs"
)

// newStoreWithImage returns a store with the busybox image imported as "bb".
func newStoreWithImage(t *testing.T) *Store {
	t.Helper()
	s := newTestStore(t)
	mustImport(t, s, "bb", busyboxTar(t))
	return s
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestCreateMount_InitLayerContents(t *testing.T) {
	s := newStoreWithImage(t)
	m, err := s.CreateMount(t.Context(), mountID(1), "bb", InitConfig{Hostname: "web-1"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"etc/hosts":       "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\tweb-1\n",
		"etc/hostname":    "web-1\n",
		"etc/resolv.conf": "nameserver 10.1.2.3\nsearch example.org\n", // 127.0.0.53 dropped
		"dev/console":     "",
	}
	for rel, content := range want {
		p := filepath.Join(m.Init, rel)
		if got := readFile(t, p); got != content {
			t.Errorf("%s = %q, want %q", rel, got, content)
		}
		if fi, _ := os.Stat(p); fi.Mode() != 0o644 {
			t.Errorf("%s mode %v, want 0644", rel, fi.Mode())
		}
	}
	for _, d := range []string{"etc", "dev"} {
		if fi, _ := os.Stat(filepath.Join(m.Init, d)); fi.Mode() != os.ModeDir|0o755 {
			t.Errorf("%s mode %v, want 0755", d, fi.Mode())
		}
	}
	if target, err := os.Readlink(filepath.Join(m.Init, "etc/mtab")); err != nil || target != "/proc/mounts" {
		t.Errorf("etc/mtab -> %q, %v", target, err)
	}
	for _, d := range []string{m.Upper, m.Work, m.Rootfs} {
		if names := dirEntries(t, d); len(names) != 0 {
			t.Errorf("%s not empty: %v", d, names)
		}
	}
	if len(m.Lower) != 1 || filepath.Dir(m.Lower[0]) != s.layersDir {
		t.Errorf("Lower = %v", m.Lower)
	}
}

func TestCreateMount_ResolvConfWithOnlyLoopbackIsEmpty(t *testing.T) {
	s := newStoreWithImage(t)
	if err := os.WriteFile(s.resolvConf, []byte("# stub\nnameserver 127.0.0.53\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := s.CreateMount(t.Context(), mountID(1), "bb", InitConfig{Hostname: "h"})
	if err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(m.Init, "etc/resolv.conf")); got != "" {
		t.Errorf("resolv.conf = %q, want empty", got)
	}
}

func TestCreateMount_IsIdempotentAndFinishesAfterACrash(t *testing.T) {
	s := newStoreWithImage(t)
	id := mountID(2)
	first, err := s.CreateMount(t.Context(), id, "bb", InitConfig{Hostname: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.CreateMount(t.Context(), id, "bb", InitConfig{Hostname: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(first, again) {
		t.Errorf("second CreateMount = %+v, want %+v", again, first)
	}
	info, err := s.MountInfo(id)
	if err != nil || !reflect.DeepEqual(info, first) {
		t.Errorf("MountInfo = %+v, %v; want %+v", info, err, first)
	}

	// A crash after the record was committed but before the dirs were done.
	for _, p := range []string{first.Rootfs, first.Work, filepath.Join(first.Init, "etc/hostname")} {
		if err := os.RemoveAll(p); err != nil {
			t.Fatal(err)
		}
	}
	redo, err := s.CreateMount(t.Context(), id, "bb", InitConfig{Hostname: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(redo, first) {
		t.Errorf("after crash CreateMount = %+v, want %+v", redo, first)
	}
	if got := readFile(t, filepath.Join(first.Init, "etc/hostname")); got != "c1\n" {
		t.Errorf("hostname = %q", got)
	}
	for _, d := range []string{first.Rootfs, first.Work} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("not recreated: %v", err)
		}
	}
	mounts, err := s.Mounts()
	if err != nil || len(mounts) != 1 || mounts[0].ID != id {
		t.Errorf("Mounts() = %+v, %v", mounts, err)
	}
}

func TestCreateMount_Refusals(t *testing.T) {
	s := newStoreWithImage(t)
	mustImport(t, s, "other", tarOf(t, file("f", "x")))
	id := mountID(3)
	if _, err := s.CreateMount(t.Context(), id, "nope", InitConfig{Hostname: "h"}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("unknown image: %v, want ErrNotFound", err)
	}
	if names := dirEntries(t, s.mountsDir); len(names) != 0 {
		t.Errorf("unknown image left %v", names)
	}
	if _, err := s.CreateMount(t.Context(), id, "bb", InitConfig{Hostname: "h"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateMount(t.Context(), id, "other", InitConfig{Hostname: "h"}); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Errorf("same id, other image: %v, want ErrAlreadyExists", err)
	}
	for _, bad := range []string{"", "abc", strings.Repeat("G", 64), strings.Repeat("A", 64), "../" + strings.Repeat("a", 61)} {
		if _, err := s.CreateMount(t.Context(), bad, "bb", InitConfig{Hostname: "h"}); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("mount id %q: %v, want ErrInvalidArgument", bad, err)
		}
	}
	for _, bad := range []string{"", "a b", "a\n127.0.0.1 evil", "-x", strings.Repeat("a", 65)} {
		if _, err := s.CreateMount(t.Context(), mountID(4), "bb", InitConfig{Hostname: bad}); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("hostname %q: %v, want ErrInvalidArgument", bad, err)
		}
	}
	if _, err := s.MountInfo(mountID(5)); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("MountInfo(unknown) = %v, want ErrNotFound", err)
	}
}

func TestRemoveImage_RefusedWhileAMountUsesIt(t *testing.T) {
	s := newStoreWithImage(t)
	id := mountID(6)
	if _, err := s.CreateMount(t.Context(), id, "bb", InitConfig{Hostname: "h"}); err != nil {
		t.Fatal(err)
	}
	err := s.RemoveImage("bb")
	if !errors.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), id) {
		t.Fatalf("RemoveImage = %v, want ErrFailedPrecondition naming %s", err, id)
	}
	if _, err := s.Image("bb"); err != nil {
		t.Errorf("image gone after a refused remove: %v", err)
	}
	if err := s.RemoveMount(id); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveImage("bb"); err != nil {
		t.Fatal(err)
	}
	if names := dirEntries(t, s.layersDir); len(names) != 0 {
		t.Errorf("layer dirs left: %v", names)
	}
}

func TestRemoveMount_DeletesAnUnregisteredLeftover(t *testing.T) {
	s := newTestStore(t)
	id := mountID(7)
	if err := os.MkdirAll(filepath.Join(s.mountsDir, id, "upper", "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveMount(id); err != nil {
		t.Fatal(err)
	}
	if names := dirEntries(t, s.mountsDir); len(names) != 0 {
		t.Errorf("mounts dir = %v, want empty", names)
	}
	if err := s.RemoveMount(mountID(8)); err != nil {
		t.Errorf("unknown id: %v, want nil", err)
	}
}
