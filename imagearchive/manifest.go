package imagearchive

import (
	"bytes"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// FromManifest checks an image manifest and its config as a registry
// served them, with the rules an archive's are checked by (sizes, layer
// count, media types, the config's digest and diffIDs), and returns the
// image they describe. Its layers have no archive: Open fails; the caller
// fetches each blob by its digest and the layer store checks it.
func FromManifest(manifest, config []byte) (Image, error) {
	m, err := CheckManifest(manifest)
	if err != nil {
		return Image{}, err
	}
	if err := checkDigest(config, m.Config.Digest, "the config"); err != nil {
		return Image{}, err
	}
	cfg, err := parseConfig(config, len(m.Layers))
	if err != nil {
		return Image{}, err
	}
	img := Image{ID: configID(config), Config: config, ConfigFile: cfg}
	for i, l := range m.Layers {
		img.Layers = append(img.Layers, Layer{DiffID: cfg.RootFS.DiffIDs[i].String(), Digest: l.Digest.String(), Size: l.Size, MediaType: string(l.MediaType)})
	}
	return img, nil
}

// CheckManifest checks an image manifest before anything it names is
// fetched: its size, media types, layer count, digests and sizes.
func CheckManifest(manifest []byte) (*v1.Manifest, error) {
	if len(manifest) > MaxMetadataBytes {
		return nil, refuse("the manifest is %d bytes, more than %d", len(manifest), MaxMetadataBytes)
	}
	m, err := v1.ParseManifest(bytes.NewReader(manifest))
	if err != nil {
		return nil, refuse("the manifest does not parse: %v", err)
	}
	switch m.MediaType {
	case "", types.OCIManifestSchema1, types.DockerManifestSchema2:
	default:
		return nil, refuse("manifest media type %.100q is not an image manifest", m.MediaType)
	}
	if err := checkLayerCount(len(m.Layers)); err != nil {
		return nil, err
	}
	if m.Config.Digest.Algorithm != "sha256" || len(m.Config.Digest.Hex) != 64 {
		return nil, refuse("config digest %.80s is not sha256", m.Config.Digest.String())
	}
	if m.Config.Size < 0 || m.Config.Size > MaxMetadataBytes {
		return nil, refuse("the config is %d bytes, more than %d", m.Config.Size, MaxMetadataBytes)
	}
	for _, l := range m.Layers {
		if err := checkLayerMediaType(l.MediaType); err != nil {
			return nil, err
		}
		if l.Digest.Algorithm != "sha256" || len(l.Digest.Hex) != 64 {
			return nil, refuse("layer digest %.80s is not sha256", l.Digest.String())
		}
		if l.Size < 0 {
			return nil, refuse("layer %s has a negative size", l.Digest)
		}
	}
	return m, nil
}
