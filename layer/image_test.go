package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"github.com/cairn-run/cairn/internal/errdefs"
	"github.com/cairn-run/cairn/internal/testenv"
)

func zstdOf(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// testImage is a multi-layer image for the store's tests: its layer blobs
// as an archive would carry them, and what they decompress to.
type testImage struct {
	blobs   [][]byte
	diffIDs []string
	config  []byte
	id      string
}

func newTestImage(t testing.TB, cmd string, tars ...[]byte) testImage {
	t.Helper()
	img := testImage{}
	for i, plain := range tars {
		blob := plain
		switch i % 3 {
		case 1:
			blob = gzipOf(t, plain)
		case 2:
			blob = zstdOf(t, plain)
		}
		img.blobs = append(img.blobs, blob)
		img.diffIDs = append(img.diffIDs, sha256Of(plain))
	}
	// Spaced and ending in a newline, as tools write them: the store keeps
	// the bytes exactly, since the id is their digest.
	img.config = fmt.Appendf(nil, "{\"architecture\": \"amd64\", \"os\": \"linux\", \"config\": {\"Cmd\": [%q]}, \"rootfs\": {\"type\": \"layers\", \"diff_ids\": [\"%s\"]}}\n", cmd, strings.Join(img.diffIDs, `","`))
	img.id = ConfigID(img.config)
	return img
}

// load stages, installs and registers img under names, as the journaled
// driver does (without the journal), and returns what was registered.
func load(t testing.TB, s *Store, img testImage, names ...string) Registration {
	t.Helper()
	reg, err := tryLoad(t.Context(), s, img, names...)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return reg
}

func tryLoad(ctx context.Context, s *Store, img testImage, names ...string) (Registration, error) {
	st, err := s.NewStaging(ImportOptions{ReserveBytes: -1})
	if err != nil {
		return Registration{}, err
	}
	defer st.Close()
	chain := ChainIDs(img.diffIDs)
	var staged []StagedLayer
	for i, blob := range img.blobs {
		l, err := st.Layer(ctx, bytes.NewReader(blob), LayerSource{ChainID: chain[i], Digest: sha256Of(blob), Size: int64(len(blob)), DiffID: img.diffIDs[i]})
		if err != nil {
			return Registration{}, err
		}
		staged = append(staged, l)
	}
	if err := s.InstallLayers(staged); err != nil {
		return Registration{}, err
	}
	var reg Registration
	if err := s.update(s.RegisterImage(NewImage{ID: img.id, Config: img.config, DiffIDs: img.diffIDs, Names: names, Staged: staged}, &reg)); err != nil {
		_ = s.RemoveUnregisteredLayers(cacheIDsOf(staged))
		return reg, err
	}
	return reg, s.RemoveFreedLayers(append(reg.Unused, reg.Freed...))
}

func cacheIDsOf(ls []StagedLayer) []string {
	var ids []string
	for _, l := range ls {
		ids = append(ids, l.CacheID)
	}
	return ids
}

func checkStore(t testing.TB, s *Store) {
	t.Helper()
	if err := s.db.View(CheckTx); err != nil {
		t.Fatalf("store invariants: %v", err)
	}
	// Every directory in layers/ is registered: no orphan survives a call.
	referenced := map[string]bool{}
	st, err := s.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range st {
		referenced[l.CacheID] = true
	}
	for _, name := range dirEntries(t, s.layersDir) {
		if !referenced[name] {
			t.Errorf("layers/%s is on disk but no layer record names it", name)
		}
	}
	if left := dirEntries(t, s.tmpDir); len(left) > 0 {
		t.Errorf("tmp/ holds %v", left)
	}
}

var (
	baseLayer = func(t testing.TB) []byte {
		return tarOf(t, dir("etc/"), file("etc/keep", "keep"), file("etc/gone", "gone"), dir("data/"), file("data/old", "old"), dir("tmp/"),
			hardlink("tmp/keep-link", "etc/keep"))
	}
	// upperLayer deletes etc/gone and everything below data/ and adds
	// data/new.
	upperLayer = func(t testing.TB) []byte {
		return tarOf(t, dir("etc/"), file("etc/.wh.gone", ""), dir("data/"), file("data/.wh..wh..opq", ""), file("data/new", "new"))
	}
)

func TestLayers_MultiLayerImagesShareLayersByChainID(t *testing.T) {
	testenv.RequireRoot(t)
	s := newTestStore(t)
	a := newTestImage(t, "a", baseLayer(t), upperLayer(t), tarOf(t, file("a", "only in a")))
	b := newTestImage(t, "b", baseLayer(t), upperLayer(t), tarOf(t, file("b", "only in b")))
	load(t, s, a, "docker.io/library/a:latest")
	checkStore(t, s)
	reg := load(t, s, b, "docker.io/library/b:latest")
	if len(reg.Used) != 1 || len(reg.Unused) != 2 {
		// The test loads every layer; the driver stages only the missing ones.
		t.Errorf("b registered %d new layers and discarded %d, want 1 and 2", len(reg.Used), len(reg.Unused))
	}
	checkStore(t, s)
	chainA, chainB := ChainIDs(a.diffIDs), ChainIDs(b.diffIDs)
	if chainA[1] != chainB[1] || chainA[2] == chainB[2] {
		t.Fatal("chain ids")
	}
	if n := refcount(t, s, chainA[1]); n != 2 {
		t.Errorf("the shared layer has refcount %d, want 2 (two child layers)", n)
	}
	if ls, _ := s.Layers(); len(ls) != 4 {
		t.Errorf("%d layers stored, want 4 (two shared, one each)", len(ls))
	}
	if err := s.RemoveImage("a"); err != nil {
		t.Fatal(err)
	}
	checkStore(t, s)
	if ls, _ := s.Layers(); len(ls) != 3 {
		t.Errorf("%d layers after removing a, want b's 3", len(ls))
	}
	img, err := s.Image("b")
	if err != nil || img.ID != b.id || string(img.Config) != string(b.config) || len(img.DiffIDs) != 3 {
		t.Fatalf("b after removing a: %+v %v", img, err)
	}
	if err := s.RemoveImage(b.id); err != nil {
		t.Fatal(err)
	}
	checkStore(t, s)
	if ls, _ := s.Layers(); len(ls) != 0 || len(dirEntries(t, s.layersDir)) != 0 {
		t.Errorf("layers left after removing both: %v", ls)
	}
}

func TestLayers_WhiteoutsHideLowerFilesInTheMount(t *testing.T) {
	testenv.RequireRoot(t)
	s := newTestStore(t)
	img := newTestImage(t, "w", baseLayer(t), upperLayer(t))
	load(t, s, img, "docker.io/library/w:latest")
	// The upper layer holds overlay whiteouts, not OCI ones.
	var layerDirs []string
	_ = s.db.View(func(tx *bolt.Tx) error {
		var err error
		layerDirs, err = s.layerDirs(tx, ChainIDs(img.diffIDs)[1])
		return err
	})
	upper := layerDirs[0]
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(upper, "etc/gone"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Fatalf("etc/gone in the upper layer: mode %o rdev %d, %v; want a character device 0/0", st.Mode, st.Rdev, err)
	}
	if _, err := os.Lstat(filepath.Join(upper, "etc/.wh.gone")); !os.IsNotExist(err) {
		t.Fatal("the OCI whiteout file is in the layer")
	}
	buf := make([]byte, 8)
	if n, err := unix.Lgetxattr(filepath.Join(upper, "data"), opaqueXattr, buf); err != nil || string(buf[:n]) != "y" {
		t.Fatalf("data/ opaque xattr: %q %v", buf[:n], err)
	}
	if _, err := s.CreateMount(t.Context(), mountID(1), "w", InitConfig{Hostname: "w"}); err != nil {
		t.Fatal(err)
	}
	rootfs, err := s.Mount(mountID(1))
	if err != nil {
		t.Fatal(err)
	}
	// A hardlink across the tar is one file with two names.
	var a, b unix.Stat_t
	if err := unix.Lstat(filepath.Join(rootfs, "etc/keep"), &a); err != nil {
		t.Fatal(err)
	}
	if err := unix.Lstat(filepath.Join(rootfs, "tmp/keep-link"), &b); err != nil || a.Ino != b.Ino || a.Nlink != 2 {
		t.Fatalf("hardlink: inodes %d %d, links %d, %v", a.Ino, b.Ino, a.Nlink, err)
	}
	for path, want := range map[string]string{"etc/keep": "keep", "data/new": "new", "etc/gone": "", "data/old": ""} {
		data, err := os.ReadFile(filepath.Join(rootfs, path))
		switch {
		case want == "" && !os.IsNotExist(err):
			t.Errorf("%s is visible in the container (%q, %v): its whiteout did not hide it", path, data, err)
		case want != "" && string(data) != want:
			t.Errorf("%s = %q, %v; want %q", path, data, err, want)
		}
	}
}

func TestLayers_WhiteoutRefusals(t *testing.T) {
	testenv.RequireRoot(t)
	s := newTestStore(t)
	for name, layer := range map[string][]byte{
		"whiteout of a file of the same layer": tarOf(t, file("x", "x"), file(".wh.x", "")),
		"empty whiteout":                       tarOf(t, file(".wh.", "")),
		"dot-dot whiteout":                     tarOf(t, dir("a/"), file("a/.wh...", "")),
		"whiteout directory":                   tarOf(t, dir(".wh.x/")),
		"whiteout under a file":                tarOf(t, file("f", "f"), file("f/.wh.x", "")),
		"device node":                          tarOf(t, device("dev/null", tar.TypeChar, 1, 3)),
		"char 0/0 as a whiteout":               tarOf(t, device("x", tar.TypeChar, 0, 0)),
	} {
		img := newTestImage(t, name, layer)
		if _, err := tryLoad(t.Context(), s, img, "docker.io/library/x:latest"); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: %v, want ErrInvalidArgument", name, err)
		}
		checkStore(t, s)
	}
	// aufs bookkeeping is skipped, as Docker does.
	img := newTestImage(t, "aufs", tarOf(t, file(".wh..wh.plnk", ""), file("kept", "k")))
	load(t, s, img)
	checkStore(t, s)
}

