package layer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"

	"github.com/cairn-run/cairn/internal/errdefs"
)

// BlobInfo describes a layer blob as it came (from an archive, a registry,
// a commit): the bytes whose digest a manifest names.
type BlobInfo struct {
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
	MediaType string `json:"mediaType"`
}

// mediaType is the OCI media type of a layer blob with this compression.
func (c compression) mediaType() string {
	switch c {
	case compressionGzip:
		return ocispec.MediaTypeImageLayerGzip
	case compressionZstd:
		return ocispec.MediaTypeImageLayerZstd
	}
	return ocispec.MediaTypeImageLayer
}

func (s *Store) blobPath(cacheID string) string { return filepath.Join(s.blobsDir, cacheID) }

// removeLayerFiles deletes a layer's directory and its blob.
func (s *Store) removeLayerFiles(cacheID string) error {
	if err := os.RemoveAll(s.layerDir(cacheID)); err != nil {
		return err
	}
	if err := os.Remove(s.blobPath(cacheID)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// removeOrphanBlobs deletes blobs/<cacheID> files no layer record points
// to, as removeOrphanLayers does for their directories.
func (s *Store) removeOrphanBlobs(referenced map[string]bool) error {
	entries, err := os.ReadDir(s.blobsDir)
	if err != nil {
		return fmt.Errorf("layer store: %w", err)
	}
	for _, e := range entries {
		if referenced[e.Name()] {
			continue
		}
		if err := os.RemoveAll(s.blobPath(e.Name())); err != nil {
			return fmt.Errorf("layer store: remove orphan blob %s: %w", e.Name(), err)
		}
	}
	return nil
}

// ImageLayer is one layer of an image as save and push send it: its
// diffID, its blob and the file that holds the blob.
type ImageLayer struct {
	ChainID, DiffID string
	Blob            BlobInfo
	// Path is blobs/<cacheID>.
	Path string
}

// ImageLayers returns the layers of image id, bottom first, with their
// blobs. A layer stored before blobs were kept has none:
// ErrFailedPrecondition (load or pull the image again).
func (s *Store) ImageLayers(id string) ([]ImageLayer, error) {
	img, err := s.ImageByID(id)
	if err != nil {
		return nil, err
	}
	chain := chainIDs(img.DiffIDs)
	out := make([]ImageLayer, len(chain))
	err = s.db.View(func(tx *bolt.Tx) error {
		b := layersBucket(tx)
		for i, c := range chain {
			rec, err := registeredLayer(b, c)
			if err != nil {
				return err
			}
			if rec.Blob == nil {
				return fmt.Errorf("layer %s of image %s was stored before layer blobs were kept; load or pull the image again: %w", rec.DiffID, id, errdefs.ErrFailedPrecondition)
			}
			out[i] = ImageLayer{ChainID: c, DiffID: rec.DiffID, Blob: *rec.Blob, Path: s.blobPath(rec.CacheID)}
		}
		return nil
	})
	return out, err
}

// NewCacheID returns a fresh layer directory name (32 random hex), for a
// caller whose intent names the directory before the layer is staged.
func NewCacheID() (string, error) { return newCacheID() }
