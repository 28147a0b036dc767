package layer

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cairn-run/cairn/internal/schema"
)

// newTestStore opens a store in a fresh temp dir with its own bbolt file. Its
// cleanup unmounts whatever the test left mounted, even when it failed.
func newTestStore(t testing.TB) *Store {
	t.Helper()
	dir := t.TempDir()
	s := openStore(t, filepath.Join(dir, "cairn.db"), filepath.Join(dir, "layer"))
	resolv := filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver 127.0.0.53\nnameserver 10.1.2.3\nsearch example.org\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.resolvConf = resolv
	t.Cleanup(func() { unmountAll(t, s) })
	return s
}

// openStore opens a store in dir on a new bbolt file at dbPath, closed
// when the test ends.
func openStore(t testing.TB, dbPath, dir string) *Store {
	t.Helper()
	db, err := bolt.Open(dbPath, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Update(schema.Create); err != nil {
		t.Fatal(err)
	}
	s, err := Open(dir, boltStorage{db})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// boltStorage is the store's storage over a plain bbolt DB, for unit tests:
// each Write is one Update. The journal's own tests cover the group commit.
type boltStorage struct{ db *bolt.DB }

func (b boltStorage) View(fn func(tx *bolt.Tx) error) error { return b.db.View(fn) }
func (b boltStorage) Write(op schema.Op) error              { return b.db.Update(op) }

func unmountAll(t testing.TB, s *Store) {
	ids, err := s.MountedIDs()
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	for id := range ids {
		if err := s.Unmount(id); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	}
}

// entry is one tar entry of a test tar.
type entry struct {
	hdr  tar.Header
	body string
}

var testTime = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)

func file(name, body string) entry {
	return entry{hdr: tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body)), ModTime: testTime}, body: body}
}
func dir(name string) entry {
	return entry{hdr: tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: testTime}}
}
func symlink(name, target string) entry {
	return entry{hdr: tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777, ModTime: testTime}}
}
func hardlink(name, target string) entry {
	return entry{hdr: tar.Header{Name: name, Typeflag: tar.TypeLink, Linkname: target, ModTime: testTime}}
}
func device(name string, typ byte, major, minor int64) entry {
	return entry{hdr: tar.Header{Name: name, Typeflag: typ, Devmajor: major, Devminor: minor, Mode: 0o600, ModTime: testTime}}
}
func fifo(name string) entry {
	return entry{hdr: tar.Header{Name: name, Typeflag: tar.TypeFifo, Mode: 0o620, ModTime: testTime}}
}

func tarOf(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.hdr
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("tar header %q: %v", h.Name, err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipOf(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func sha256Of(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// busyboxTar is a small realistic rootfs: a static busybox and the kind of
// symlinks real images carry (absolute and relative). Without busybox
// installed it falls back to the test binary: only the bytes matter here.
func busyboxTar(t testing.TB) []byte {
	t.Helper()
	bin, err := os.ReadFile("/bin/busybox")
	if err != nil {
		exe, _ := os.Executable()
		if bin, err = os.ReadFile(exe); err != nil {
			t.Fatal(err)
		}
	}
	bb := file("./bin/busybox", string(bin))
	bb.hdr.Mode = 0o755
	return tarOf(t,
		dir("./"),
		dir("./bin/"),
		bb,
		symlink("./bin/sh", "/bin/busybox"),
		symlink("./bin/ls", "busybox"),
		dir("./etc/"),
		file("./etc/os-release", "NAME=cairn-test\n"),
		dir("./tmp/"),
	)
}

// mountID returns a valid, test-unique mount id.
func mountID(n int) string {
	const hexdigits = "0123456789abcdef"
	b := []byte("c0ffee00000000000000000000000000000000000000000000000000000000000")[:64]
	for i := 63; n > 0 && i >= 0; i-- {
		b[i] = hexdigits[n%16]
		n /= 16
	}
	return string(b)
}

// dirEntries lists a directory's names (nil if it does not exist).
func dirEntries(t testing.TB, d string) []string {
	t.Helper()
	es, err := os.ReadDir(d)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func mustImport(t testing.TB, s *Store, name string, tarball []byte) Image {
	t.Helper()
	img, err := s.Import(t.Context(), name, bytes.NewReader(tarball), ImportOptions{})
	if err != nil {
		t.Fatalf("import %s: %v", name, err)
	}
	return img
}
