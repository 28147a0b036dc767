package layer

import (
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cairn-run/cairn/internal/errdefs"
	"github.com/cairn-run/cairn/internal/imageref"
	"github.com/cairn-run/cairn/internal/schema"
)

// NewImage is an image to register: its id and config, its layers by
// diffID (bottom first), the staged layers that hold those of its chain not
// registered yet, and its names.
type NewImage struct {
	ID      string
	Config  []byte
	DiffIDs []string
	// Names are canonical references (internal/imageref). With none, the
	// image is registered under its id, unless it has a name already.
	Names []string
	// Staged are layers extracted and installed for this image, by the
	// chainID they take; a chain position already registered (by another
	// image, or by a load that finished first) does not use its staged
	// layer.
	Staged []StagedLayer
	// Exclusive refuses a name another image holds (ErrAlreadyExists)
	// instead of moving it over, as `cairn image import` does.
	Exclusive bool
}

// Registration is what a committed RegisterImage did.
type Registration struct {
	// Used are the cacheIDs of the staged layers now registered; Unused
	// those that were not needed (their directory is to be removed).
	Used, Unused []string
	// Freed are layer directories whose records went with a name the image
	// took from another image (that image's last reference to them).
	Freed []string
	// Moved are the names taken from other images.
	Moved []string
}

// RegisterImage returns the write that registers img: new layer records
// for the chain positions not registered yet (from img.Staged), one
// images/ record per name, refcounts. A name held by another image moves
// to this one, as `docker load` and `docker tag` do; an image left without
// a name stays as a dangling image under its id. It validates everything
// before its first write (schema.Op) and sets *out on every run.
func (s *Store) RegisterImage(img NewImage, out *Registration) schema.Op {
	return func(tx *bolt.Tx) error {
		*out = Registration{}
		if err := validateNewImage(img); err != nil {
			return err
		}
		keys, err := readImageKeys(tx)
		if err != nil {
			return err
		}
		chain := chainIDs(img.DiffIDs)
		top := chain[len(chain)-1]
		staged := map[string]StagedLayer{}
		for _, l := range img.Staged {
			staged[l.ChainID] = l
		}
		lb := layersBucket(tx)
		// The chain: registered positions stay, the others come from the
		// staged layers. Refcount increments are collected first.
		var fresh []string // chainIDs of new records, bottom first
		records := map[string]layerRecord{}
		incr := map[string]int64{}
		var size int64
		for i, chainID := range chain {
			var rec layerRecord
			ok, err := getJSON(lb, chainID, &rec)
			if err != nil {
				return err
			}
			if !ok {
				l, have := staged[chainID]
				if !have {
					return fmt.Errorf("layer %s (%s) of image %s is neither registered nor staged: %w", chainID, img.DiffIDs[i], img.ID, errdefs.ErrFailedPrecondition)
				}
				if l.DiffID != img.DiffIDs[i] {
					return fmt.Errorf("staged layer %s has diffID %s, the image wants %s: %w", chainID, l.DiffID, img.DiffIDs[i], errdefs.ErrInvalidArgument)
				}
				rec = layerRecord{DiffID: l.DiffID, CacheID: l.CacheID, Size: l.Size}
				if i > 0 {
					rec.Parent = chain[i-1]
					incr[chain[i-1]]++
				}
				fresh = append(fresh, chainID)
			}
			records[chainID] = rec
			size += rec.Size
		}
		for _, l := range img.Staged {
			if slices.Contains(fresh, l.ChainID) {
				out.Used = append(out.Used, l.CacheID)
			} else {
				out.Unused = append(out.Unused, l.CacheID)
			}
		}
		// The names: each new key holds one reference on the top layer.
		mine := keys[img.ID]
		var puts []string
		var moves []string // keys to take from another image
		for _, name := range img.Names {
			if _, have := mine[name]; have {
				continue
			}
			if raw := imagesBucket(tx).Get([]byte(name)); raw != nil {
				if img.Exclusive {
					return fmt.Errorf("image %s: %w", errdefs.Quote(name), errdefs.ErrAlreadyExists)
				}
				moves = append(moves, name)
			}
			puts = append(puts, name)
		}
		danglingKey := ""
		if _, dangling := mine[img.ID]; dangling && len(img.Names) > 0 {
			danglingKey = img.ID // named now: the id key goes
		}
		if len(img.Names) == 0 && len(mine) == 0 {
			puts = append(puts, img.ID)
		}
		for _, existing := range mine {
			if existing.ChainID != top {
				return fmt.Errorf("image %s is registered with layer %s, this one has %s: %w", img.ID, existing.ChainID, top, errdefs.ErrInvalidArgument)
			}
		}
		incr[top] += int64(len(puts))

		// Writes.
		for _, chainID := range fresh {
			if err := putJSON(lb, chainID, records[chainID]); err != nil {
				return err
			}
		}
		for chainID, n := range incr {
			if n == 0 {
				continue
			}
			var rec layerRecord
			if _, err := getJSON(lb, chainID, &rec); err != nil {
				return err
			}
			rec.Refcount += n
			if err := putJSON(lb, chainID, rec); err != nil {
				return err
			}
		}
		now := time.Now().UTC()
		release := func(key string) error {
			var old imageRecord
			if _, err := getJSON(imagesBucket(tx), key, &old); err != nil {
				return err
			}
			plan, err := planRelease(tx, old.ChainID)
			if err != nil {
				return err
			}
			if err := imagesBucket(tx).Delete([]byte(key)); err != nil {
				return err
			}
			freed, err := plan.apply(tx)
			out.Freed = append(out.Freed, freed...)
			return err
		}
		for _, name := range moves {
			var old imageRecord
			if _, err := getJSON(imagesBucket(tx), name, &old); err != nil {
				return err
			}
			oldID := recordID(old)
			if len(keys[oldID]) == 1 {
				// Its last name: the other image stays, dangling, under its
				// id, keeping the reference the name held.
				old.ID = oldID
				if err := putJSON(imagesBucket(tx), oldID, old); err != nil {
					return err
				}
				if err := imagesBucket(tx).Delete([]byte(name)); err != nil {
					return err
				}
			} else if err := release(name); err != nil {
				return err
			}
			delete(keys[oldID], name)
			out.Moved = append(out.Moved, name)
		}
		for _, key := range puts {
			rec := imageRecord{ID: img.ID, DiffIDs: img.DiffIDs, ChainID: top, Size: size, Created: now, Config: img.Config}
			if err := putJSON(imagesBucket(tx), key, rec); err != nil {
				return err
			}
		}
		if danglingKey != "" {
			if err := release(danglingKey); err != nil {
				return err
			}
		}
		return nil
	}
}

