package daemon_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/internal/apiclient"
	"github.com/cairn-run/cairn/internal/busybox"
	"github.com/cairn-run/cairn/internal/testenv"
	"github.com/cairn-run/cairn/internal/testenv/scratch"
)

const multi = "docker.io/" + testenv.MultiImage

func loadFile(t testing.TB, e *scratch.Env, path string) []*cairnv1.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	imgs, err := apiclient.LoadImage(bg, e.Images, f)
	if err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	return imgs
}

func loadBytes(e *scratch.Env, data []byte) ([]*cairnv1.Image, error) {
	return apiclient.LoadImage(bg, e.Images, bytes.NewReader(data))
}

// runOutput runs req attached (cairn run) and returns the output and code.
func runOutput(t testing.TB, e *scratch.Env, req *cairnv1.CreateRequest) (string, int32, error) {
	t.Helper()
	stream, err := e.Containers.Run(bg, connect.NewRequest(&cairnv1.RunRequest{Create: req}))
	if err != nil {
		return "", 0, err
	}
	defer stream.Close()
	var out strings.Builder
	code := int32(-1)
	for stream.Receive() {
		out.Write(entriesData(stream.Msg().Entries))
		if x := stream.Msg().Exit; x != nil && x.ExitCode != nil {
			code = *x.ExitCode
		}
	}
	return out.String(), code, stream.Err()
}

// storeOnDisk lists the layer directories and scratch files of the
// daemon's layer store.
func storeOnDisk(t testing.TB, e *scratch.Env) (layers, tmp []string) {
	t.Helper()
	read := func(d string) []string {
		es, err := os.ReadDir(filepath.Join(e.Config.Root, "layer", d))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		var names []string
		for _, x := range es {
			names = append(names, x.Name())
		}
		return names
	}
	return read("layers"), read("tmp")
}

