package imagearchive

import (
	"bytes"
	"encoding/json"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Annotations that name an image in an OCI index: containerd's and Docker's
// full name, and the layout's reference name (a full name, or a bare tag).
const (
	annotationImageName = "io.containerd.image.name"
	annotationRefName   = "org.opencontainers.image.ref.name"
)

// ociImages reads an OCI image layout: oci-layout, index.json, and the
// manifests it names (through nested indexes, choosing the daemon's
// platform), with their configs.
func (a *Archive) ociImages() ([]Image, error) {
	layout, err := a.readSmall("oci-layout", false, "oci-layout")
	if err != nil {
		return nil, err
	}
	var lv struct {
		Version string `json:"imageLayoutVersion"`
	}
	if err := json.Unmarshal(layout, &lv); err != nil || lv.Version != "1.0.0" {
		return nil, refuse("oci-layout is not an image layout of version 1.0.0")
	}
	data, err := a.readSmall("index.json", false, "index.json")
	if err != nil {
		return nil, err
	}
	index, err := parseIndex(data, "index.json")
	if err != nil {
		return nil, err
	}
	var imgs []Image
	for _, desc := range index.Manifests {
		found, err := a.ociDescriptor(desc, names(desc.Annotations[annotationImageName], desc.Annotations[annotationRefName]), 0)
		if err != nil {
			return nil, err
		}
		imgs = append(imgs, found...)
		if err := refuseImages(len(imgs)); err != nil {
			return nil, err
		}
	}
	return mergeImages(imgs), nil
}

func parseIndex(data []byte, what string) (*v1.IndexManifest, error) {
	index, err := v1.ParseIndexManifest(bytes.NewReader(data))
	if err != nil {
		return nil, refuse("%s does not parse: %v", what, err)
	}
	if index.SchemaVersion != 2 {
		return nil, refuse("%s has schema version %d, not 2", what, index.SchemaVersion)
	}
	if index.MediaType != "" && !index.MediaType.IsIndex() {
		return nil, refuse("%s says it is a %.100q, not an index", what, index.MediaType)
	}
	return index, nil
}

// blobPath is where a layout keeps a blob: blobs/<algorithm>/<hex>.
func blobPath(h v1.Hash) (string, error) {
	if h.Algorithm != "sha256" {
		return "", refuse("digest %.80s is not sha256", h.String())
	}
	return "blobs/sha256/" + h.Hex, nil
}

// readBlob reads a metadata blob a descriptor names and checks its size
// and digest.
func (a *Archive) readBlob(desc v1.Descriptor, what string) ([]byte, error) {
	p, err := blobPath(desc.Digest)
	if err != nil {
		return nil, err
	}
	if desc.Size < 0 || desc.Size > MaxMetadataBytes {
		return nil, refuse("%s %s is %d bytes, more than %d", what, desc.Digest, desc.Size, MaxMetadataBytes)
	}
	data, err := a.readSmall(p, false, what)
	if err != nil {
		return nil, err
	}
	if int64(len(data)) != desc.Size {
		return nil, refuse("%s %s is %d bytes, its descriptor says %d", what, desc.Digest, len(data), desc.Size)
	}
	if err := checkDigest(data, desc.Digest, what); err != nil {
		return nil, err
	}
	return data, nil
}

// ociDescriptor reads what an index names: an image manifest, or an index
// whose manifests for the daemon's platform are read in turn.
func (a *Archive) ociDescriptor(desc v1.Descriptor, imgNames []string, depth int) ([]Image, error) {
	switch {
	case desc.MediaType == types.OCIManifestSchema1 || desc.MediaType == types.DockerManifestSchema2:
		img, err := a.ociImage(desc, imgNames)
		if err != nil {
			return nil, err
		}
		return []Image{img}, nil
	case desc.MediaType.IsIndex():
		if depth >= maxIndexDepth {
			return nil, refuse("indexes nested more than %d deep", maxIndexDepth)
		}
		data, err := a.readBlob(desc, "index")
		if err != nil {
			return nil, err
		}
		index, err := parseIndex(data, "index "+desc.Digest.String())
		if err != nil {
			return nil, err
		}
		want := wantPlatform()
		for _, d := range index.Manifests {
			if d.Platform == nil || d.Platform.OS != want.OS || d.Platform.Architecture != want.Architecture {
				continue // another platform, or an attestation (unknown/unknown)
			}
			return a.ociDescriptor(d, imgNames, depth+1)
		}
		return nil, nil
	case desc.MediaType.IsSchema1():
		return nil, refuse("schema 1 manifest %s is not supported", desc.Digest)
	}
	return nil, refuse("unknown media type %.100q of %s", desc.MediaType, desc.Digest)
}

// ociImage reads one image manifest and its config.
func (a *Archive) ociImage(desc v1.Descriptor, imgNames []string) (Image, error) {
	data, err := a.readBlob(desc, "manifest")
	if err != nil {
		return Image{}, err
	}
	m, err := v1.ParseManifest(bytes.NewReader(data))
	if err != nil {
		return Image{}, refuse("manifest %s does not parse: %v", desc.Digest, err)
	}
	if m.SchemaVersion != 2 {
		return Image{}, refuse("manifest %s has schema version %d, not 2", desc.Digest, m.SchemaVersion)
	}
	if m.MediaType != "" && m.MediaType != desc.MediaType {
		return Image{}, refuse("manifest %s says it is a %.100q, its descriptor a %.100q", desc.Digest, m.MediaType, desc.MediaType)
	}
	if mt := m.Config.MediaType; mt != types.OCIConfigJSON && mt != types.DockerConfigJSON {
		return Image{}, refuse("manifest %s: unknown config media type %.100q (not an image)", desc.Digest, mt)
	}
	if err := checkLayerCount(len(m.Layers)); err != nil {
		return Image{}, fmt.Errorf("manifest %s: %w", desc.Digest, err)
	}
	config, err := a.readBlob(m.Config, "config")
	if err != nil {
		return Image{}, err
	}
	cfg, err := parseConfig(config, len(m.Layers))
	if err != nil {
		return Image{}, fmt.Errorf("config %s: %w", m.Config.Digest, err)
	}
	img := Image{ID: configID(config), Config: config, ConfigFile: cfg, Names: imgNames}
	for i, l := range m.Layers {
		if err := checkLayerMediaType(l.MediaType); err != nil {
			return Image{}, err
		}
		p, err := blobPath(l.Digest)
		if err != nil {
			return Image{}, err
		}
		e, err := a.lookup(p, false)
		if err != nil {
			return Image{}, fmt.Errorf("layer %s of manifest %s: %w", l.Digest, desc.Digest, err)
		}
		if e.size != l.Size {
			return Image{}, refuse("layer %s is %d bytes, its descriptor says %d", l.Digest, e.size, l.Size)
		}
		img.Layers = append(img.Layers, Layer{
			DiffID: cfg.RootFS.DiffIDs[i].String(), Digest: l.Digest.String(), Size: l.Size, MediaType: string(l.MediaType),
			path: p, a: a,
		})
	}
	return img, nil
}