func validateNewImage(img NewImage) error {
	if _, err := imageref.ID(img.ID); err != nil {
		return err
	}
	if ConfigID(img.Config) != img.ID {
		return fmt.Errorf("image id %s is not the sha256 of its config: %w", img.ID, errdefs.ErrInvalidArgument)
	}
	if len(img.DiffIDs) == 0 {
		return fmt.Errorf("image %s has no layers: %w", img.ID, errdefs.ErrInvalidArgument)
	}
	for _, name := range img.Names {
		if canonical, err := imageref.NormalizeTag(name); err != nil || canonical != name {
			return fmt.Errorf("image name %s is not a canonical tag: %w", errdefs.Quote(name), errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// TagOp returns the write that gives image id the name (canonical), moving
// it from another image if one has it. The image keeps its other names.
func (s *Store) TagOp(id, name string, out *Registration) schema.Op {
	return func(tx *bolt.Tx) error {
		keys, err := readImageKeys(tx)
		if err != nil {
			return err
		}
		if len(keys[id]) == 0 {
			*out = Registration{}
			return fmt.Errorf("no image with id %s: %w", errdefs.Quote(id), errdefs.ErrNotFound)
		}
		img := keys.image(id, "")
		return s.RegisterImage(NewImage{ID: id, Config: img.Config, DiffIDs: img.DiffIDs, Names: []string{name}}, out)(tx)
	}
}
