package daemon_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/internal/daemon"
	"github.com/cairn-run/cairn/internal/testenv"
	"github.com/cairn-run/cairn/internal/testenv/scratch"
)

// frontedRegistry is a real docker-registry with skopeo's copy of the
// multi-layer test image, behind a proxy on 127.0.0.1 whose behaviour a
// test changes: what a hostile or slow registry would do.
type frontedRegistry struct {
	reg   *testenv.Registry
	front *httptest.Server
	// handle, when set, answers a request instead of the registry.
	handle atomic.Pointer[func(w http.ResponseWriter, r *http.Request) bool]
}

func newFrontedRegistry(t *testing.T) *frontedRegistry {
	ti := testenv.Images(t)
	f := &frontedRegistry{reg: testenv.StartRegistry(t, testenv.RegistryOptions{})}
	f.reg.SkopeoCopy(t, "oci:"+ti.Layout+":"+testenv.MultiImage, "cairn-test/multi:v1")
	upstream, _ := url.Parse("http://" + f.reg.Host)
	proxy := httputil.NewSingleHostReverseProxy(upstream)
	f.front = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := f.handle.Load(); h != nil && (*h)(w, r) {
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(f.front.Close)
	return f
}

func (f *frontedRegistry) host() string { return strings.TrimPrefix(f.front.URL, "http://") }

func (f *frontedRegistry) set(h func(w http.ResponseWriter, r *http.Request) bool) {
	f.handle.Store(&h)
}

func assertNothingPulled(t *testing.T, e *scratch.Env, ref string) {
	t.Helper()
	if _, err := e.Images.Get(bg, connect.NewRequest(&cairnv1.ImageServiceGetRequest{Ref: ref})); codeOf(err) != connect.CodeNotFound {
		t.Errorf("after a refused pull, %s: %v, want NotFound", ref, err)
	}
	assertStoreWhole(t, e)
}

func TestRegistry_HostileRegistriesChangeNothing(t *testing.T) {
	f := newFrontedRegistry(t)
	e := scratch.NewDaemon(t, func(c *daemon.Config) { c.Registries.StallTimeout = 2 * time.Second })
	ref := f.host() + "/cairn-test/multi:v1"
	insecure := &cairnv1.RegistryAuth{Insecure: true}
	var configDigest string
	{
		// Learn the config's digest through the proxy, to tell it apart.
		req, _ := http.NewRequest(http.MethodGet, f.front.URL+"/v2/cairn-test/multi/manifests/v1", nil)
		req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var m struct{ Config struct{ Digest string } }
		_ = json.NewDecoder(resp.Body).Decode(&m)
		resp.Body.Close()
		configDigest = m.Config.Digest
	}
	layerBlob := func(r *http.Request) bool {
		return r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256:") && !strings.HasSuffix(r.URL.Path, configDigest)
	}
	for _, tt := range []struct {
		name   string
		handle func(w http.ResponseWriter, r *http.Request) bool
		code   connect.Code
	}{
		{"a different blob than asked for", func(w http.ResponseWriter, r *http.Request) bool {
			if !layerBlob(r) {
				return false
			}
			// The size is right, the bytes are not.
			resp, err := http.Get("http://" + f.reg.Host + r.URL.Path)
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			b[len(b)/2] ^= 0xff
			w.Header().Set("Content-Length", fmt.Sprint(len(b)))
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(b)
			return true
		}, connect.CodeInvalidArgument},
		{"a redirect off loopback", func(w http.ResponseWriter, r *http.Request) bool {
			if !layerBlob(r) {
				return false
			}
			http.Redirect(w, r, "http://192.0.2.1/blob", http.StatusTemporaryRedirect)
			return true
		}, connect.CodeFailedPrecondition},
		{"a stall in the middle of a layer", func(w http.ResponseWriter, r *http.Request) bool {
			if !layerBlob(r) {
				return false
			}
			resp, err := http.Head("http://" + f.reg.Host + r.URL.Path)
			if err != nil {
				return false
			}
			resp.Body.Close()
			// The right length and a start of the blob, then nothing.
			w.Header().Set("Content-Length", resp.Header.Get("Content-Length"))
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte{0x1f, 0x8b, 8, 0})
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
			case <-time.After(30 * time.Second):
			}
			return true
		}, connect.CodeUnavailable},
		{"a manifest over 4 MiB", func(w http.ResponseWriter, r *http.Request) bool {
			if !strings.Contains(r.URL.Path, "/manifests/") {
				return false
			}
			w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
			_, _ = w.Write([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","pad":"` + strings.Repeat("x", 5<<20) + `"}`))
			return true
		}, connect.CodeInvalidArgument},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f.set(tt.handle)
			start := time.Now()
			_, _, err := pull(e, ref, insecure)
			if codeOf(err) != tt.code {
				t.Fatalf("pull: %v, want %v", err, tt.code)
			}
			t.Logf("%v after %v", err, time.Since(start))
			if time.Since(start) > 20*time.Second {
				t.Errorf("the refusal took %v", time.Since(start))
			}
			assertNothingPulled(t, e, ref)
		})
	}
	// The same proxy, behaving, serves the image.
	f.set(func(http.ResponseWriter, *http.Request) bool { return false })
	if _, _, err := pull(e, ref, insecure); err != nil {
		t.Fatal(err)
	}
	checkJournalOffline(t, e)
}

// TestRegistry_TokenAuth puts the registry behind a token service as
// Docker Hub does: a 401 with a Bearer challenge, a realm that trades the
// basic credentials for a token, and the token on every request after.
func TestRegistry_TokenAuth(t *testing.T) {
	f := newFrontedRegistry(t)
	const user, password, token = "tok-user", "tok-pass", "opaque-token-123"
	var tokensIssued atomic.Int32
	f.set(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/token" {
			u, p, ok := r.BasicAuth()
			if !ok || u != user || p != password {
				http.Error(w, "bad credentials", http.StatusUnauthorized)
				return true
			}
			tokensIssued.Add(1)
			_ = json.NewEncoder(w).Encode(map[string]string{"token": token})
			return true
		}
		if r.Header.Get("Authorization") != "Bearer "+token {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s/token",service="cairn-test",scope="repository:cairn-test/multi:pull"`, f.front.URL))
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED"}]}`, http.StatusUnauthorized)
			return true
		}
		r.Header.Del("Authorization")
		return false
	})
	e := scratch.NewDaemon(t)
	ref := f.host() + "/cairn-test/multi:v1"
	if _, _, err := pull(e, ref, &cairnv1.RegistryAuth{Insecure: true, Username: user, Password: "wrong"}); codeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("a pull with a wrong password: %v, want PermissionDenied", err)
	}
	img, _, err := pull(e, ref, &cairnv1.RegistryAuth{Insecure: true, Username: user, Password: password})
	if err != nil {
		t.Fatal(err)
	}
	if tokensIssued.Load() == 0 || len(img.DiffIds) != 3 {
		t.Fatalf("%d tokens issued, %d layers", tokensIssued.Load(), len(img.DiffIds))
	}
}
