package imagearchive

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Names a docker save archive gives its files: <hex>.json for a config,
// <id>/layer.tar or <hex>.tar for a layer in the old format,
// blobs/sha256/<hex> in Docker 25's.
var (
	hexJSON = regexp.MustCompile(`^([0-9a-f]{64})\.json$`)
	blobHex = regexp.MustCompile(`^blobs/sha256/([0-9a-f]{64})$`)
)

// dockerImages reads a docker save archive: manifest.json, each image's
// config (checked against the digest its name carries) and the layer files
// it lists (which may be links to another image's).
func (a *Archive) dockerImages() ([]Image, error) {
	data, err := a.readSmall("manifest.json", true, "manifest.json")
	if err != nil {
		return nil, err
	}
	var manifest tarball.Manifest
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&manifest); err != nil {
		return nil, refuse("manifest.json does not parse: %v", err)
	}
	if err := refuseImages(len(manifest)); err != nil {
		return nil, err
	}
	var imgs []Image
	for i, d := range manifest {
		img, err := a.dockerImage(d)
		if err != nil {
			return nil, fmt.Errorf("image %d of manifest.json: %w", i+1, err)
		}
		imgs = append(imgs, img)
	}
	return mergeImages(imgs), nil
}

func (a *Archive) dockerImage(d tarball.Descriptor) (Image, error) {
	if len(d.LayerSources) > 0 {
		return Image{}, refuse("foreign layers (LayerSources) are not supported")
	}
	if err := checkLayerCount(len(d.Layers)); err != nil {
		return Image{}, err
	}
	cfgPath, err := cleanName(d.Config)
	if err != nil {
		return Image{}, err
	}
	config, err := a.readSmall(cfgPath, true, "config")
	if err != nil {
		return Image{}, err
	}
	if want := digestInName(cfgPath); want != "" {
		h, _ := v1.NewHash("sha256:" + want)
		if err := checkDigest(config, h, "config "+cfgPath); err != nil {
			return Image{}, err
		}
	}
	cfg, err := parseConfig(config, len(d.Layers))
	if err != nil {
		return Image{}, fmt.Errorf("config %s: %w", cfgPath, err)
	}
	img := Image{ID: configID(config), Config: config, ConfigFile: cfg, Names: names(d.RepoTags...)}
	for i, lp := range d.Layers {
		p, err := cleanName(lp)
		if err != nil {
			return Image{}, err
		}
		e, err := a.lookup(p, true)
		if err != nil {
			return Image{}, fmt.Errorf("layer %d: %w", i+1, err)
		}
		l := Layer{DiffID: cfg.RootFS.DiffIDs[i].String(), Size: -1, MediaType: string(types.DockerUncompressedLayer), path: p, links: true, a: a}
		// A blob named by its digest is checked against it; the old
		// format's <id>/layer.tar is checked by its diffID alone.
		if m := blobHex.FindStringSubmatch(p); m != nil {
			l.Digest, l.Size = "sha256:"+m[1], e.size
		}
		img.Layers = append(img.Layers, l)
	}
	return img, nil
}

// digestInName is the sha256 hex a config's archive path carries, if any.
func digestInName(p string) string {
	if m := blobHex.FindStringSubmatch(p); m != nil {
		return m[1]
	}
	if m := hexJSON.FindStringSubmatch(path.Base(p)); m != nil && !strings.Contains(p, "/") {
		return m[1]
	}
	return ""
}
