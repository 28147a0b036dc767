package layer

import (
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Bucket layout owned by package layer inside the daemon's bbolt DB. The other
// top-level buckets (journal/, containers/, names/, meta/) belong to the
// journal; this package never opens them.
//
//	images/
//	  <name> -> imageRecord (JSON)
//	           {"diffIDs":["sha256:<hex>",...],   bottom first
//	            "chainID":"sha256:<hex>",         top of the chain
//	            "size":<int64>,                   sum of the layers' sizes
//	            "created":"<RFC 3339>"}
//	layers/
//	  <chainID> -> layerRecord (JSON)
//	           {"diffID":"sha256:<hex>",
//	            "parent":"sha256:<hex>" | "",     chainID of the layer below
//	            "cacheID":"<32 hex>",             directory <dir>/layers/<cacheID>
//	            "size":<int64>,                   uncompressed tar bytes
//	            "refcount":<int64>}               images + child layers using it
//	mounts/
//	  <mountID> -> mountRecord (JSON)
//	           {"image":"<name>",                 the image it was created from
//	            "chainID":"sha256:<hex>",         top layer (lower dirs follow parents)
//	            "created":"<RFC 3339>"}
//
// Invariants, each kept by a single transaction:
//   - every image's chainID has a layers/ entry; every layer's parent too;
//   - refcount = number of images whose chainID is this layer + number of
//     layers whose parent is this layer; the entry (and then its directory)
//     goes when it reaches 0;
//   - an image named by a mounts/ record cannot be removed.
//
// Records are JSON and decoded leniently (unknown fields ignored), so adding a
// field needs no migration; renaming or removing one does, and must come with
// a bump of the schema version kept in meta/ by the journal.
var (
	bucketImages = []byte("images")
	bucketLayers = []byte("layers")
	bucketMounts = []byte("mounts")
)

type imageRecord struct {
	DiffIDs []string  `json:"diffIDs"`
	ChainID string    `json:"chainID"`
	Size    int64     `json:"size"`
	Created time.Time `json:"created"`
}

type layerRecord struct {
	DiffID   string `json:"diffID"`
	Parent   string `json:"parent,omitempty"`
	CacheID  string `json:"cacheID"`
	Size     int64  `json:"size"`
	Refcount int64  `json:"refcount"`
}

type mountRecord struct {
	Image   string    `json:"image"`
	ChainID string    `json:"chainID"`
	Created time.Time `json:"created"`
}

// createBuckets makes sure the three buckets exist; called once by Open.
func createBuckets(tx *bolt.Tx) error {
	for _, name := range [][]byte{bucketImages, bucketLayers, bucketMounts} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	return nil
}

// The getters rely on Open having created the buckets; every Store is made by
// Open, so they never return nil.
func imagesBucket(tx *bolt.Tx) *bolt.Bucket { return tx.Bucket(bucketImages) }
func layersBucket(tx *bolt.Tx) *bolt.Bucket { return tx.Bucket(bucketLayers) }
func mountsBucket(tx *bolt.Tx) *bolt.Bucket { return tx.Bucket(bucketMounts) }

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
