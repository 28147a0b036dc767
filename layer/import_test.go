package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"github.com/cairn-run/cairn/internal/errdefs"
)

func TestImport_RefusesUnsafeOrBrokenTars(t *testing.T) {
	good := tarOf(t, dir("a/"), file("a/f", strings.Repeat("x", 5000)))

	tests := []struct {
		name   string
		input  []byte
		opts   ImportOptions
		reason string // must appear in the error
	}{
		{"absolute name", tarOf(t, file("/etc/passwd", "x")), ImportOptions{}, "absolute path"},
		{"dotdot name", tarOf(t, file("../evil", "x")), ImportOptions{}, `".." component`},
		{"dotdot inside name", tarOf(t, dir("a/"), file("a/../../evil", "x")), ImportOptions{}, `".." component`},
		{"dotdot that stays inside", tarOf(t, dir("a/"), file("a/../b", "x")), ImportOptions{}, `".." component`},
		{"hardlink absolute target", tarOf(t, hardlink("h", "/etc/shadow")), ImportOptions{}, "absolute"},
		{"hardlink dotdot target", tarOf(t, hardlink("h", "../x")), ImportOptions{}, "not a safe path"},
		{"hardlink to missing", tarOf(t, hardlink("h", "nothere")), ImportOptions{}, "does not exist"},
		{"hardlink to later entry", tarOf(t, hardlink("h", "f"), file("f", "x")), ImportOptions{}, "does not exist"},
		{"hardlink to directory", tarOf(t, dir("d/"), hardlink("h", "d")), ImportOptions{}, "is a directory"},
		{"symlink relative escape", tarOf(t, dir("a/"), symlink("a/l", "../../etc")), ImportOptions{}, "escapes the layer root"},
		{"symlink escape from top", tarOf(t, symlink("l", "..")), ImportOptions{}, "escapes the layer root"},
		{"symlink escape via detour", tarOf(t, dir("a/"), symlink("a/l", "b/../../../x")), ImportOptions{}, "escapes the layer root"},
		{"entry through absolute symlink", tarOf(t, symlink("etc", "/etc"), file("etc/passwd", "x")), ImportOptions{}, "is a symlink"},
		{"entry through inner symlink", tarOf(t, dir("d/"), symlink("l", "d"), file("l/x", "x")), ImportOptions{}, "is a symlink"},
		{"dir through symlink", tarOf(t, symlink("l", "/tmp"), dir("l/sub/")), ImportOptions{}, "is a symlink"},
		{"hardlink through symlink", tarOf(t, dir("d/"), file("d/f", "x"), symlink("l", "d"), hardlink("h", "l/f")), ImportOptions{}, "does not exist"},
		{"entry under a file", tarOf(t, file("f", "x"), file("f/g", "y")), ImportOptions{}, "not a directory"},
		{"file replacing a directory", tarOf(t, dir("d/"), file("d", "x")), ImportOptions{}, "replace a directory"},
		{"char device", tarOf(t, device("dev/null", tar.TypeChar, 1, 3)), ImportOptions{}, "device nodes"},
		{"block device", tarOf(t, device("dev/sda", tar.TypeBlock, 8, 0)), ImportOptions{}, "device nodes"},
		{"overlay whiteout", tarOf(t, device("gone", tar.TypeChar, 0, 0)), ImportOptions{}, "whiteouts"},
		{"symlink as root", tarOf(t, symlink("./", "/")), ImportOptions{}, "layer root"},
		{"truncated tar", good[:1024+2000], ImportOptions{}, "truncated or corrupt"},
		{"truncated gzip", gzipOf(t, good)[:60], ImportOptions{}, "truncated or corrupt"},
		{"garbage", bytes.Repeat([]byte("garbage!"), 200), ImportOptions{}, "truncated or corrupt"},
		{"corrupt gzip", append([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3}, bytes.Repeat([]byte{0xff}, 100)...), ImportOptions{}, "corrupt"},
		{"zstd", append([]byte{0x28, 0xb5, 0x2f, 0xfd}, good...), ImportOptions{}, "plain or gzip"},
		{"empty input", nil, ImportOptions{}, "empty input"},
		{"name too long", tarOf(t, file(strings.Repeat("n", 300), "x")), ImportOptions{}, "file name too long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestStore(t)
			_, err := s.Import(t.Context(), "img", bytes.NewReader(tt.input), tt.opts)
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("err = %v, want ErrInvalidArgument", err)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("err = %q, want it to say %q", err, tt.reason)
			}
			assertNothingImported(t, s)
		})
	}
}