// assertStoreWhole checks that every layer directory on disk belongs to a
// chain an image lists (each chain position stored once) and that no
// scratch file is left.
func assertStoreWhole(t testing.TB, e *scratch.Env) {
	t.Helper()
	res, err := e.Images.List(bg, connect.NewRequest(&cairnv1.ImageServiceListRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	chains := map[string]bool{}
	for _, img := range res.Msg.Images {
		for i := range img.DiffIds {
			chains[strings.Join(img.DiffIds[:i+1], " ")] = true
		}
	}
	layers, tmp := storeOnDisk(t, e)
	if len(layers) != len(chains) {
		t.Errorf("%d layer directories on disk, the images' chains have %d positions", len(layers), len(chains))
	}
	if len(tmp) != 0 {
		t.Errorf("scratch files left in tmp/: %v", tmp)
	}
	// Each layer's kept blob sits beside it, none without its layer.
	blobs, err := os.ReadDir(filepath.Join(e.Config.Root, "layer", "blobs"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	for _, b := range blobs {
		if !slices.Contains(layers, b.Name()) {
			t.Errorf("blob %s has no layer directory", b.Name())
		}
	}
}

func TestImages_RealArchivesLoadAndTheirConfigIsHonoured(t *testing.T) {
	ti := testenv.Images(t)
	e := scratch.NewDaemon(t)
	// The umoci layout (base + multi) first: its base layer is busybox, as
	// the flat busybox image is, but a layer is keyed by its chain, so
	// equal content in one position is stored once.
	imgs := loadFile(t, e, ti.LayoutTar)
	if len(imgs) != 2 {
		t.Fatalf("the layout held %d images", len(imgs))
	}
	layersBefore, _ := storeOnDisk(t, e)
	for _, p := range []string{ti.OCIArchive, ti.DockerArchive, ti.ZstdLayoutTar} {
		got := loadFile(t, e, p)
		if len(got) != 1 || !slices.Contains(got[0].Names, multi) {
			t.Fatalf("%s: %+v", p, got)
		}
	}
	// The directory form, as `cairn image load -i DIR` sends it.
	if _, err := loadBytes(e, testenv.TarDir(t, ti.Layout)); err != nil {
		t.Fatal(err)
	}
	if layers, _ := storeOnDisk(t, e); len(layers) < len(layersBefore) {
		t.Fatalf("layers went from %d to %d", len(layersBefore), len(layers))
	}
	assertStoreWhole(t, e)

	// No command: the image's entrypoint and cmd, env, workdir (created),
	// user (resolved in the image's /etc/passwd, with its groups).
	out, code, err := runOutput(t, e, &cairnv1.CreateRequest{Image: "cairn-test/multi:v1", AutoRemove: true})
	if err != nil || code != 0 || strings.TrimSpace(out) != "multi hello from /work/dir as 1000:1000" {
		t.Fatalf("run of the image's cmd: %q code %d %v", out, code, err)
	}
	// The whiteout deleted /bin/vi; the opaque /etc/cairn hides a and b.
	out, code, _ = runOutput(t, e, &cairnv1.CreateRequest{Image: multi, AutoRemove: true, User: "0",
		Command: []string{"ls /bin/vi /etc/cairn/a /etc/cairn/b 2>&1; cat /etc/cairn/c; id -G app"}})
	if code != 0 || !strings.Contains(out, "/bin/vi: No such file") || !strings.Contains(out, "/etc/cairn/a: No such file") ||
		!strings.Contains(out, "/etc/cairn/b: No such file") || !strings.Contains(out, "c\n") || !strings.Contains(out, "1000 2000") {
		t.Fatalf("whiteouts: %q code %d", out, code)
	}
	// -e merges, -w and -u override, --entrypoint replaces (and drops cmd).
	out, code, _ = runOutput(t, e, &cairnv1.CreateRequest{Image: multi, AutoRemove: true, Env: []string{"GREETING=bonjour"},
		WorkingDir: "/made/here", User: "0:2000"})
	if code != 0 || strings.TrimSpace(out) != "multi bonjour from /made/here as 0:2000" {
		t.Fatalf("overrides: %q code %d", out, code)
	}
	out, code, _ = runOutput(t, e, &cairnv1.CreateRequest{Image: multi, AutoRemove: true, OverrideEntrypoint: true, Entrypoint: []string{"echo"}, Command: []string{"replaced"}})
	if code != 0 || strings.TrimSpace(out) != "replaced" {
		t.Fatalf("--entrypoint: %q code %d", out, code)
	}
	// An unknown user is the client's mistake.
	_, _, err = runOutput(t, e, &cairnv1.CreateRequest{Image: multi, AutoRemove: true, User: "nobody-here"})
	if codeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "nobody-here") {
		t.Fatalf("unknown user: %v", err)
	}

	// The container's view records the image and its config; stop sends
	// the image's stop signal.
	res, err := e.Containers.Create(bg, connect.NewRequest(&cairnv1.CreateRequest{Image: multi, User: "0",
		Command: []string{`trap "exit 7" USR1; echo ready; while true; do sleep 0.05; done`}}))
	if err != nil {
		t.Fatal(err)
	}
	c := res.Msg.Container
	if c.ImageId != imgs[0].Id && c.ImageId != imgs[1].Id || c.Config == nil || c.Config.StopSignal != "SIGUSR1" ||
		!slices.Equal(c.Config.ExposedPorts, []string{testenv.MultiPort}) || !slices.Equal(c.Config.Volumes, []string{testenv.MultiVolume}) ||
		c.Config.Labels["org.cairn.test"] != "multi" || c.Config.WorkingDir != testenv.MultiWorkdir {
		t.Fatalf("container view: image %s config %+v", c.ImageId, c.Config)
	}
	start(t, e, c.Id)
	if err := untilLogged(bg, e, c.Id, "ready"); err != nil {
		t.Fatal(err)
	}
	if got := stop(t, e, c.Id, 10); got.ExitCode == nil || *got.ExitCode != 7 {
		t.Fatalf("stop: exit %v, want 7 from the image's SIGUSR1 trap", got.ExitCode)
	}
	// The image is in use: deleting it is refused, its other layout image
	// stays, and removing the container frees it.
	if _, err := e.Images.Remove(bg, connect.NewRequest(&cairnv1.ImageServiceRemoveRequest{Name: multi})); codeOf(err) != connect.CodeFailedPrecondition ||
		!strings.Contains(err.Error(), c.Id[:12]) {
		t.Fatalf("rm of an image a container uses: %v, want FailedPrecondition naming %s", err, c.Id[:12])
	}
	remove(t, e, c.Id, false)
	if _, err := e.Images.Remove(bg, connect.NewRequest(&cairnv1.ImageServiceRemoveRequest{Name: multi})); err != nil {
		t.Fatal(err)
	}
	assertStoreWhole(t, e)
	out, code, _ = runOutput(t, e, &cairnv1.CreateRequest{Image: "cairn-test/base:v1", AutoRemove: true, Command: []string{"echo", "base still runs"}})
	if code != 0 || !strings.Contains(out, "base still runs") {
		t.Fatalf("the image sharing the deleted one's layer: %q %d", out, code)
	}
	checkJournalOffline(t, e)
}

func TestImages_TagMovesANameRmUntagsThenDeletesPruneTakesDangling(t *testing.T) {
	e := scratch.NewDaemon(t)
	var a, b bytes.Buffer
	if err := busybox.WriteArchive(&a, busybox.DefaultPath, "app:1", []string{"echo", "a"}, busybox.LayerTar(busybox.File{Name: "a", Body: "a"})); err != nil {
		t.Fatal(err)
	}
	if err := busybox.WriteArchive(&b, busybox.DefaultPath, "app:1", []string{"echo", "b"}, busybox.LayerTar(busybox.File{Name: "b", Body: "b"})); err != nil {
		t.Fatal(err)
	}
	first, err := loadBytes(e, a.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Images.Tag(bg, connect.NewRequest(&cairnv1.ImageServiceTagRequest{Source: "app:1", Target: "app:keep"})); err != nil {
		t.Fatal(err)
	}
	// Loading b moves app:1 to it; a keeps app:keep.
	if _, err := loadBytes(e, b.Bytes()); err != nil {
		t.Fatal(err)
	}
	got, err := e.Images.Get(bg, connect.NewRequest(&cairnv1.ImageServiceGetRequest{Ref: first[0].Id}))
	if err != nil || !slices.Equal(got.Msg.Image.Names, []string{"docker.io/library/app:keep"}) {
		t.Fatalf("a after b took app:1: %v %v", got, err)
	}
	rm := func(ref string) (*cairnv1.ImageServiceRemoveResponse, error) {
		res, err := e.Images.Remove(bg, connect.NewRequest(&cairnv1.ImageServiceRemoveRequest{Name: ref}))
		if err != nil {
			return nil, err
		}
		return res.Msg, nil
	}
	// The last name deletes the image; its busybox layer stays (busybox and
	// b use it), its own layer goes.
	layersBefore, _ := storeOnDisk(t, e)
	res, err := rm("app:keep")
	if err != nil || res.Deleted != first[0].Id {
		t.Fatalf("rm of the last name: %+v %v", res, err)
	}
	if layers, _ := storeOnDisk(t, e); len(layers) != len(layersBefore)-1 {
		t.Fatalf("layers %d -> %d after deleting an image with one layer of its own", len(layersBefore), len(layers))
	}
	// Tag, untag, and prune of a dangling image.
	if _, err := e.Images.Tag(bg, connect.NewRequest(&cairnv1.ImageServiceTagRequest{Source: "app:1", Target: "other"})); err != nil {
		t.Fatal(err)
	}
	if res, err := rm("app"); codeOf(err) != connect.CodeNotFound {
		t.Fatalf("rm of app:latest, which no image has: %+v %v", res, err)
	}
	if res, err := rm("other:latest"); err != nil || res.Deleted != "" || !slices.Equal(res.Untagged, []string{"docker.io/library/other:latest"}) {
		t.Fatalf("untag: %+v %v", res, err)
	}
	if _, err := loadBytes(e, a.Bytes()); err != nil { // a again, taking app:1 back: b dangles
		t.Fatal(err)
	}
	pruned, err := e.Images.Prune(bg, connect.NewRequest(&cairnv1.ImageServicePruneRequest{}))
	if err != nil || len(pruned.Msg.Deleted) != 1 {
		t.Fatalf("prune: %v %v", pruned, err)
	}
	assertStoreWhole(t, e)
	// Every step is in the journal, of object kind image.
	stream, err := e.Journal.History(bg, connect.NewRequest(&cairnv1.HistoryRequest{Object: "image"}))
	if err != nil {
		t.Fatal(err)
	}
	var events []string
	for stream.Receive() {
		for _, r := range stream.Msg().Records {
			if r.Kind == cairnv1.RecordKind_RECORD_KIND_DONE {
				events = append(events, r.Event)
			}
			if r.Object != "image" || !strings.HasPrefix(r.ObjectId, "sha256:") || r.ContainerId != "" {
				t.Errorf("record %+v", r)
			}
		}
	}
	if want := "import,load,tag,load,delete,tag,untag,load,delete"; strings.Join(events, ",") != want {
		t.Fatalf("image events %v, want %s", events, want)
	}
}

func TestImages_HostileArchivesChangeNothing(t *testing.T) {
	e := scratch.NewDaemon(t)
	var good bytes.Buffer
	extra := busybox.LayerTar(busybox.File{Name: "x", Body: "x"})
	if err := busybox.WriteArchive(&good, busybox.DefaultPath, "good:1", []string{"true"}, extra); err != nil {
		t.Fatal(err)
	}
	layersBefore, _ := storeOnDisk(t, e)
	var seqBefore uint64
	_ = walkHistory(t, e, func(r *cairnv1.JournalRecord) { seqBefore = r.Seq })
	// A layer replaced by another, in a docker save archive: its diffID does
	// not match the config's.
	tampered := replaceInArchive(t, good.Bytes(), extra, busybox.LayerTar(busybox.File{Name: "x", Body: "y"}))
	for name, data := range map[string][]byte{
		"a diffID that does not match": tampered,
		"an escaping path":             tarOfFiles(t, map[string]string{"../manifest.json": "[]"}),
		"a rootfs tar":                 tarOfFiles(t, map[string]string{"bin/sh": "x"}),
		"truncated":                    good.Bytes()[:good.Len()/2],
	} {
		if _, err := loadBytes(e, data); codeOf(err) != connect.CodeInvalidArgument {
			t.Errorf("%s: %v, want InvalidArgument", name, err)
		}
	}
	if layers, tmp := storeOnDisk(t, e); len(layers) != len(layersBefore) || len(tmp) != 0 {
		t.Fatalf("refused loads left layers %v (before %v), tmp %v", layers, layersBefore, tmp)
	}
	// A refused archive is read and checked before any intent: not even a
	// record. (The diffID mismatch too: layers are verified while staged.)
	_ = walkHistory(t, e, func(r *cairnv1.JournalRecord) {
		if r.Seq > seqBefore {
			t.Errorf("a refused load wrote record %d: %s %s", r.Seq, r.Kind, r.Event)
		}
	})
	if imgs := imageNames(t, e); len(imgs) != 1 {
		t.Fatalf("images after refused loads: %v", imgs)
	}
}

func walkHistory(t testing.TB, e *scratch.Env, fn func(*cairnv1.JournalRecord)) error {
	t.Helper()
	stream, err := e.Journal.History(bg, connect.NewRequest(&cairnv1.HistoryRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	for stream.Receive() {
		for _, r := range stream.Msg().Records {
			fn(r)
		}
	}
	return stream.Err()
}

// replaceInArchive rewrites a docker save archive with the layer whose
// uncompressed content is old replaced by new (gzip, as it was), leaving
// the config's diffIDs as they were.
func replaceInArchive(t testing.TB, archive, old, new []byte) []byte {
	t.Helper()
	files := readTar(t, archive)
	var out []tarFile
	replaced := false
	for _, f := range files {
		if plain, err := gunzip(f.body); err == nil && bytes.Equal(plain, old) {
			f.body = gzipBytes(t, new)
			replaced = true
		}
		out = append(out, f)
	}
	if !replaced {
		t.Fatal("the layer to replace is not in the archive")
	}
	return writeTar(t, out)
}

func tarOfFiles(t testing.TB, files map[string]string) []byte {
	t.Helper()
	var out []tarFile
	for name, body := range files {
		out = append(out, tarFile{name: name, body: []byte(body)})
	}
	return writeTar(t, out)
}

func TestImages_AHundredAndTwentyLayerImageRuns(t *testing.T) {
	e := scratch.NewDaemon(t)
	var layers [][]byte
	for i := range 119 {
		layers = append(layers, busybox.LayerTar(busybox.File{Name: fmt.Sprintf("layers/%03d", i), Body: fmt.Sprint(i)}))
	}
	var buf bytes.Buffer
	if err := busybox.WriteArchive(&buf, busybox.DefaultPath, "tall:1", []string{"sh", "-c", "ls /layers | wc -l; cat /layers/118"}, layers...); err != nil {
		t.Fatal(err)
	}
	imgs, err := loadBytes(e, buf.Bytes())
	if err != nil || len(imgs[0].DiffIds) != 120 {
		t.Fatalf("load: %v %v", imgs, err)
	}
	start := time.Now()
	out, code, err := runOutput(t, e, &cairnv1.CreateRequest{Image: "tall:1", AutoRemove: true})
	if err != nil || code != 0 || strings.Fields(out)[0] != "119" || strings.Fields(out)[1] != "118" {
		t.Fatalf("run on 120 layers: %q code %d %v", out, code, err)
	}
	t.Logf("run --rm on 120 layers took %v", time.Since(start))
}

type tarFile struct {
	name string
	body []byte
}

func readTar(t testing.TB, data []byte) []tarFile {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(data))
	var out []tarFile
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tarFile{name: h.Name, body: body})
	}
}

func writeTar(t testing.TB, files []tarFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(f.body))}); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write(f.body)
	}
	_ = tw.Close()
	return buf.Bytes()
}

func gunzip(b []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}

func gzipBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return buf.Bytes()
}