func TestLayers_FlatImportKeepsWhiteoutNamesAsFiles(t *testing.T) {
	s := newTestStore(t)
	img := mustImport(t, s, "flat", tarOf(t, file(".wh.x", "literal")))
	var dirs []string
	_ = s.db.View(func(tx *bolt.Tx) error { dirs, _ = s.layerDirs(tx, img.ChainID); return nil })
	if got := readFile(t, filepath.Join(dirs[0], ".wh.x")); got != "literal" {
		t.Fatalf(".wh.x = %q", got)
	}
}

func TestLayers_BlobsAreCheckedAgainstTheManifestAndConfig(t *testing.T) {
	testenv.RequireRoot(t)
	s := newTestStore(t)
	good := newTestImage(t, "g", baseLayer(t), upperLayer(t))
	chain := ChainIDs(good.diffIDs)
	st, err := s.NewStaging(ImportOptions{ReserveBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	blob := good.blobs[1]
	for name, src := range map[string]LayerSource{
		"wrong digest": {ChainID: chain[1], Digest: sha256Of([]byte("other")), Size: int64(len(blob)), DiffID: good.diffIDs[1]},
		"wrong size":   {ChainID: chain[1], Digest: sha256Of(blob), Size: int64(len(blob)) + 1, DiffID: good.diffIDs[1]},
		"wrong diffID": {ChainID: chain[1], Digest: sha256Of(blob), Size: int64(len(blob)), DiffID: good.diffIDs[0]},
		"bad digest":   {ChainID: chain[1], Digest: "md5:abc", Size: -1, DiffID: good.diffIDs[1]},
	} {
		if _, err := st.Layer(t.Context(), bytes.NewReader(blob), src); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: %v, want ErrInvalidArgument", name, err)
		}
	}
	if left := dirEntries(t, st.Dir()); len(left) != 0 {
		t.Errorf("refused layers left %v in the staging dir", left)
	}
	// Trailing bytes after the compressed stream change the digest, and
	// garbage after it is refused.
	if _, err := st.Layer(t.Context(), bytes.NewReader(append(slices.Clone(blob), "junk"...)), LayerSource{ChainID: chain[1], Digest: sha256Of(blob), Size: -1, DiffID: good.diffIDs[1]}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("trailing junk: %v", err)
	}
	// A registration whose staged layer is missing registers nothing.
	var reg Registration
	err = s.update(s.RegisterImage(NewImage{ID: good.id, Config: good.config, DiffIDs: good.diffIDs, Names: []string{"docker.io/library/g:latest"}}, &reg))
	if !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("registration without its layers: %v", err)
	}
	err = s.update(s.RegisterImage(NewImage{ID: good.id, Config: []byte("{}"), DiffIDs: good.diffIDs}, &reg))
	if !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("an id that is not the config's digest: %v", err)
	}
	st.Close()
	checkStore(t, s)
}