func assertNothingImported(t *testing.T, s *Store) {
	t.Helper()
	imgs, err := s.Images()
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 0 {
		t.Errorf("images registered: %v", imgs)
	}
	if names := dirEntries(t, s.tmpDir); len(names) != 0 {
		t.Errorf("tmp not empty: %v", names)
	}
	if names := dirEntries(t, s.layersDir); len(names) != 0 {
		t.Errorf("layers not empty: %v", names)
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		if k, _ := layersBucket(tx).Cursor().First(); k != nil {
			t.Errorf("layer registered: %s", k)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestImport_DiffIDIsSHA256OfTheTar(t *testing.T) {
	s := newTestStore(t)
	tb := busyboxTar(t)
	img := mustImport(t, s, "busybox:latest", tb)
	if want := sha256Of(tb); img.DiffIDs[0] != want || len(img.DiffIDs) != 1 {
		t.Errorf("diffIDs = %v, want [%s]", img.DiffIDs, want)
	}
	if img.ChainID != img.DiffIDs[0] {
		t.Errorf("chainID = %s, want the single diffID %s", img.ChainID, img.DiffIDs[0])
	}
	if img.Size != int64(len(tb)) {
		t.Errorf("size = %d, want %d", img.Size, len(tb))
	}
	got, err := s.Image("busybox:latest")
	if err != nil {
		t.Fatal(err)
	}
	if got.ChainID != img.ChainID || !got.CreatedAt.Equal(img.CreatedAt) {
		t.Errorf("Image() = %+v, want %+v", got, img)
	}
	if names := dirEntries(t, s.tmpDir); len(names) != 0 {
		t.Errorf("tmp not empty after import: %v", names)
	}
}

func TestImport_TrailingPaddingIsHashed(t *testing.T) {
	// tar(1) pads to 10 KiB records; the diffID covers the whole stream.
	s := newTestStore(t)
	tb := tarOf(t, file("f", "x"))
	tb = append(tb, make([]byte, 10240-len(tb)%10240)...)
	img := mustImport(t, s, "padded", tb)
	if img.DiffIDs[0] != sha256Of(tb) {
		t.Errorf("diffID = %s, want %s", img.DiffIDs[0], sha256Of(tb))
	}
}

func TestImport_GzipGivesTheSameDiffIDAsPlain(t *testing.T) {
	s := newTestStore(t)
	tb := busyboxTar(t)
	plain := mustImport(t, s, "plain", tb)
	gz := mustImport(t, s, "gz", gzipOf(t, tb))
	if plain.DiffIDs[0] != gz.DiffIDs[0] || plain.ChainID != gz.ChainID {
		t.Errorf("gzip diffID %s, plain %s", gz.DiffIDs[0], plain.DiffIDs[0])
	}
}

func TestImport_SameTarTwiceSharesOneLayer(t *testing.T) {
	s := newTestStore(t)
	tb := busyboxTar(t)
	a := mustImport(t, s, "a", tb)
	mustImport(t, s, "b", tb)

	layers := dirEntries(t, s.layersDir)
	if len(layers) != 1 {
		t.Fatalf("layer dirs = %v, want exactly one", layers)
	}
	if rc := refcount(t, s, a.ChainID); rc != 2 {
		t.Errorf("refcount = %d, want 2", rc)
	}

	if err := s.RemoveImage("a"); err != nil {
		t.Fatal(err)
	}
	if got := dirEntries(t, s.layersDir); len(got) != 1 || got[0] != layers[0] {
		t.Errorf("after removing one image, layer dirs = %v, want %v", got, layers)
	}
	if rc := refcount(t, s, a.ChainID); rc != 1 {
		t.Errorf("refcount = %d, want 1", rc)
	}
	if err := s.RemoveImage("b"); err != nil {
		t.Fatal(err)
	}
	if got := dirEntries(t, s.layersDir); len(got) != 0 {
		t.Errorf("after removing both, layer dirs = %v, want none", got)
	}
	if rc := refcount(t, s, a.ChainID); rc != 0 {
		t.Errorf("layer record still there, refcount %d", rc)
	}
	if err := s.RemoveImage("b"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("second remove: %v, want ErrNotFound", err)
	}
}

func refcount(t *testing.T, s *Store, chainID string) int64 {
	t.Helper()
	var rec layerRecord
	err := s.db.View(func(tx *bolt.Tx) error {
		_, err := getJSON(layersBucket(tx), chainID, &rec)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return rec.Refcount
}

func TestImport_NameRules(t *testing.T) {
	s := newTestStore(t)
	tb := tarOf(t, file("f", "x"))
	for _, name := range []string{"", "-x", ".x", "a b", "a\nb", "é", "Upper", strings.Repeat("a", 600),
		"a@sha256:" + strings.Repeat("0", 64), strings.Repeat("ab", 32)} {
		if _, err := s.Import(t.Context(), name, bytes.NewReader(tb), ImportOptions{}); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("name %q: err = %v, want ErrInvalidArgument", name, err)
		}
	}
	for _, name := range []string{"a", "docker.io/library/busybox:1.36", "x_y-z.1", strings.Repeat("a", 128)} {
		mustImport(t, s, name, tb)
	}
	before := dirEntries(t, s.layersDir)
	// The same name in another spelling is the same name.
	for _, taken := range []string{"a", "a:latest", "docker.io/library/a"} {
		if _, err := s.Import(t.Context(), taken, bytes.NewReader(tb), ImportOptions{}); !errors.Is(err, errdefs.ErrAlreadyExists) {
			t.Errorf("taken name %s: err = %v, want ErrAlreadyExists", taken, err)
		}
	}
	if after := dirEntries(t, s.layersDir); len(after) != len(before) {
		t.Errorf("layer dirs %v -> %v after a refused import", before, after)
	}
	if names := dirEntries(t, s.tmpDir); len(names) != 0 {
		t.Errorf("tmp not empty: %v", names)
	}
	imgs, err := s.Images()
	if err != nil {
		t.Fatal(err)
	}
	// One tar, one flat config: one image with four names.
	if len(imgs) != 1 {
		t.Fatalf("Images() = %+v, want one image", imgs)
	}
	want := []string{"docker.io/library/a:latest", "docker.io/library/" + strings.Repeat("a", 128) + ":latest", "docker.io/library/busybox:1.36", "docker.io/library/x_y-z.1:latest"}
	if got := imgs[0].Names; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("names %v, want sorted %v", got, want)
	}
	for _, ref := range []string{"a", "a:latest", "busybox:1.36", imgs[0].ID, imgs[0].ID[7:19]} {
		if img, err := s.Image(ref); err != nil || img.ID != imgs[0].ID {
			t.Errorf("Image(%s) = %v, %v", ref, img.ID, err)
		}
	}
	if _, err := s.Image("nope"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Image(nope) = %v, want ErrNotFound", err)
	}
}

func TestImport_CanceledContextLeavesNothing(t *testing.T) {
	s := newTestStore(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := s.Import(ctx, "img", bytes.NewReader(busyboxTar(t)), ImportOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	assertNothingImported(t, s)
}

func TestImport_ReadErrorIsNotInvalidArgument(t *testing.T) {
	s := newTestStore(t)
	boom := errors.New("connection reset")
	r := ioMultiErr(bytes.NewReader(busyboxTar(t)[:4096]), boom)
	_, err := s.Import(t.Context(), "img", r, ImportOptions{})
	if !errors.Is(err, boom) || errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("err = %v, want the reader's error, not ErrInvalidArgument", err)
	}
	assertNothingImported(t, s)
}

// ioMultiErr yields r and then fails with err instead of io.EOF.
func ioMultiErr(r *bytes.Reader, err error) *errAfter { return &errAfter{r: r, err: err} }

type errAfter struct {
	r   *bytes.Reader
	err error
}

func (e *errAfter) Read(p []byte) (int, error) {
	if e.r.Len() == 0 {
		return 0, e.err
	}
	return e.r.Read(p)
}

func TestImport_PreservesMetadataAndAcceptsOddOrder(t *testing.T) {
	s := newTestStore(t)
	suid := file("usr/bin/su", "#!/bin/true\n")
	suid.hdr.Mode = 0o4755
	suid.hdr.Uid, suid.hdr.Gid = 0, 0
	owned := file("home/user/.profile", "PS1=x\n")
	owned.hdr.Uid, owned.hdr.Gid = 1000, 1001
	sticky := dir("./tmp/")
	sticky.hdr.Mode = 0o1777
	late := dir("late/") // after its child
	late.hdr.Mode = 0o750
	// cap_net_raw+ep as a VFS_CAP_REVISION_2 blob, plus an overlay xattr a
	// hostile tar might try to smuggle in.
	ping := file("bin/ping", "ping")
	ping.hdr.Mode = 0o755
	ping.hdr.PAXRecords = map[string]string{
		"SCHILY.xattr.security.capability":    string([]byte{1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}),
		"SCHILY.xattr.trusted.overlay.opaque": "y",
	}
	link := symlink("./bin/sh", "/bin/busybox")
	link.hdr.Uid, link.hdr.Gid = 7, 8
	tb := tarOf(t,
		dir("./"),
		suid,
		owned,
		sticky,
		file("late/child", "c"),
		late,
		file("./a/b/c/deep", "deep"), // parents never listed
		link,
		symlink("bin/ls", "busybox"),
		symlink("etc/up", "../bin"),
		file("data", "one"),
		hardlink("data.link", "./data"),
		fifo("run/fifo"),
		file("replaced", "old"),
		file("replaced", "new"),
		ping,
	)
	mustImport(t, s, "meta", tb)
	root := onlyLayerDir(t, s)

	check := func(rel string, wantMode os.FileMode) os.FileInfo {
		t.Helper()
		fi, err := os.Lstat(filepath.Join(root, rel))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != wantMode {
			t.Errorf("%s: mode %v, want %v", rel, fi.Mode(), wantMode)
		}
		return fi
	}
	fi := check("usr/bin/su", 0o755|os.ModeSetuid)
	if !fi.ModTime().Equal(testTime) {
		t.Errorf("su mtime = %v, want %v", fi.ModTime(), testTime)
	}
	check("tmp", os.ModeDir|os.ModeSticky|0o777)
	fi = check("late", os.ModeDir|0o750)
	if !fi.ModTime().Equal(testTime) {
		t.Errorf("late/ mtime = %v, want %v (set after its child)", fi.ModTime(), testTime)
	}
	check("a", os.ModeDir|0o755)
	check("a/b/c", os.ModeDir|0o755)
	check("bin/sh", os.ModeSymlink|0o777)
	check("run/fifo", os.ModeNamedPipe|0o620)
	if target, _ := os.Readlink(filepath.Join(root, "bin/sh")); target != "/bin/busybox" {
		t.Errorf("bin/sh -> %q", target)
	}
	if target, _ := os.Readlink(filepath.Join(root, "etc/up")); target != "../bin" {
		t.Errorf("etc/up -> %q", target)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "replaced")); string(b) != "new" {
		t.Errorf("replaced = %q, want the later entry", b)
	}
	a, _ := os.Stat(filepath.Join(root, "data"))
	b, _ := os.Stat(filepath.Join(root, "data.link"))
	if !os.SameFile(a, b) {
		t.Error("data.link is not a hardlink of data")
	}
	if os.Geteuid() == 0 {
		owner := func(rel string) (uint32, uint32) {
			fi, err := os.Lstat(filepath.Join(root, rel))
			if err != nil {
				t.Fatal(err)
			}
			st := fi.Sys().(*syscall.Stat_t)
			return st.Uid, st.Gid
		}
		if u, g := owner("home/user/.profile"); u != 1000 || g != 1001 {
			t.Errorf(".profile owned by %d:%d, want 1000:1001", u, g)
		}
		if u, g := owner("bin/sh"); u != 7 || g != 8 {
			t.Errorf("bin/sh (symlink itself) owned by %d:%d, want 7:8", u, g)
		}
		buf := make([]byte, 64)
		n, err := unix.Lgetxattr(filepath.Join(root, "bin/ping"), "security.capability", buf)
		if err != nil || n != 20 || buf[5] != 0x20 {
			t.Errorf("bin/ping capabilities = %x, %v; want cap_net_raw", buf[:max(n, 0)], err)
		}
		if _, err := unix.Lgetxattr(filepath.Join(root, "bin/ping"), "trusted.overlay.opaque", buf); !errors.Is(err, unix.ENODATA) {
			t.Errorf("trusted.overlay.opaque was applied (err %v)", err)
		}
	}
}

func onlyLayerDir(t *testing.T, s *Store) string {
	t.Helper()
	names := dirEntries(t, s.layersDir)
	if len(names) != 1 {
		t.Fatalf("layer dirs = %v, want one", names)
	}
	return filepath.Join(s.layersDir, names[0])
}

func TestOpen_RemovesInterruptedImportsAndOrphanLayers(t *testing.T) {
	s := newTestStore(t)
	mustImport(t, s, "kept", tarOf(t, file("f", "x")))
	kept := dirEntries(t, s.layersDir)

	// What a crash mid-import leaves: a tmp dir, and a renamed but never
	// registered layer dir.
	if err := os.MkdirAll(filepath.Join(s.tmpDir, "import-123", "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	orphan := filepath.Join(s.layersDir, "0123456789abcdef0123456789abcdef")
	if err := os.MkdirAll(filepath.Join(orphan, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}

	s2, err := Open(s.dir, s.db)
	if err != nil {
		t.Fatal(err)
	}
	if names := dirEntries(t, s2.tmpDir); len(names) != 0 {
		t.Errorf("tmp = %v, want empty", names)
	}
	if got := dirEntries(t, s2.layersDir); len(got) != 1 || got[0] != kept[0] {
		t.Errorf("layers = %v, want only the registered %v", got, kept)
	}
	if _, err := s2.Image("kept"); err != nil {
		t.Error(err)
	}
}
