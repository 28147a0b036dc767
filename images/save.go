package images

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cairn-run/cairn/internal/errdefs"
	"github.com/cairn-run/cairn/internal/imageref"
	"github.com/cairn-run/cairn/layer"
)

// savedImage is one image of a save: its record, the names asked for and
// its manifest as written.
type savedImage struct {
	img      layer.Image
	names    []string // canonical tags asked for
	layers   []layer.ImageLayer
	manifest []byte
}

// annotationImageName is the annotation containerd and Docker 25 put on an
// index entry for the image's full name (org.opencontainers.image.ref.name
// holds the tag only).
const annotationImageName = "io.containerd.image.name"

// Manifest builds the OCI image manifest of an image whose config and
// layer blobs are kept: the config as it was loaded (so the image id is
// kept) and each layer's original blob.
func Manifest(config []byte, layers []layer.ImageLayer) ([]byte, error) {
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(config),
			Size: int64(len(config))},
		Layers: make([]ocispec.Descriptor, 0, len(layers)),
	}
	for _, l := range layers {
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: l.Blob.MediaType, Digest: digest.Digest(l.Blob.Digest), Size: l.Blob.Size})
	}
	return json.Marshal(m)
}

// Save writes the images refs name into w as one tar that is both an OCI
// image layout (oci-layout, index.json, blobs/sha256/) and a docker save
// archive (manifest.json naming the same blobs), as Docker 25 writes it:
// skopeo reads it as oci-archive: and docker-archive:, `docker load` and
// `cairn image load` as a docker save archive. Each image's config and
// layer blobs are the very bytes it was loaded or pulled with, so its id
// and diffIDs are kept. Every ref is resolved before the first byte is
// written; a blob shared by images is written once.
func (s *Service) Save(ctx context.Context, refs []string, w io.Writer) error {
	if len(refs) == 0 {
		return fmt.Errorf("save: no image named: %w", errdefs.ErrInvalidArgument)
	}
	var saved []*savedImage
	for _, ref := range refs {
		img, err := s.Store.Image(ref)
		if err != nil {
			return fmt.Errorf("save %s: %w", errdefs.Quote(ref), err)
		}
		i := slices.IndexFunc(saved, func(x *savedImage) bool { return x.img.ID == img.ID })
		if i < 0 {
			ls, err := s.Store.ImageLayers(img.ID)
			if err != nil {
				return fmt.Errorf("save %s: %w", errdefs.Quote(ref), err)
			}
			m, err := Manifest(img.Config, ls)
			if err != nil {
				return fmt.Errorf("save %s: %w", errdefs.Quote(ref), err)
			}
			saved = append(saved, &savedImage{img: img, layers: ls, manifest: m})
			i = len(saved) - 1
		}
		// A ref by id saves the image untagged, as docker save does.
		if img.Name != img.ID && !imageref.IsDigested(img.Name) && !slices.Contains(saved[i].names, img.Name) {
			saved[i].names = append(saved[i].names, img.Name)
		}
	}
	return writeSave(ctx, w, saved)
}

func writeSave(ctx context.Context, w io.Writer, saved []*savedImage) error {
	tw := tar.NewWriter(w)
	now := time.Unix(0, 0)
	written := map[string]bool{}
	dir := func(name string) error {
		if written[name] {
			return nil
		}
		written[name] = true
		return tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: now, Format: tar.FormatPAX})
	}
	file := func(name string, data []byte) error {
		if written[name] {
			return nil
		}
		written[name] = true
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data)), ModTime: now, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	blobName := func(d string) string { return "blobs/sha256/" + strings.TrimPrefix(d, "sha256:") }
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := dir(d); err != nil {
			return err
		}
	}
	index := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex}
	type dockerEntry struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	var docker []dockerEntry
	for _, si := range saved {
		if err := ctx.Err(); err != nil {
			return err
		}
		entry := dockerEntry{Config: blobName(si.img.ID), RepoTags: []string{}}
		if err := file(entry.Config, si.img.Config); err != nil {
			return err
		}
		for _, l := range si.layers {
			name := blobName(l.Blob.Digest)
			entry.Layers = append(entry.Layers, name)
			if err := copyBlob(ctx, tw, name, l, written); err != nil {
				return err
			}
		}
		md := digest.FromBytes(si.manifest)
		if err := file(blobName(md.String()), si.manifest); err != nil {
			return err
		}
		desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: md, Size: int64(len(si.manifest))}
		if len(si.names) == 0 {
			index.Manifests = append(index.Manifests, desc)
		}
		for _, n := range si.names {
			_, tag := imageref.Split(n)
			d := desc
			d.Annotations = map[string]string{annotationImageName: n, ocispec.AnnotationRefName: tag}
			index.Manifests = append(index.Manifests, d)
			entry.RepoTags = append(entry.RepoTags, imageref.Familiar(n))
		}
		docker = append(docker, entry)
	}
	indexJSON, err := json.Marshal(index)
	if err != nil {
		return err
	}
	dockerJSON, err := json.Marshal(docker)
	if err != nil {
		return err
	}
	layoutJSON, _ := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	for _, f := range []struct {
		name string
		data []byte
	}{{ocispec.ImageLayoutFile, layoutJSON}, {"index.json", indexJSON}, {"manifest.json", dockerJSON}} {
		if err := file(f.name, f.data); err != nil {
			return err
		}
	}
	return tw.Close()
}

// copyBlob writes a layer blob from the store into the tar, checking on
// the way that the file still holds what its record says.
func copyBlob(ctx context.Context, tw *tar.Writer, name string, l layer.ImageLayer, written map[string]bool) error {
	if written[name] {
		return nil
	}
	written[name] = true
	f, err := os.Open(l.Path)
	if err != nil {
		return fmt.Errorf("layer blob %s: %w", l.Blob.Digest, err)
	}
	defer f.Close()
	if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: l.Blob.Size, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}); err != nil {
		return err
	}
	v := digest.Digest(l.Blob.Digest).Verifier()
	n, err := io.Copy(io.MultiWriter(tw, v), &ctxReader{ctx: ctx, r: io.LimitReader(f, l.Blob.Size)})
	if err != nil {
		return err
	}
	if n != l.Blob.Size || !v.Verified() {
		return fmt.Errorf("layer blob %s in the store does not match its record (%d bytes of %d): %w", l.Blob.Digest, n, l.Blob.Size, errBlobChanged)
	}
	return nil
}

// ctxReader stops a copy when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// errBlobChanged: a kept blob no longer matches its record (the disk
// changed under the store); the client sees an internal error.
var errBlobChanged = errors.New("store damaged")

func openFile(path string) (*os.File, error) { return os.Open(path) }
