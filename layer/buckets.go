package layer

import (
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cairn-run/cairn/internal/schema"
)

// The record encodings of the layer store. The buckets (images/, layers/,
// mounts/) and their place in the daemon's bbolt file are drawn and owned by
// internal/schema; this package never opens the journal's buckets.
//
//	images/  <name>    -> imageRecord
//	layers/  <chainID> -> layerRecord
//	mounts/  <mountID> -> mountRecord
//
// Invariants, each kept by a single transaction and verified by CheckTx:
//   - every image's chainID has a layers/ entry; every layer's parent too;
//   - refcount = number of images/ records whose chainID is this layer +
//     number of layers whose parent is this layer; the entry (and then its
//     directory) goes when it reaches 0;
//   - every mount's chainID has a layers/ entry;
//   - an image a mounts/ record names (by id, or for mounts made before
//     image ids by name) cannot be deleted; its other names can be removed.
//
// An images/ key is a name: the canonical reference of internal/imageref
// ("docker.io/library/busybox:latest"), the image id ("sha256:<hex>") of an
// image that has no name (a dangling image), or, for an image imported
// before names were normalized (schema 2), the name as it was given. One
// image (one id) may have several keys, one record each.
//
// Records are JSON and decoded leniently (unknown fields ignored), so adding a
// field needs no migration; renaming or removing one does, and must come with
// a migration in internal/schema.

// imageRecord: {"id": image id, "sha256:<hex>" of the config (absent in
// records written before image configs: see recordID), "diffIDs":
// ["sha256:<hex>",...] (bottom first), "chainID": "sha256:<hex>" (top of the
// chain), "size": sum of the layers' sizes, "created": RFC 3339, when this
// name was registered, "config": the image config as loaded, base64 (its
// bytes exactly, since the id is their digest; absent before image
// configs)}.
type imageRecord struct {
	ID      string    `json:"id,omitempty"`
	DiffIDs []string  `json:"diffIDs"`
	ChainID string    `json:"chainID"`
	Size    int64     `json:"size"`
	Created time.Time `json:"created"`
	Config  []byte    `json:"config,omitempty"`
}

// layerRecord: {"diffID", "parent": chainID of the layer below or absent,
// "cacheID": 32 hex, the directory <dir>/layers/<cacheID>, "size":
// uncompressed tar bytes, "refcount": images + child layers using it}.
type layerRecord struct {
	DiffID   string `json:"diffID"`
	Parent   string `json:"parent,omitempty"`
	CacheID  string `json:"cacheID"`
	Size     int64  `json:"size"`
	Refcount int64  `json:"refcount"`
}

// mountRecord: {"image": the images/ key it was created from, "imageID":
// that image's id (absent in mounts made before image ids), "chainID": its
// top layer (lower dirs follow parents), "created"}.
type mountRecord struct {
	Image   string    `json:"image"`
	ImageID string    `json:"imageID,omitempty"`
	ChainID string    `json:"chainID"`
	Created time.Time `json:"created"`
}

func imagesBucket(tx *bolt.Tx) *bolt.Bucket { return schema.Images(tx) }
func layersBucket(tx *bolt.Tx) *bolt.Bucket { return schema.Layers(tx) }
func mountsBucket(tx *bolt.Tx) *bolt.Bucket { return schema.Mounts(tx) }

// getJSON decodes the value under key into v; it reports false if the key is
// absent.
func getJSON(b *bolt.Bucket, key string, v any) (bool, error) {
	raw := b.Get([]byte(key))
	if raw == nil {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return true, fmt.Errorf("decode record %q: %w", key, err)
	}
	return true, nil
}

func putJSON(b *bolt.Bucket, key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	return b.Put([]byte(key), raw)
}
