package images

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/cairn-run/cairn/imagearchive"
	"github.com/cairn-run/cairn/internal/errdefs"
	"github.com/cairn-run/cairn/internal/imageref"
	"github.com/cairn-run/cairn/layer"
	sm "github.com/cairn-run/cairn/statemachine"
)

// Auth says how to reach a registry: basic credentials (which a token
// service is also asked with) or an identity token, and whether plain
// http is wanted.
type Auth struct {
	Username, Password, IdentityToken string
	// Insecure asks for plain http: allowed only to a loopback registry
	// or one Registries.Insecure names.
	Insecure bool
}

// Progress is one step of one layer's transfer.
type Progress struct {
	Digest      string
	Size, Done  int64
	Status      string
	sentAt      time.Time
	lastPercent int64
}

// Layer transfer statuses.
const (
	StatusWaiting     = "waiting"
	StatusDownloading = "downloading"
	StatusVerified    = "verified"
	StatusExists      = "exists"
	// StatusResumed: a layer an interrupted pull had verified, not
	// downloaded again.
	StatusResumed   = "resumed"
	StatusUploading = "uploading"
	StatusPushed    = "pushed"
)

// PullRequest is what `cairn pull` asks for.
type PullRequest struct {
	Ref string
	// Platform is os/arch[/variant]; default linux/GOARCH.
	Platform string
	Auth     Auth
}

// PushRequest is what `cairn push` asks for.
type PushRequest struct {
	Ref  string
	Auth Auth
}

// stageJobs is how many layers a pull or load stages at once, as Docker's
// max-concurrent-downloads: decompressing and extracting one layer keeps a
// core busy.
const stageJobs = 3

// stageParallel runs stage for 0..n-1, stageJobs at a time; the first
// failure cancels the others. It returns the layers staged (also when it
// fails, for the caller's cleanup) and the first failure that is not a
// cancellation it caused.
func stageParallel(ctx context.Context, n int, stage func(ctx context.Context, i int) (layer.StagedLayer, error)) ([]layer.StagedLayer, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make([]layer.StagedLayer, n)
	errs := make([]error, n)
	sem := make(chan struct{}, stageJobs)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if errs[i] = ctx.Err(); errs[i] != nil {
				return
			}
			if results[i], errs[i] = stage(ctx, i); errs[i] != nil {
				cancel()
			}
		}()
	}
	wg.Wait()
	var staged []layer.StagedLayer
	var first error
	for i := range n {
		if errs[i] == nil {
			staged = append(staged, results[i])
		} else if first == nil || errors.Is(first, context.Canceled) && !errors.Is(errs[i], context.Canceled) {
			first = errs[i]
		}
	}
	return staged, first
}

// Registries is how cairnd talks to registries.
type Registries struct {
	// Insecure are registry hosts (host or host:port) reached over plain
	// http (cairnd --insecure-registry).
	Insecure []string
	// StallTimeout fails a transfer that moves no byte for this long;
	// default 60s.
	StallTimeout time.Duration
	// RequestTimeout bounds connecting and waiting for a response's
	// headers; default 30s.
	RequestTimeout time.Duration
}

func (r Registries) stallTimeout() time.Duration {
	if r.StallTimeout > 0 {
		return r.StallTimeout
	}
	return 60 * time.Second
}

func (r Registries) requestTimeout() time.Duration {
	if r.RequestTimeout > 0 {
		return r.RequestTimeout
	}
	return 30 * time.Second
}

