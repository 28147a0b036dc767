package layer

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	bolt "go.etcd.io/bbolt"

	"github.com/cairn-run/cairn/internal/schema"
)

// ErrStoreInconsistent means the layer store's records break one of its
// invariants (see buckets.go).
var ErrStoreInconsistent = errors.New("layer store records are inconsistent")

// Check is the layer store's verification, for the journal's Open and the
// offline check (Options.Checks).
var Check = schema.Check{Name: "layer store", Run: CheckTx, Repair: RepairTx}

// CheckTx verifies the invariants of the layer store's records in tx and
// changes nothing: every record decodes; every image's chainID and every
// layer's parent is registered; each layer's refcount equals the images
// whose chainID it is plus the layers whose parent it is; every mount's
// chainID is registered. It reports every violation it finds.
func CheckTx(tx *bolt.Tx) error {
	st, problems := readStore(tx)
	problems = append(problems, st.violations()...)
	if len(problems) > 0 {
		return fmt.Errorf("%w: %w", ErrStoreInconsistent, errors.Join(problems...))
	}
	return nil
}

// storeRecords is every record of the three buckets, decoded.
type storeRecords struct {
	images map[string]imageRecord
	layers map[string]layerRecord
	mounts map[string]mountRecord
}

// readStore decodes every record; the ones that do not decode are problems.
func readStore(tx *bolt.Tx) (storeRecords, []error) {
	st := storeRecords{images: map[string]imageRecord{}, layers: map[string]layerRecord{}, mounts: map[string]mountRecord{}}
	var problems []error
	read := func(b *bolt.Bucket, name []byte, into func(k string, v []byte) error) {
		if b == nil {
			problems = append(problems, fmt.Errorf("bucket %s is missing", name))
			return
		}
		_ = b.ForEach(func(k, v []byte) error {
			if err := into(string(k), v); err != nil {
				problems = append(problems, fmt.Errorf("%s %.80q: %w", name, k, err))
			}
			return nil
		})
	}
	read(imagesBucket(tx), schema.BucketImages, func(k string, v []byte) error {
		var rec imageRecord
		err := json.Unmarshal(v, &rec)
		if err == nil {
			st.images[k] = rec
		}
		return err
	})
	read(layersBucket(tx), schema.BucketLayers, func(k string, v []byte) error {
		var rec layerRecord
		err := json.Unmarshal(v, &rec)
		if err == nil {
			st.layers[k] = rec
		}
		return err
	})
	read(mountsBucket(tx), schema.BucketMounts, func(k string, v []byte) error {
		var rec mountRecord
		err := json.Unmarshal(v, &rec)
		if err == nil {
			st.mounts[k] = rec
		}
		return err
	})
	return st, problems
}

// violations lists every broken invariant, in a stable order.
func (st storeRecords) violations() []error {
	var problems []error
	for _, name := range sortedKeys(st.images) {
		rec := st.images[name]
		if !st.hasLayer(rec.ChainID) {
			problems = append(problems, fmt.Errorf("image %q: layer %s is not registered", name, rec.ChainID))
		}
		if rec.ID != "" && len(rec.Config) > 0 && ConfigID(rec.Config) != rec.ID {
			problems = append(problems, fmt.Errorf("image %q: its config hashes to %s, not its id %s", name, ConfigID(rec.Config), rec.ID))
		}
		if len(rec.DiffIDs) > 0 && chainIDs(rec.DiffIDs)[len(rec.DiffIDs)-1] != rec.ChainID {
			problems = append(problems, fmt.Errorf("image %q: its diffIDs chain to %s, not its chainID %s", name, chainIDs(rec.DiffIDs)[len(rec.DiffIDs)-1], rec.ChainID))
		}
	}
	for _, chainID := range sortedKeys(st.layers) {
		rec := st.layers[chainID]
		if rec.Parent == "" {
			continue
		}
		if !st.hasLayer(rec.Parent) {
			problems = append(problems, fmt.Errorf("layer %s: parent %s is not registered", chainID, rec.Parent))
		}
	}
	uses := st.uses()
	for _, chainID := range sortedKeys(st.layers) {
		if rec := st.layers[chainID]; rec.Refcount != uses[chainID] {
			problems = append(problems, fmt.Errorf("layer %s: refcount %d, but %d images and layers use it", chainID, rec.Refcount, uses[chainID]))
		}
	}
	for _, id := range sortedKeys(st.mounts) {
		if rec := st.mounts[id]; !st.hasLayer(rec.ChainID) {
			problems = append(problems, fmt.Errorf("mount %s: layer %s is not registered", id, rec.ChainID))
		}
	}
	return problems
}

func (st storeRecords) hasLayer(chainID string) bool {
	_, ok := st.layers[chainID]
	return ok
}