func TestLayers_NamesMoveLikeDockerTags(t *testing.T) {
	testenv.RequireRoot(t)
	s := newTestStore(t)
	old := newTestImage(t, "old", baseLayer(t))
	cur := newTestImage(t, "new", baseLayer(t), tarOf(t, file("n", "n")))
	load(t, s, old, "docker.io/library/app:latest")
	load(t, s, cur, "docker.io/library/app:latest", "docker.io/library/app:2")
	checkStore(t, s)
	// The name moved; the old image stays, dangling, under its id.
	img, err := s.Image("app")
	if err != nil || img.ID != cur.id {
		t.Fatalf("app is %v, %v; want the new image", img.ID, err)
	}
	dangling, err := s.ImageByID(old.id)
	if err != nil || len(dangling.Names) != 0 || dangling.Name != old.id {
		t.Fatalf("old image: %+v %v", dangling, err)
	}
	// Tagging the dangling image names it again, and its id key goes.
	var reg Registration
	if err := s.update(s.TagOp(old.id, "docker.io/library/old:1", &reg)); err != nil {
		t.Fatal(err)
	}
	checkStore(t, s)
	if img, _ := s.ImageByID(old.id); strings.Join(img.Names, ",") != "docker.io/library/old:1" {
		t.Fatalf("names after tag: %v", img.Names)
	}
	// An id of an image with two names is refused; names are removed one by
	// one, the last deletes.
	if err := s.RemoveImage(cur.id); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("rm by id of an image with two names: %v", err)
	}
	if err := s.RemoveImage("app:2"); err != nil {
		t.Fatal(err)
	}
	if img, _ := s.ImageByID(cur.id); strings.Join(img.Names, ",") != "docker.io/library/app:latest" {
		t.Fatalf("names after untag: %v", img.Names)
	}
	if err := s.RemoveImage("app"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ImageByID(cur.id); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("image after removing its last name: %v", err)
	}
	checkStore(t, s)
}