// isLoopback reports whether a registry host (host[:port]) is this machine.
func isLoopback(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// allowHTTP decides whether plain http to host is allowed.
func (r Registries) allowHTTP(host string, asked bool) bool {
	return slices.Contains(r.Insecure, host) || asked && isLoopback(host)
}

// remote is one registry conversation: the reference and the options of
// go-containerregistry's client.
type remoteCall struct {
	ref     name.Reference
	options []remote.Option
	stall   *stallWatch
	cancel  context.CancelFunc
}

func (c *remoteCall) close() { c.cancel(); c.stall.stop() }

// dial prepares a conversation with the registry of ref.
func (s *Service) dial(ctx context.Context, ref string, auth Auth) (*remoteCall, error) {
	canonical, err := imageref.Normalize(ref)
	if err != nil {
		return nil, err
	}
	parsed, err := name.ParseReference(canonical, name.StrictValidation)
	if err != nil {
		return nil, fmt.Errorf("reference %s: %v: %w", errdefs.Quote(ref), err, errdefs.ErrInvalidArgument)
	}
	host := parsed.Context().RegistryStr()
	plain := s.Registries.allowHTTP(host, auth.Insecure)
	if auth.Insecure && !plain {
		return nil, fmt.Errorf("plain http to registry %s: only a loopback registry, or one cairnd --insecure-registry names: %w", errdefs.Quote(host), errdefs.ErrInvalidArgument)
	}
	if plain {
		if parsed, err = name.ParseReference(canonical, name.StrictValidation, name.Insecure); err != nil {
			return nil, fmt.Errorf("reference %s: %v: %w", errdefs.Quote(ref), err, errdefs.ErrInvalidArgument)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	stall := newStallWatch(s.Registries.stallTimeout(), cancel)
	timeout := s.Registries.requestTimeout()
	base := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		ExpectContinueTimeout: time.Second,
		MaxIdleConnsPerHost:   4,
		ForceAttemptHTTP2:     true,
	}
	var authenticator authn.Authenticator = authn.Anonymous
	if auth.Username != "" || auth.Password != "" || auth.IdentityToken != "" {
		authenticator = authn.FromConfig(authn.AuthConfig{Username: auth.Username, Password: auth.Password, IdentityToken: auth.IdentityToken})
	}
	rt := &guardTransport{base: base, registry: host, plainHTTP: plain, loopback: isLoopback(host), stall: stall}
	return &remoteCall{ref: parsed, stall: stall, cancel: cancel, options: []remote.Option{
		remote.WithContext(ctx), remote.WithTransport(rt), remote.WithAuth(authenticator),
		remote.WithUserAgent("cairn"), remote.WithRetryBackoff(remote.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Steps: 3}),
	}}, nil
}

// guardTransport enforces what a pull or push may talk to: no plain http
// unless allowed, and nothing but loopback hosts (redirects and token
// services included) when the registry itself is on loopback. Every byte
// of a response body feeds the stall watch.
type guardTransport struct {
	base      http.RoundTripper
	registry  string
	plainHTTP bool
	loopback  bool
	stall     *stallWatch
}

var errRefusedRequest = errors.New("refused request")

func (g *guardTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !g.plainHTTP {
		return nil, fmt.Errorf("plain http to %s is not allowed (pass --insecure-registry for a loopback registry): %w", errdefs.Quote(req.URL.Host), errRefusedRequest)
	}
	if g.loopback && !isLoopback(req.URL.Host) {
		return nil, fmt.Errorf("registry %s sent the client off loopback, to %s: %w", g.registry, errdefs.Quote(req.URL.Host), errRefusedRequest)
	}
	g.stall.touch()
	resp, err := g.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &touchingBody{ReadCloser: resp.Body, stall: g.stall}
	return resp, nil
}

type touchingBody struct {
	io.ReadCloser
	stall *stallWatch
}

func (b *touchingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.stall.touch()
	}
	return n, err
}

// stallWatch cancels a transfer when no byte has moved for its timeout.
type stallWatch struct {
	mu      sync.Mutex
	last    time.Time
	timeout time.Duration
	stalled bool
	done    chan struct{}
	once    sync.Once
}

func newStallWatch(timeout time.Duration, cancel context.CancelFunc) *stallWatch {
	w := &stallWatch{last: time.Now(), timeout: timeout, done: make(chan struct{})}
	go func() {
		tick := time.NewTicker(min(timeout/4, time.Second))
		defer tick.Stop()
		for {
			select {
			case <-w.done:
				return
			case <-tick.C:
				w.mu.Lock()
				idle := time.Since(w.last)
				if idle >= timeout {
					w.stalled = true
				}
				w.mu.Unlock()
				if idle >= timeout {
					cancel()
					return
				}
			}
		}
	}()
	return w
}

