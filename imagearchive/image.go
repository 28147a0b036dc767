package imagearchive

import (
	"bytes"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"

	"github.com/cairn-run/cairn/internal/errdefs"
	"github.com/cairn-run/cairn/internal/imageref"
)

// Image is one image of an archive, its metadata checked.
type Image struct {
	// ID is the image id: the sha256 of Config.
	ID string
	// Config is the image config JSON as the archive holds it; ConfigFile
	// is it parsed.
	Config     []byte
	ConfigFile *v1.ConfigFile
	// Names are the canonical tags the archive gives the image (RepoTags,
	// or an index's image name annotations); none for an untagged image.
	Names []string
	// Layers, bottom first, with the diffIDs of the config.
	Layers []Layer
}

// DiffIDs are the image's layers' diffIDs, bottom first.
func (img Image) DiffIDs() []string {
	out := make([]string, len(img.Layers))
	for i, l := range img.Layers {
		out[i] = l.DiffID
	}
	return out
}

// Layer is one layer blob of an image.
type Layer struct {
	// DiffID is what the config says the uncompressed tar hashes to.
	DiffID string
	// Digest and Size are the blob's as the manifest names them; "" and -1
	// when the format does not say (old docker save archives).
	Digest    string
	Size      int64
	MediaType string
	// path is the blob's archive path.
	path  string
	links bool
	a     *Archive
}

// Open returns the blob's bytes as the archive holds them (compressed or
// not); the layer store checks them as it extracts them.
func (l Layer) Open() (io.Reader, error) {
	return l.a.open(l.path, l.links)
}

// Images reads every image of the archive: an OCI layout (index.json;
// Docker 25's archives carry one next to manifest.json), else a docker save
// archive (manifest.json). Each image is complete: its config read and
// checked, each layer blob present with the size its descriptor says.
func (a *Archive) Images() ([]Image, error) {
	var imgs []Image
	var err error
	switch {
	case a.has("index.json"):
		imgs, err = a.ociImages()
	case a.has("manifest.json"):
		imgs, err = a.dockerImages()
	default:
		return nil, refuse("neither index.json (an OCI layout) nor manifest.json (docker save) is in it; a root filesystem tar is imported with `cairn image import`")
	}
	if err != nil {
		return nil, err
	}
	if len(imgs) == 0 {
		return nil, refuse("it holds no image for %s", platformName(wantPlatform()))
	}
	return imgs, nil
}

// wantPlatform is the platform of the images this daemon runs.
func wantPlatform() v1.Platform { return v1.Platform{OS: "linux", Architecture: runtime.GOARCH} }

func platformName(p v1.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// parseConfig checks an image config and the diffIDs it lists against the
// layers that carry them.
func parseConfig(data []byte, layers int) (*v1.ConfigFile, error) {
	cfg, err := v1.ParseConfigFile(bytes.NewReader(data))
	if err != nil {
		return nil, refuse("the image config does not parse: %v", err)
	}
	if cfg.RootFS.Type != "layers" {
		return nil, refuse("the image config's rootfs type is %.40q, not \"layers\"", cfg.RootFS.Type)
	}
	if len(cfg.RootFS.DiffIDs) != layers {
		return nil, refuse("the image config lists %d diffIDs for %d layers", len(cfg.RootFS.DiffIDs), layers)
	}
	for _, d := range cfg.RootFS.DiffIDs {
		if d.Algorithm != "sha256" {
			return nil, refuse("diffID %.80s is not a sha256 digest", d.String())
		}
	}
	if cfg.OS != "" && cfg.OS != "linux" {
		return nil, refuse("the image is for %.40s, not linux", cfg.OS)
	}
	return cfg, nil
}

// checkLayerCount refuses an image without layers or with more than
// MaxLayers.
func checkLayerCount(n int) error {
	switch {
	case n == 0:
		return refuse("an image without layers cannot be run")
	case n > MaxLayers:
		return refuse("an image with %d layers: overlayfs stacks at most %d", n, MaxLayers)
	}
	return nil
}

// layerMediaTypes are the layer blobs an image may have.
var layerMediaTypes = []types.MediaType{
	types.OCILayer, types.OCILayerZStd, types.OCIUncompressedLayer, types.DockerLayer, types.DockerUncompressedLayer,
}

func checkLayerMediaType(mt types.MediaType) error {
	switch {
	case slices.Contains(layerMediaTypes, mt):
		return nil
	case !mt.IsDistributable():
		return refuse("non-distributable (foreign) layer %.100q is not supported", mt)
	}
	return refuse("unknown layer media type %.100q", mt)
}

// configID is the image id of a config.
func configID(data []byte) string { return digest.FromBytes(data).String() }

// checkDigest compares data with a descriptor's digest.
func checkDigest(data []byte, want v1.Hash, what string) error {
	if want.Algorithm != "sha256" {
		return refuse("%s digest %.80s is not sha256", what, want.String())
	}
	if got := digest.FromBytes(data).String(); got != want.String() {
		return refuse("%s hashes to %s, its descriptor names %s", what, got, want)
	}
	return nil
}

// names normalizes the names an archive gives an image, dropping those
// that are no name (a bare tag in an OCI layout's ref.name) and keeping
// the order.
func names(raw ...string) []string {
	var out []string
	for _, n := range raw {
		if n == "" || !strings.ContainsAny(n, ":/") {
			continue // a bare tag ("v1") names no repository
		}
		canonical, err := imageref.NormalizeTag(n)
		if err != nil || slices.Contains(out, canonical) {
			continue
		}
		out = append(out, canonical)
	}
	return out
}

// mergeImages joins the names of one image listed more than once (an
// index often lists one manifest under several names).
func mergeImages(imgs []Image) []Image {
	var out []Image
	for _, img := range imgs {
		i := slices.IndexFunc(out, func(o Image) bool { return o.ID == img.ID })
		if i < 0 {
			out = append(out, img)
			continue
		}
		for _, n := range img.Names {
			if !slices.Contains(out[i].Names, n) {
				out[i].Names = append(out[i].Names, n)
			}
		}
	}
	return out
}

// refuseImages bounds the images of an archive.
func refuseImages(n int) error {
	if n > MaxImages {
		return fmt.Errorf("image archive: more than %d images: %w", MaxImages, errdefs.ErrResourceExhausted)
	}
	return nil
}
