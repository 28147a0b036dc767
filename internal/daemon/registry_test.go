package daemon_test

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/internal/apiclient"
	"github.com/cairn-run/cairn/internal/testenv"
	"github.com/cairn-run/cairn/internal/testenv/scratch"
)

func pull(e *scratch.Env, ref string, auth *cairnv1.RegistryAuth) (*cairnv1.Image, []*cairnv1.LayerProgress, error) {
	var steps []*cairnv1.LayerProgress
	img, err := apiclient.PullImage(bg, e.Images, &cairnv1.ImageServicePullRequest{Ref: ref, Auth: auth}, func(p *cairnv1.LayerProgress) { steps = append(steps, p) })
	return img, steps, err
}

func push(e *scratch.Env, ref string, auth *cairnv1.RegistryAuth) (string, error) {
	return apiclient.PushImage(bg, e.Images, &cairnv1.ImageServicePushRequest{Ref: ref, Auth: auth}, nil)
}

func imageRecords(t testing.TB, e *scratch.Env) int {
	t.Helper()
	n := 0
	if err := walkHistory(t, e, func(r *cairnv1.JournalRecord) {
		if r.Object == "image" {
			n++
		}
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

func statuses(steps []*cairnv1.LayerProgress, status string) []string {
	var out []string
	for _, s := range steps {
		if s.Status == status && !slices.Contains(out, s.Digest) {
			out = append(out, s.Digest)
		}
	}
	return out
}

func TestRegistry_PushThenPullWithBasicAuthKeepsTheImageID(t *testing.T) {
	ti := testenv.Images(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{BasicAuth: true})
	e := scratch.NewDaemon(t)
	loaded := loadFile(t, e, ti.OCIArchive)[0]
	ref := reg.Host + "/cairn/multi:v1"
	if _, err := e.Images.Tag(bg, connect.NewRequest(&cairnv1.ImageServiceTagRequest{Source: multi, Target: ref})); err != nil {
		t.Fatal(err)
	}
	creds := &cairnv1.RegistryAuth{Username: reg.User, Password: reg.Password, Insecure: true}

	// Without credentials, or with wrong ones, the registry refuses.
	if _, err := push(e, ref, &cairnv1.RegistryAuth{Insecure: true}); codeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("push without credentials: %v, want PermissionDenied", err)
	}
	if _, err := push(e, ref, &cairnv1.RegistryAuth{Username: reg.User, Password: "wrong", Insecure: true}); codeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("push with a wrong password: %v, want PermissionDenied", err)
	}
	// Plain http only when asked for.
	if _, err := push(e, ref, &cairnv1.RegistryAuth{Username: reg.User, Password: reg.Password}); err == nil || codeOf(err) != connect.CodeFailedPrecondition {
		t.Fatalf("push over plain http not asked for: %v, want FailedPrecondition", err)
	}
	digest, err := push(e, ref, creds)
	if err != nil {
		t.Fatal(err)
	}
	// skopeo reads what was pushed: the same config (image id) and layers.
	out := testenv.Skopeo(t, "inspect", "--tls-verify=false", "--creds", reg.User+":"+reg.Password, "docker://"+ref)
	var ins struct {
		Digest string
		Layers []string
	}
	if err := json.Unmarshal([]byte(out), &ins); err != nil {
		t.Fatal(err)
	}
	if ins.Digest != digest || len(ins.Layers) != len(loaded.DiffIds) {
		t.Fatalf("skopeo inspect: digest %s (pushed %s), %d layers (image has %d)", ins.Digest, digest, len(ins.Layers), len(loaded.DiffIds))
	}
	rawConfig := testenv.Skopeo(t, "inspect", "--raw", "--config", "--tls-verify=false", "--creds", reg.User+":"+reg.Password, "docker://"+ref)
	if got := "sha256:" + sha256Hex([]byte(rawConfig)); got != loaded.Id {
		t.Fatalf("the pushed config hashes to %s, the image id is %s", got, loaded.Id)
	}

	// Gone from the store, pulled back: the same id, and it runs.
	for _, name := range []string{ref, multi} {
		if _, err := e.Images.Remove(bg, connect.NewRequest(&cairnv1.ImageServiceRemoveRequest{Name: name})); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := pull(e, ref, &cairnv1.RegistryAuth{Insecure: true}); codeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("pull without credentials: %v, want PermissionDenied", err)
	}
	img, steps, err := pull(e, ref, creds)
	if err != nil {
		t.Fatal(err)
	}
	if img.Id != loaded.Id || !slices.Equal(img.DiffIds, loaded.DiffIds) || img.Name != ref {
		t.Fatalf("pulled %s %v as %s, pushed %s %v", img.Id, img.DiffIds, img.Name, loaded.Id, loaded.DiffIds)
	}
	if got := statuses(steps, "verified"); len(got) != len(loaded.DiffIds) {
		t.Fatalf("%d layers verified, the image has %d: %v", len(got), len(loaded.DiffIds), steps)
	}
	out2, code, err := runOutput(t, e, &cairnv1.CreateRequest{Image: ref, AutoRemove: true, User: "0", Command: []string{"cat /etc/cairn/c; ls /bin/vi 2>&1; true"}})
	if err != nil || code != 0 || !strings.Contains(out2, "c\n") || !strings.Contains(out2, "No such file") {
		t.Fatalf("run of the pulled image: %q %d %v", out2, code, err)
	}
	// A pull of an image the store has is a no-op: nothing transferred,
	// nothing journaled.
	before := imageRecords(t, e)
	_, steps, err = pull(e, ref, creds)
	if err != nil {
		t.Fatal(err)
	}
	if got := statuses(steps, "downloading"); len(got) != 0 {
		t.Fatalf("a second pull downloaded %v", got)
	}
	if after := imageRecords(t, e); after != before {
		t.Fatalf("a second pull wrote %d journal records", after-before)
	}
	// The pull is in the image's history: intent and done.
	var events []string
	if err := walkHistory(t, e, func(r *cairnv1.JournalRecord) {
		if r.ObjectId == img.Id && r.Event == "pull" {
			events = append(events, r.Kind.String())
		}
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(events, []string{"RECORD_KIND_INTENT", "RECORD_KIND_DONE"}) {
		t.Fatalf("pull records %v", events)
	}
	assertStoreWhole(t, e)
	checkJournalOffline(t, e)
}

func TestRegistry_PullOfAnImageSkopeoPushedStoresSharedLayersOnce(t *testing.T) {
	ti := testenv.Images(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	reg.SkopeoCopy(t, "oci:"+ti.Layout+":"+testenv.BaseImage, "cairn-test/base:v1")
	reg.SkopeoCopy(t, "oci:"+ti.Layout+":"+testenv.MultiImage, "cairn-test/multi:v1")
	e := scratch.NewDaemon(t)
	insecure := &cairnv1.RegistryAuth{Insecure: true}
	base, steps, err := pull(e, reg.Host+"/cairn-test/base:v1", insecure)
	if err != nil {
		t.Fatal(err)
	}
	if len(statuses(steps, "verified")) != 1 {
		t.Fatalf("base: %v", steps)
	}
	img, steps, err := pull(e, reg.Host+"/cairn-test/multi:v1", insecure)
	if err != nil {
		t.Fatal(err)
	}
	// The base layer is shared: it is not downloaded again.
	if exists, verified := statuses(steps, "exists"), statuses(steps, "verified"); len(img.DiffIds) != 3 || len(exists) != 1 || len(verified) != 2 ||
		slices.Contains(verified, exists[0]) {
		t.Fatalf("multi (%d layers): exists %v, verified %v", len(img.DiffIds), exists, verified)
	}
	if img.DiffIds[0] != base.DiffIds[0] {
		t.Fatalf("base layer %s vs %s", img.DiffIds[0], base.DiffIds[0])
	}
	// The same image as the layout's: the id is the config's digest.
	want := loadFile(t, e, ti.OCIArchive)[0]
	if want.Id != img.Id {
		t.Fatalf("pulled %s, the archive's image is %s", img.Id, want.Id)
	}
	out, code, err := runOutput(t, e, &cairnv1.CreateRequest{Image: reg.Host + "/cairn-test/multi:v1", AutoRemove: true})
	if err != nil || code != 0 || strings.TrimSpace(out) != "multi hello from /work/dir as 1000:1000" {
		t.Fatalf("run: %q %d %v", out, code, err)
	}
	// Refusals change nothing: a missing tag, a registry that is not
	// there, an unknown platform syntax.
	if _, _, err := pull(e, reg.Host+"/cairn-test/nope:v1", insecure); codeOf(err) != connect.CodeNotFound {
		t.Fatalf("missing image: %v, want NotFound", err)
	}
	if _, err := apiclient.PullImage(bg, e.Images, &cairnv1.ImageServicePullRequest{Ref: reg.Host + "/cairn-test/multi:v1", Platform: "bogus", Auth: insecure}, nil); codeOf(err) != connect.CodeInvalidArgument {
		t.Fatalf("bad platform: %v", err)
	}
	if _, _, err := pull(e, "10.255.255.1:5000/x:y", insecure); codeOf(err) != connect.CodeInvalidArgument {
		t.Fatalf("plain http off loopback: %v, want InvalidArgument", err)
	}
	assertStoreWhole(t, e)
}

func TestSave_SkopeoReadsItAndItLoadsBackWithTheSameID(t *testing.T) {
	ti := testenv.Images(t)
	e := scratch.NewDaemon(t)
	loaded := loadFile(t, e, ti.DockerArchive)[0]
	var archive bytes.Buffer
	if err := apiclient.SaveImages(bg, e.Images, []string{"cairn-test/multi:v1"}, &archive); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "saved.tar")
	if err := os.WriteFile(path, archive.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, transport := range []string{"docker-archive:", "oci-archive:"} {
		rawConfig := testenv.Skopeo(t, "inspect", "--config", "--raw", transport+path)
		if got := "sha256:" + sha256Hex([]byte(rawConfig)); got != loaded.Id {
			t.Errorf("skopeo %s: the config hashes to %s, the image id is %s", transport, got, loaded.Id)
		}
		var ins struct{ Layers []string }
		if err := json.Unmarshal([]byte(testenv.Skopeo(t, "inspect", transport+path)), &ins); err != nil || len(ins.Layers) != len(loaded.DiffIds) {
			t.Errorf("skopeo inspect %s: %d layers %v", transport, len(ins.Layers), err)
		}
	}
	// skopeo copies it on (every blob is read and checked).
	testenv.Skopeo(t, "copy", "-q", "docker-archive:"+path, "oci:"+filepath.Join(t.TempDir(), "copy")+":x")
	// docker load's reader: manifest.json names the config and layers.
	var manifest []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(tarEntry(t, archive.Bytes(), "manifest.json"), &manifest); err != nil || len(manifest) != 1 ||
		!slices.Equal(manifest[0].RepoTags, []string{testenv.MultiImage}) || len(manifest[0].Layers) != 3 {
		t.Fatalf("manifest.json: %+v %v", manifest, err)
	}

	// Deleted, loaded back: the same id and diffIDs, and it runs.
	if _, err := e.Images.Remove(bg, connect.NewRequest(&cairnv1.ImageServiceRemoveRequest{Name: multi})); err != nil {
		t.Fatal(err)
	}
	back := loadFile(t, e, path)
	if len(back) != 1 || back[0].Id != loaded.Id || !slices.Equal(back[0].DiffIds, loaded.DiffIds) || !slices.Contains(back[0].Names, multi) {
		t.Fatalf("loaded back %+v, saved %s", back, loaded.Id)
	}
	// Two images in one archive (one named by id, saved untagged), both
	// load back.
	archive.Reset()
	if err := apiclient.SaveImages(bg, e.Images, []string{"busybox", loaded.Id}, &archive); err != nil {
		t.Fatal(err)
	}
	imgs, err := loadBytes(e, archive.Bytes())
	if err != nil || len(imgs) != 2 {
		t.Fatalf("two images: %v %v", imgs, err)
	}
	// Refused: no such image.
	if err := apiclient.SaveImages(bg, e.Images, []string{"nothing:here"}, io.Discard); codeOf(err) != connect.CodeNotFound {
		t.Fatalf("save of a missing image: %v", err)
	}
}

func tarEntry(t testing.TB, archive []byte, name string) []byte {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(archive))
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			t.Fatalf("%s is not in the archive", name)
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Name == name {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
}

func TestCommit_TheCommittedImageRunsWithTheChangesAndExportHoldsThem(t *testing.T) {
	e := scratch.NewDaemon(t)
	c := create(t, e, "", "sh", "-c", "echo committed > /etc/committed; mkdir -p /opt/d; echo x > /opt/d/f; rm /bin/vi; ln /etc/committed /etc/hard")
	start(t, e, c.Id)
	if w := wait(t, e, c.Id); exitCode(w) != "0" {
		t.Fatalf("the container exited %s", exitCode(w))
	}
	res, err := e.Images.Commit(bg, connect.NewRequest(&cairnv1.ImageServiceCommitRequest{Container: c.Id, Ref: "committed:v1",
		Changes: []string{`CMD ["cat", "/etc/committed"]`, "ENV COMMITTED=yes", "WORKDIR /opt/d"}, Comment: "a test"}))
	if err != nil {
		t.Fatal(err)
	}
	img := res.Msg.Image
	if len(img.DiffIds) != 2 || img.Config == nil || !slices.Contains(img.Config.Env, "COMMITTED=yes") || img.Config.WorkingDir != "/opt/d" {
		t.Fatalf("committed image %+v", img)
	}
	out, code, err := runOutput(t, e, &cairnv1.CreateRequest{Image: "committed:v1", AutoRemove: true})
	if err != nil || code != 0 || out != "committed\n" {
		t.Fatalf("run of the committed image's CMD: %q %d %v", out, code, err)
	}
	out, code, err = runOutput(t, e, &cairnv1.CreateRequest{Image: "committed:v1", AutoRemove: true,
		Command: []string{"sh", "-c", "echo $COMMITTED $(pwd) $(cat f); ls /bin/vi 2>&1; stat -c %h /etc/hard; true"}})
	if err != nil || code != 0 || !strings.Contains(out, "yes /opt/d x\n") || !strings.Contains(out, "/bin/vi: No such file") || !strings.HasSuffix(out, "2\n") {
		t.Fatalf("run in the committed image: %q %d %v", out, code, err)
	}
	// Export: the container's whole filesystem, flattened.
	var exported bytes.Buffer
	if err := apiclient.ExportContainer(bg, e.Images, c.Id, &exported); err != nil {
		t.Fatal(err)
	}
	names := map[string]string{}
	tr := tar.NewReader(&exported)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		names[hdr.Name] = string(body)
		if strings.Contains(hdr.Name, ".wh.") {
			t.Errorf("whiteout %s in an export", hdr.Name)
		}
	}
	if names["etc/committed"] != "committed\n" || names["opt/d/f"] != "x\n" {
		t.Errorf("export lacks the container's files: %q %q", names["etc/committed"], names["opt/d/f"])
	}
	if _, ok := names["bin/vi"]; ok {
		t.Errorf("export holds the deleted /bin/vi")
	}
	if _, ok := names["bin/busybox"]; !ok {
		t.Errorf("export lacks the image's /bin/busybox")
	}
	if _, ok := names["etc/hostname"]; !ok {
		t.Errorf("export lacks the init layer's /etc/hostname")
	}
	// A commit is journaled; the committed image saves like any other.
	var events []string
	if err := walkHistory(t, e, func(r *cairnv1.JournalRecord) {
		if r.ObjectId == img.Id {
			events = append(events, r.Event+"/"+r.Kind.String())
		}
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(events, []string{"commit/RECORD_KIND_INTENT", "commit/RECORD_KIND_DONE"}) {
		t.Fatalf("commit records %v", events)
	}
	if err := apiclient.SaveImages(bg, e.Images, []string{"committed:v1"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	// Bad input changes nothing.
	if _, err := e.Images.Commit(bg, connect.NewRequest(&cairnv1.ImageServiceCommitRequest{Container: c.Id, Changes: []string{"RUN rm -rf /"}})); codeOf(err) != connect.CodeInvalidArgument {
		t.Fatalf("an unknown instruction: %v", err)
	}
	if _, err := e.Images.Commit(bg, connect.NewRequest(&cairnv1.ImageServiceCommitRequest{Container: "no-such"})); codeOf(err) != connect.CodeNotFound {
		t.Fatalf("a missing container: %v", err)
	}
	remove(t, e, c.Id, false)
	assertStoreWhole(t, e)
	checkJournalOffline(t, e)
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