func (w *stallWatch) touch() {
	w.mu.Lock()
	w.last = time.Now()
	w.mu.Unlock()
}

func (w *stallWatch) stop() { w.once.Do(func() { close(w.done) }) }

func (w *stallWatch) hasStalled() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stalled
}

// registryError turns what go-containerregistry returns into the
// project's errors: a registry's refusals by their HTTP status, a stall.
func (c *remoteCall) registryError(what string, err error) error {
	if c.stall.hasStalled() {
		return fmt.Errorf("%s: the registry sent nothing for %s: %w", what, c.stall.timeout, errdefs.ErrUnavailable)
	}
	if errors.Is(err, errdefs.ErrInvalidArgument) || errors.Is(err, errdefs.ErrResourceExhausted) ||
		errors.Is(err, errdefs.ErrFailedPrecondition) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", what, err)
	}
	if strings.Contains(err.Error(), "error verifying") {
		// go-containerregistry's reader checks a blob's digest too, and
		// its error type is internal to it: the registry served other
		// bytes than the digest names.
		return fmt.Errorf("%s: the registry served a blob that does not match its digest: %v: %w", what, err, errdefs.ErrInvalidArgument)
	}
	if errors.Is(err, errRefusedRequest) {
		return fmt.Errorf("%s: %v: %w", what, err, errdefs.ErrFailedPrecondition)
	}
	var terr *transport.Error
	if errors.As(err, &terr) {
		switch terr.StatusCode {
		case http.StatusNotFound:
			return fmt.Errorf("%s: %v: %w", what, err, errdefs.ErrNotFound)
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("%s: %v: %w", what, err, errdefs.ErrPermissionDenied)
		}
	}
	return fmt.Errorf("%s: %v: %w", what, err, errdefs.ErrUnavailable)
}

// platformOf parses os/arch[/variant], default linux/GOARCH.
func platformOf(s string) (v1.Platform, error) {
	if s == "" {
		return v1.Platform{OS: "linux", Architecture: runtime.GOARCH}, nil
	}
	p, err := v1.ParsePlatform(s)
	if err != nil || p.OS == "" || p.Architecture == "" || len(s) > 100 {
		return v1.Platform{}, fmt.Errorf("platform %s: want os/arch[/variant]: %w", errdefs.Quote(s), errdefs.ErrInvalidArgument)
	}
	if p.OS != "linux" {
		return v1.Platform{}, fmt.Errorf("platform %s: cairn runs linux images: %w", errdefs.Quote(s), errdefs.ErrInvalidArgument)
	}
	return *p, nil
}

// Pull fetches the image ref names from its registry and registers it as
// one journaled pull. The manifest and config are fetched and checked
// first (nothing is recorded for a refused image); the intent then names
// the image, its name and the directory each missing layer will take;
// the "fetch" step downloads each layer the store lacks (a layer the store
// has is not downloaded), checking its blob digest and its diffID as it is
// extracted into the store's scratch directory; "layers" moves them into
// the store; the registration commits with the DONE. A crash before the
// DONE rolls back at the next start: nothing is half-registered. An image
// the store has under that name already is a no-op.
func (s *Service) Pull(ctx context.Context, req PullRequest, progress func(Progress)) (layer.Image, error) {
	img, err := s.pull(ctx, req, progress)
	if err != nil {
		return layer.Image{}, fmt.Errorf("pull %s: %w", errdefs.Quote(req.Ref), err)
	}
	return img, nil
}