func TestLayers_DeleteRefusedWhileAMountUsesTheImageButUntagIsNot(t *testing.T) {
	testenv.RequireRoot(t)
	s := newTestStore(t)
	img := newTestImage(t, "m", baseLayer(t))
	load(t, s, img, "docker.io/library/m:latest", "docker.io/library/m:other")
	if _, err := s.CreateMount(t.Context(), mountID(7), "m", InitConfig{Hostname: "m"}); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveImage("m:other"); err != nil {
		t.Fatalf("untag of an image in use: %v", err)
	}
	if err := s.RemoveImage("m"); !errors.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), mountID(7)) {
		t.Fatalf("delete of an image in use: %v", err)
	}
	if err := s.RemoveMount(mountID(7)); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveImage("m"); err != nil {
		t.Fatal(err)
	}
	checkStore(t, s)
}

func TestLayers_AHundredAndTwentyLayersMount(t *testing.T) {
	testenv.RequireRoot(t)
	s := newTestStore(t)
	var tars [][]byte
	for i := range 120 {
		tars = append(tars, tarOf(t, file(fmt.Sprintf("layer-%03d", i), fmt.Sprint(i))))
	}
	img := newTestImage(t, "many", tars...)
	load(t, s, img, "docker.io/library/many:latest")
	m, err := s.CreateMount(t.Context(), mountID(3), "many", InitConfig{Hostname: "many"})
	if err != nil {
		t.Fatal(err)
	}
	if len(overlayOptions(m)) < os.Getpagesize() {
		t.Fatalf("the overlay options fit a page (%d bytes): the test does not test the long path", len(overlayOptions(m)))
	}
	rootfs, err := s.Mount(mountID(3))
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 57, 119} {
		if got := readFile(t, filepath.Join(rootfs, fmt.Sprintf("layer-%03d", i))); got != fmt.Sprint(i) {
			t.Errorf("layer %d: %q", i, got)
		}
	}
	if ok, err := s.Mounted(mountID(3)); !ok || err != nil {
		t.Fatalf("Mounted = %v %v", ok, err)
	}
	if err := s.Unmount(mountID(3)); err != nil {
		t.Fatal(err)
	}
}
