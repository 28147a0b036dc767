package layer

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	bolt "go.etcd.io/bbolt"

	"github.com/cairn-run/cairn/internal/errdefs"
)

// Image is a registered image: a named chain of layers.
type Image struct {
	Name      string
	DiffIDs   []string // "sha256:<hex>", bottom first
	ChainID   string   // "sha256:<hex>" of the top layer
	Size      int64    // sum of the layers' uncompressed tar sizes
	CreatedAt time.Time
}

func imageFromRecord(name string, rec imageRecord) Image {
	return Image{Name: name, DiffIDs: rec.DiffIDs, ChainID: rec.ChainID, Size: rec.Size, CreatedAt: rec.Created}
}

// Images lists every registered image, sorted by name (bbolt keeps keys in
// byte order, which is Go's string order).
func (s *Store) Images() ([]Image, error) {
	var out []Image
	err := s.db.View(func(tx *bolt.Tx) error {
		return imagesBucket(tx).ForEach(func(k, v []byte) error {
			var rec imageRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("decode image %q: %w", k, err)
			}
			out = append(out, imageFromRecord(string(k), rec))
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	return out, nil
}

// Image returns the image called name, or ErrNotFound.
func (s *Store) Image(name string) (Image, error) {
	var img Image
	err := s.db.View(func(tx *bolt.Tx) error {
		rec, err := imageRecordOf(tx, name)
		img = imageFromRecord(name, rec)
		return err
	})
	return img, err
}

// imageRecordOf reads the record of image name, or ErrNotFound.
func imageRecordOf(tx *bolt.Tx, name string) (imageRecord, error) {
	var rec imageRecord
	ok, err := getJSON(imagesBucket(tx), name, &rec)
	if err == nil && !ok {
		err = fmt.Errorf("image %q: %w", name, errdefs.ErrNotFound)
	}
	return rec, err
}

// RemoveImage unregisters the image. It refuses with ErrFailedPrecondition,
// naming the mounts, while any container mount was created from it, and
// deletes a layer directory once no image or child layer references it.
func (s *Store) RemoveImage(name string) error {
	var freed []string // cacheIDs whose records the commit deleted
	err := s.update(func(tx *bolt.Tx) error {
		// Everything is read and checked before the first write (schema.Op).
		rec, err := imageRecordOf(tx, name)
		if err != nil {
			return err
		}
		users, err := mountsUsingImage(tx, name)
		if err != nil {
			return err
		}
		if len(users) > 0 {
			return fmt.Errorf("image %q is used by mounts %s: %w", name, strings.Join(users, ", "), errdefs.ErrFailedPrecondition)
		}
		plan, err := planRelease(tx, rec.ChainID)
		if err != nil {
			return err
		}
		if err := imagesBucket(tx).Delete([]byte(name)); err != nil {
			return err
		}
		freed, err = plan.apply(tx)
		return err
	})
	if err != nil {
		return fmt.Errorf("remove image: %w", err)
	}
	// After the commit nothing points to these directories; if we crash
	// before they are gone, Open deletes them as orphans.
	for _, cacheID := range freed {
		if err := os.RemoveAll(s.layerDir(cacheID)); err != nil {
			return fmt.Errorf("remove image %q: delete layer dir: %w", name, err)
		}
	}
	return nil
}

// mountsUsingImage returns the ids of the mounts created from image, sorted.
func mountsUsingImage(tx *bolt.Tx, image string) ([]string, error) {
	var ids []string
	err := mountsBucket(tx).ForEach(func(k, v []byte) error {
		var rec mountRecord
		if err := json.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("decode mount %s: %w", k, err)
		}
		if rec.Image == image {
			ids = append(ids, string(k))
		}
		return nil
	})
	return ids, err
}

// releasePlan is what dropping one reference to a layer does: the layers
// whose records go (count reached zero, each dropping the reference it held
// on its parent) and the one whose count goes down.
type releasePlan struct {
	deleted []string // chainIDs
	freed   []string // their cacheIDs
	update  string   // chainID whose refcount drops, if any
	updated layerRecord
}

// planRelease reads what releasing one reference to chainID changes,
// without changing anything.
func planRelease(tx *bolt.Tx, chainID string) (releasePlan, error) {
	var plan releasePlan
	b := layersBucket(tx)
	for chainID != "" {
		rec, err := registeredLayer(b, chainID)
		if err != nil {
			return plan, err
		}
		rec.Refcount--
		if rec.Refcount > 0 {
			plan.update, plan.updated = chainID, rec
			return plan, nil
		}
		plan.deleted = append(plan.deleted, chainID)
		plan.freed = append(plan.freed, rec.CacheID)
		chainID = rec.Parent
	}
	return plan, nil
}

// apply writes the plan and returns the cacheIDs of the deleted records.
func (p releasePlan) apply(tx *bolt.Tx) ([]string, error) {
	b := layersBucket(tx)
	for _, chainID := range p.deleted {
		if err := b.Delete([]byte(chainID)); err != nil {
			return nil, err
		}
	}
	if p.update != "" {
		if err := putJSON(b, p.update, p.updated); err != nil {
			return nil, err
		}
	}
	return p.freed, nil
}

// registeredLayer reads the record of a layer something refers to.
func registeredLayer(b *bolt.Bucket, chainID string) (layerRecord, error) {
	var rec layerRecord
	ok, err := getJSON(b, chainID, &rec)
	if err != nil {
		return rec, err
	}
	if !ok {
		return rec, fmt.Errorf("layer %s is referenced but not registered (store inconsistent)", chainID)
	}
	return rec, nil
}

// layerDirs returns the directories of the chain ending at chainID, top
// first — the order overlay's lowerdir wants.
func (s *Store) layerDirs(tx *bolt.Tx, chainID string) ([]string, error) {
	var dirs []string
	b := layersBucket(tx)
	for chainID != "" {
		rec, err := registeredLayer(b, chainID)
		if err != nil {
			return nil, err
		}
		dirs = append(dirs, s.layerDir(rec.CacheID))
		chainID = rec.Parent
	}
	return dirs, nil
}

// chainIDs computes the chainID of every prefix of diffIDs (bottom first):
// chainID(1) = diffID(1), chainID(n) = sha256(chainID(n-1) + " " + diffID(n)),
// with the image spec's own identity package.
func chainIDs(diffIDs []string) []string {
	ds := make([]digest.Digest, len(diffIDs))
	for i, d := range diffIDs {
		ds[i] = digest.Digest(d)
	}
	out := make([]string, len(ds))
	for i, c := range identity.ChainIDs(ds) {
		out[i] = c.String()
	}
	return out
}