// uses counts, for each layer, the images and layers that use it.
func (st storeRecords) uses() map[string]int64 {
	uses := map[string]int64{}
	for _, rec := range st.images {
		uses[rec.ChainID]++
	}
	for _, rec := range st.layers {
		if rec.Parent != "" {
			uses[rec.Parent]++
		}
	}
	return uses
}

// RepairTx makes the records in tx satisfy CheckTx after a salvage copied
// what was readable of them: it deletes records that do not decode, layers
// whose chain is broken or that nothing uses, images and mounts on an
// unregistered layer, and sets every refcount to its real use. Layer
// directories that lose their record this way are deleted as orphans by the
// next Open of the store. It returns what it dropped or changed.
func RepairTx(tx *bolt.Tx) ([]string, error) {
	var done []string
	for _, name := range [][]byte{schema.BucketImages, schema.BucketLayers, schema.BucketMounts} {
		b := tx.Bucket(name)
		if b == nil {
			if _, err := tx.CreateBucket(name); err != nil {
				return done, err
			}
			done = append(done, fmt.Sprintf("bucket %s was missing: created empty", name))
		}
	}
	st, problems := readStore(tx)
	for _, p := range problems {
		done = append(done, p.Error()+": dropped")
	}
	// Drop every undecodable record: keep only what readStore decoded.
	drop := func(b *bolt.Bucket, keep func(string) bool) error {
		var bad [][]byte
		_ = b.ForEach(func(k, _ []byte) error {
			if !keep(string(k)) {
				bad = append(bad, append([]byte(nil), k...))
			}
			return nil
		})
		for _, k := range bad {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	}
	del := func(b *bolt.Bucket, key, why string) error {
		done = append(done, why)
		return b.Delete([]byte(key))
	}
	for _, name := range sortedKeys(st.images) {
		rec := st.images[name]
		badID := rec.ID != "" && len(rec.Config) > 0 && ConfigID(rec.Config) != rec.ID
		badChain := len(rec.DiffIDs) > 0 && chainIDs(rec.DiffIDs)[len(rec.DiffIDs)-1] != rec.ChainID
		if badID || badChain {
			delete(st.images, name)
			if err := del(imagesBucket(tx), name, fmt.Sprintf("image %q: its id, config or chain do not agree: dropped", name)); err != nil {
				return done, err
			}
		}
	}
	for changed := true; changed; {
		changed = false
		// Layers whose parent is gone, then those nothing uses (as
		// releaseLayer would have dropped them); each may free another.
		uses := st.uses()
		for _, chainID := range sortedKeys(st.layers) {
			rec := st.layers[chainID]
			why := ""
			switch {
			case rec.Parent != "" && !st.hasLayer(rec.Parent):
				why = fmt.Sprintf("layer %s: parent %s is not registered: dropped", chainID, rec.Parent)
			case uses[chainID] == 0:
				why = fmt.Sprintf("layer %s: used by nothing: dropped", chainID)
			default:
				continue
			}
			delete(st.layers, chainID)
			if err := del(layersBucket(tx), chainID, why); err != nil {
				return done, err
			}
			changed = true
		}
		for _, name := range sortedKeys(st.images) {
			if !st.hasLayer(st.images[name].ChainID) {
				delete(st.images, name)
				if err := del(imagesBucket(tx), name, fmt.Sprintf("image %q: its layer is not registered: dropped", name)); err != nil {
					return done, err
				}
				changed = true
			}
		}
	}
	for _, id := range sortedKeys(st.mounts) {
		if !st.hasLayer(st.mounts[id].ChainID) {
			delete(st.mounts, id)
			if err := del(mountsBucket(tx), id, fmt.Sprintf("mount %s: its layer is not registered: dropped", id)); err != nil {
				return done, err
			}
		}
	}
	for _, b := range []struct {
		bucket *bolt.Bucket
		keep   func(string) bool
	}{
		{imagesBucket(tx), func(k string) bool { _, ok := st.images[k]; return ok }},
		{layersBucket(tx), func(k string) bool { _, ok := st.layers[k]; return ok }},
		{mountsBucket(tx), func(k string) bool { _, ok := st.mounts[k]; return ok }},
	} {
		if err := drop(b.bucket, b.keep); err != nil {
			return done, err
		}
	}
	uses := st.uses()
	for _, chainID := range sortedKeys(st.layers) {
		rec := st.layers[chainID]
		if rec.Refcount == uses[chainID] {
			continue
		}
		done = append(done, fmt.Sprintf("layer %s: refcount %d set to %d", chainID, rec.Refcount, uses[chainID]))
		rec.Refcount = uses[chainID]
		if err := putJSON(layersBucket(tx), chainID, rec); err != nil {
			return done, err
		}
	}
	return done, CheckTx(tx)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