func (s *Service) pull(ctx context.Context, req PullRequest, progress func(Progress)) (layer.Image, error) {
	if progress == nil {
		progress = func(Progress) {}
	}
	platform, err := platformOf(req.Platform)
	if err != nil {
		return layer.Image{}, err
	}
	call, err := s.dial(ctx, req.Ref, req.Auth)
	if err != nil {
		return layer.Image{}, err
	}
	defer call.close()
	var names []string
	if tag, ok := call.ref.(name.Tag); ok {
		canonical, err := imageref.NormalizeTag(tag.String())
		if err != nil {
			return layer.Image{}, err
		}
		names = []string{canonical}
	}
	rimg, err := remote.Image(call.ref, append(call.options, remote.WithPlatform(platform))...)
	if err != nil {
		return layer.Image{}, call.registryError("fetch the manifest", err)
	}
	if mt, err := rimg.MediaType(); err == nil && !mt.IsImage() {
		return layer.Image{}, fmt.Errorf("manifest media type %.100q is not an image: %w", mt, errdefs.ErrInvalidArgument)
	}
	rawManifest, err := rimg.RawManifest()
	if err != nil {
		return layer.Image{}, call.registryError("fetch the manifest", err)
	}
	// Checked before the config or any layer is fetched.
	if _, err := imagearchive.CheckManifest(rawManifest); err != nil {
		return layer.Image{}, err
	}
	rawConfig, err := rimg.RawConfigFile()
	if err != nil {
		return layer.Image{}, call.registryError("fetch the config", err)
	}
	desc, err := imagearchive.FromManifest(rawManifest, rawConfig)
	if err != nil {
		return layer.Image{}, err
	}
	if existing, err := s.Store.ImageByID(desc.ID); err == nil && containsAll(existing.Names, names) {
		// A pull of an image the store has, under that name: nothing to do.
		for _, l := range desc.Layers {
			progress(Progress{Digest: l.Digest, Size: l.Size, Status: StatusExists})
		}
		existing.Name = firstOr(names, existing.ID)
		return existing, nil
	}
	chain := layer.ChainIDs(desc.DiffIDs())
	have, err := s.Store.RegisteredLayers(chain)
	if err != nil {
		return layer.Image{}, err
	}
	type want struct {
		src  layer.LayerSource
		blob imagearchive.Layer
	}
	var wants []want
	var claims []sm.LayerClaim
	var cacheIDs []string
	// resumed are the layers an interrupted pull kept verified: adopted
	// under this pull's claims instead of downloaded.
	var resumed []layer.StagedLayer
	defer func() { s.Store.ReleaseVerified(cacheIDs) }()
	for i, l := range desc.Layers {
		if have[chain[i]] || slices.ContainsFunc(claims, func(c sm.LayerClaim) bool { return c.ChainID == chain[i] }) {
			progress(Progress{Digest: l.Digest, Size: l.Size, Status: StatusExists})
			continue
		}
		if kept, ok, err := s.Store.TakeVerified(l.DiffID, l.Digest); err != nil {
			return layer.Image{}, err
		} else if ok {
			kept.ChainID = chain[i]
			resumed = append(resumed, kept)
			claims = append(claims, sm.LayerClaim{ChainID: chain[i], CacheID: kept.CacheID})
			cacheIDs = append(cacheIDs, kept.CacheID)
			progress(Progress{Digest: l.Digest, Size: l.Size, Done: l.Size, Status: StatusResumed})
			continue
		}
		cacheID, err := layer.NewCacheID()
		if err != nil {
			return layer.Image{}, err
		}
		wants = append(wants, want{src: layer.LayerSource{ChainID: chain[i], Digest: l.Digest, Size: l.Size, DiffID: l.DiffID, CacheID: cacheID}, blob: l})
		claims = append(claims, sm.LayerClaim{ChainID: chain[i], CacheID: cacheID})
		cacheIDs = append(cacheIDs, cacheID)
		progress(Progress{Digest: l.Digest, Size: l.Size, Status: StatusWaiting})
	}
	s.Store.ReserveVerified(cacheIDs)
	st, err := s.Store.NewStaging(s.Options)
	if err != nil {
		return layer.Image{}, err
	}
	defer st.Close()
	var mu sync.Mutex // progress is sent from every fetching goroutine
	report := func(p Progress) {
		mu.Lock()
		defer mu.Unlock()
		progress(p)
	}
	fetchOne := func(ctx context.Context, w want) (layer.StagedLayer, error) {
		h, err := v1.NewHash(w.src.Digest)
		if err != nil {
			return layer.StagedLayer{}, fmt.Errorf("layer digest %s: %w", errdefs.Quote(w.src.Digest), errdefs.ErrInvalidArgument)
		}
		rl, err := rimg.LayerByDigest(h)
		if err != nil {
			return layer.StagedLayer{}, call.registryError("layer "+w.src.Digest, err)
		}
		rc, err := rl.Compressed()
		if err != nil {
			return layer.StagedLayer{}, call.registryError("layer "+w.src.Digest, err)
		}
		defer rc.Close()
		pr := &progressReader{r: rc, p: Progress{Digest: w.src.Digest, Size: w.src.Size, Status: StatusDownloading}, report: report}
		sl, err := st.Layer(ctx, pr, w.src)
		if err != nil {
			if errors.Is(err, errdefs.ErrInvalidArgument) || errors.Is(err, errdefs.ErrResourceExhausted) {
				return layer.StagedLayer{}, fmt.Errorf("layer %s: %w", w.src.Digest, err)
			}
			return layer.StagedLayer{}, call.registryError("layer "+w.src.Digest, err)
		}
		// Verified and durable: kept out of tmp/, so that a crash from
		// here on does not lose it (the intent claims its cacheID).
		if sl, err = s.Store.KeepVerified(sl); err != nil {
			return layer.StagedLayer{}, err
		}
		if s.CrashPoint != nil {
			s.CrashPoint(sm.CrashPullAfterKeptLayer)
		}
		report(Progress{Digest: w.src.Digest, Size: w.src.Size, Done: w.src.Size, Status: StatusVerified})
		return sl, nil
	}
	var staged []layer.StagedLayer
	fetch := func() error {
		var err error
		staged, err = stageParallel(ctx, len(wants), func(ctx context.Context, i int) (layer.StagedLayer, error) { return fetchOne(ctx, wants[i]) })
		staged = append(staged, resumed...)
		return err
	}
	removeClaimed := func() error { return s.Store.RemoveUnregisteredLayers(cacheIDs) }
	var reg layer.Registration
	newImg := layer.NewImage{ID: desc.ID, Config: desc.Config, DiffIDs: desc.DiffIDs(), Names: names}
	op := sm.ImageOp{
		Event: sm.EventPull, ID: desc.ID, Refs: names, Layers: claims,
		Do: map[string]func() error{
			"fetch":  fetch,
			"layers": func() error { return s.Store.InstallLayers(staged) },
		},
		// A pull that fails (rather than crashes) keeps nothing.
		Undo: map[string]func() error{"fetch": removeClaimed, "layers": removeClaimed},
		Outcome: func() (sm.Write, error) {
			newImg.Staged = staged
			return s.Store.RegisterImage(newImg, &reg), nil
		},
		After: func() { s.removeFreed(append(slices.Clone(reg.Unused), reg.Freed...)) },
	}
	if _, err := s.Driver.Run(ctx, op); err != nil {
		return layer.Image{}, err
	}
	out, err := s.Store.ImageByID(desc.ID)
	out.Name = firstOr(names, desc.ID)
	return out, err
}

func containsAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return len(have) > 0 || len(want) == 0
}

func firstOr(names []string, def string) string {
	if len(names) > 0 {
		return names[0]
	}
	return def
}

// progressReader reports a layer's transfer as its bytes go by, at most
// every 1% or 200 ms.
type progressReader struct {
	r      io.Reader
	p      Progress
	report func(Progress)
}

func (r *progressReader) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	r.p.Done += int64(n)
	percent := int64(0)
	if r.p.Size > 0 {
		percent = r.p.Done * 100 / r.p.Size
	}
	if percent != r.p.lastPercent || time.Since(r.p.sentAt) > 200*time.Millisecond {
		r.p.lastPercent, r.p.sentAt = percent, time.Now()
		r.report(r.p)
	}
	return n, err
}

// Push sends the image ref names to its registry: its config and layer
// blobs as they were loaded or pulled (so its id and diffIDs are kept) and
// its manifest, returning the manifest's digest. A blob the registry has
// is not sent again.
func (s *Service) Push(ctx context.Context, req PushRequest, progress func(Progress)) (string, error) {
	d, err := s.push(ctx, req, progress)
	if err != nil {
		return "", fmt.Errorf("push %s: %w", errdefs.Quote(req.Ref), err)
	}
	return d, nil
}

func (s *Service) push(ctx context.Context, req PushRequest, progress func(Progress)) (string, error) {
	if progress == nil {
		progress = func(Progress) {}
	}
	img, err := s.Store.Image(req.Ref)
	if err != nil {
		return "", err
	}
	ls, err := s.Store.ImageLayers(img.ID)
	if err != nil {
		return "", err
	}
	manifest, err := Manifest(img.Config, ls)
	if err != nil {
		return "", err
	}
	call, err := s.dial(ctx, req.Ref, req.Auth)
	if err != nil {
		return "", err
	}
	defer call.close()
	if _, ok := call.ref.(name.Tag); !ok {
		return "", fmt.Errorf("push needs a tag, not a digest: %w", errdefs.ErrInvalidArgument)
	}
	core := &storeImage{config: img.Config, manifest: manifest, layers: ls, progress: progress, opened: map[string]bool{}}
	for _, l := range ls {
		progress(Progress{Digest: l.Blob.Digest, Size: l.Blob.Size, Status: StatusWaiting})
	}
	rimg, err := partial.CompressedToImage(core)
	if err != nil {
		return "", err
	}
	if err := remote.Write(call.ref, rimg, call.options...); err != nil {
		return "", call.registryError("push", err)
	}
	for _, l := range ls {
		if !core.wasOpened(l.Blob.Digest) {
			progress(Progress{Digest: l.Blob.Digest, Size: l.Blob.Size, Status: StatusExists})
		}
	}
	d, err := rimg.Digest()
	if err != nil {
		return "", err
	}
	return d.String(), nil
}

