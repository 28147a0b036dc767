package daemon_test

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/internal/apiclient"
	"github.com/cairn-run/cairn/internal/busybox"
	"github.com/cairn-run/cairn/internal/testenv"
	"github.com/cairn-run/cairn/internal/testenv/scratch"
	sm "github.com/cairn-run/cairn/statemachine"
)

// TestPull_AfterACrashResumesTheLayersItHadVerified: cairnd killed at
// the crash point after a layer of a 6-layer image landed (5 to fetch, the
// busybox one shared) leaves no image and no registered layer; the next
// pull fetches only the layers the first had not verified (counted at a
// proxy in front of the registry), and the image is the one pushed.
func TestPull_AfterACrashResumesTheLayersItHadVerified(t *testing.T) {
	testenv.RequireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	// Five layers of incompressible bytes: large enough that the crash at
	// the first kept layer finds the others still downloading.
	rnd := rand.New(rand.NewPCG(8, 8))
	var extra [][]byte
	for i := range 5 {
		body := make([]byte, 3<<20)
		for j := range body {
			body[j] = byte(rnd.Uint32())
		}
		extra = append(extra, busybox.LayerTar(busybox.File{Name: "data" + string(rune('0'+i)), Body: string(body)}))
	}
	var archive bytes.Buffer
	if err := busybox.WriteArchive(&archive, busybox.DefaultPath, "resume:1", []string{"true"}, extra...); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "resume.tar")
	if err := os.WriteFile(path, archive.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	reg.SkopeoCopy(t, "docker-archive:"+path, "resume:1")

	// A proxy that counts the layer blobs it serves.
	upstream, _ := url.Parse("http://" + reg.Host)
	proxy := httputil.NewSingleHostReverseProxy(upstream)
	var blobGets atomic.Int64
	var configDigest atomic.Pointer[string]
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256:") {
			if c := configDigest.Load(); c == nil || !strings.HasSuffix(r.URL.Path, *c) {
				blobGets.Add(1)
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	{
		req, _ := http.NewRequest(http.MethodGet, front.URL+"/v2/resume/manifests/1", nil)
		req.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var m struct{ Config struct{ Digest string } }
		_ = json.NewDecoder(resp.Body).Decode(&m)
		resp.Body.Close()
		if m.Config.Digest == "" {
			t.Fatal("no config digest in the manifest")
		}
		configDigest.Store(&m.Config.Digest)
	}
	ref := strings.TrimPrefix(front.URL, "http://") + "/resume:1"
	insecure := &cairnv1.RegistryAuth{Insecure: true}

	e := scratch.NewBinaryDaemon(t)
	e.Stop()
	e.StartWith("CAIRN_CRASH_AT=" + sm.CrashPullAfterKeptLayer)
	e.WaitServing()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := apiclient.PullImage(ctx, e.Images, &cairnv1.ImageServicePullRequest{Ref: ref, Auth: insecure}, nil); err == nil {
		t.Fatal("the pull finished before the crash point")
	}
	e.WaitCrash(30 * time.Second)
	e.Start()

	// Nothing half-registered: the image is absent, every layer directory
	// belongs to an image, and the kept layers are listed nowhere.
	if _, err := e.Images.Get(bg, connect.NewRequest(&cairnv1.ImageServiceGetRequest{Ref: ref})); codeOf(err) != connect.CodeNotFound {
		t.Fatalf("after the crash, %s: %v, want NotFound", ref, err)
	}
	assertStoreWhole(t, e)
	verified := func() []string {
		es, err := os.ReadDir(filepath.Join(e.Config.Root, "layer", "verified"))
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, x := range es {
			ids = append(ids, x.Name())
		}
		return ids
	}
	kept := verified()
	if len(kept) < 1 || len(kept) > 4 {
		t.Fatalf("%d verified layers kept after the crash, want 1 to 4 of 5", len(kept))
	}
	// The rollback's RECONCILED record says how many it keeps.
	var reasons []string
	if err := walkHistory(t, e, func(r *cairnv1.JournalRecord) {
		if r.Object == "image" && r.Kind == cairnv1.RecordKind_RECORD_KIND_RECONCILED {
			reasons = append(reasons, r.Error)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if len(reasons) != 1 || !strings.Contains(reasons[0], "verified layers are kept") {
		t.Fatalf("reconciled records: %q", reasons)
	}

	t.Logf("%d of 5 layers kept verified after the crash", len(kept))
	blobGets.Store(0)
	var steps []*cairnv1.LayerProgress
	img, err := apiclient.PullImage(bg, e.Images, &cairnv1.ImageServicePullRequest{Ref: ref, Auth: insecure}, func(p *cairnv1.LayerProgress) { steps = append(steps, p) })
	if err != nil {
		t.Fatal(err)
	}
	if got, want := blobGets.Load(), int64(5-len(kept)); got != want {
		t.Errorf("the second pull fetched %d layer blobs, want %d (5 minus %d kept)", got, want, len(kept))
	}
	if resumed := statuses(steps, "resumed"); len(resumed) != len(kept) {
		t.Errorf("resumed %v, want %d layers", resumed, len(kept))
	}
	if img.Id != *configDigest.Load() || len(img.DiffIds) != 6 {
		t.Errorf("pulled %s with %d layers, want %s with 6", img.Id, len(img.DiffIds), *configDigest.Load())
	}
	if left := verified(); len(left) != 0 {
		t.Errorf("verified layers left after the pull adopted them: %v", left)
	}
	for _, id := range kept {
		if _, err := os.Stat(filepath.Join(e.Config.Root, "layer", "layers", id)); err != nil {
			t.Errorf("kept layer %s is not the registered one: %v", id, err)
		}
	}
	assertStoreWhole(t, e)
	if _, code, err := runOutput(t, e, &cairnv1.CreateRequest{Image: ref, AutoRemove: true, Command: []string{"sh", "-c", "test -s /data0 && test -s /data4"}}); err != nil || code != 0 {
		t.Errorf("run of the resumed image: code %d %v", code, err)
	}
	if slices.Contains(kept, "") {
		t.Fatal("empty cache id")
	}
}