// storeImage is an image of the layer store as go-containerregistry's
// writer reads it: the kept config, manifest and layer blobs.
type storeImage struct {
	config, manifest []byte
	layers           []layer.ImageLayer
	progress         func(Progress)
	mu               sync.Mutex
	opened           map[string]bool
}

func (i *storeImage) RawConfigFile() ([]byte, error)      { return i.config, nil }
func (i *storeImage) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }
func (i *storeImage) RawManifest() ([]byte, error)        { return i.manifest, nil }

func (i *storeImage) wasOpened(d string) bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.opened[d]
}

func (i *storeImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	for _, l := range i.layers {
		if l.Blob.Digest == h.String() {
			return &storeLayer{l: l, img: i}, nil
		}
	}
	return nil, fmt.Errorf("blob %s is not a layer of the image: %w", h, errdefs.ErrNotFound)
}

type storeLayer struct {
	l   layer.ImageLayer
	img *storeImage
}

func (l *storeLayer) Digest() (v1.Hash, error) { return v1.NewHash(l.l.Blob.Digest) }
func (l *storeLayer) Size() (int64, error)     { return l.l.Blob.Size, nil }
func (l *storeLayer) MediaType() (types.MediaType, error) {
	return types.MediaType(l.l.Blob.MediaType), nil
}

func (l *storeLayer) Compressed() (io.ReadCloser, error) {
	f, err := openFile(l.l.Path)
	if err != nil {
		return nil, err
	}
	l.img.mu.Lock()
	l.img.opened[l.l.Blob.Digest] = true
	l.img.mu.Unlock()
	pr := &progressReader{r: f, p: Progress{Digest: l.l.Blob.Digest, Size: l.l.Blob.Size, Status: StatusUploading}, report: l.img.progress}
	return &pushedBlob{progressReader: pr, f: f}, nil
}

// pushedBlob reports "pushed" once the writer has read the whole blob.
type pushedBlob struct {
	*progressReader
	f    io.Closer
	done bool
}

func (b *pushedBlob) Read(p []byte) (int, error) {
	n, err := b.progressReader.Read(p)
	if err == io.EOF && !b.done {
		b.done = true
		b.report(Progress{Digest: b.p.Digest, Size: b.p.Size, Done: b.p.Done, Status: StatusPushed})
	}
	return n, err
}

func (b *pushedBlob) Close() error { return b.f.Close() }
