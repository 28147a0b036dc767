package layer

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"

	"github.com/cairn-run/cairn/internal/errdefs"
	"github.com/cairn-run/cairn/internal/imageref"
	"github.com/cairn-run/cairn/internal/schema"
)

// Image is a registered image: its id and config, its chain of layers, and
// the names it has.
type Image struct {
	// ID is the image id: "sha256:<hex>" of its config.
	ID string
	// Name is the key the image was asked for or listed under: one of
	// Names, or ID for an image without a name.
	Name string
	// Names are the image's names (canonical references), sorted; none for
	// a dangling image.
	Names   []string
	DiffIDs []string // "sha256:<hex>", bottom first
	ChainID string   // "sha256:<hex>" of the top layer
	Size    int64    // sum of the layers' uncompressed tar sizes
	// CreatedAt is when the image was first registered under any key.
	CreatedAt time.Time
	// Config is the image config JSON (OCI or Docker image config).
	Config []byte
}

// FlatConfig is the config of an image made from one rootfs tar (an
// import, or an image registered before configs were kept): the platform
// and the layer, nothing else, so the same tar always gets the same id.
func FlatConfig(diffIDs []string) []byte {
	ds := make([]digest.Digest, len(diffIDs))
	for i, d := range diffIDs {
		ds[i] = digest.Digest(d)
	}
	cfg := ocispec.Image{
		Platform: ocispec.Platform{Architecture: runtime.GOARCH, OS: "linux"},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: ds},
	}
	raw, _ := json.Marshal(cfg) // a struct of strings cannot fail to encode
	return raw
}

// ConfigID is the image id of a config: its sha256.
func ConfigID(config []byte) string { return digest.FromBytes(config).String() }

// recordID is the image id of a record; one written before image ids has
// the id of its flat config.
func recordID(rec imageRecord) string {
	if rec.ID != "" {
		return rec.ID
	}
	return ConfigID(FlatConfig(rec.DiffIDs))
}

func recordConfig(rec imageRecord) []byte {
	if len(rec.Config) > 0 {
		return rec.Config
	}
	return FlatConfig(rec.DiffIDs)
}

// imageKeys is every images/ record, decoded, grouped by image id.
type imageKeys map[string]map[string]imageRecord // id -> key -> record

func readImageKeys(tx *bolt.Tx) (imageKeys, error) {
	out := imageKeys{}
	err := imagesBucket(tx).ForEach(func(k, v []byte) error {
		var rec imageRecord
		if err := json.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("decode image %.80q: %w", k, err)
		}
		id := recordID(rec)
		if out[id] == nil {
			out[id] = map[string]imageRecord{}
		}
		out[id][string(k)] = rec
		return nil
	})
	return out, err
}

// image builds the Image of id from its keys; name is the key it is
// presented under ("" for its first name, else its id).
func (k imageKeys) image(id, name string) Image {
	keys := k[id]
	img := Image{ID: id}
	first := true
	for key, rec := range keys {
		if key != id {
			img.Names = append(img.Names, key)
		}
		if first || rec.Created.Before(img.CreatedAt) {
			img.CreatedAt = rec.Created
		}
		if first || key == name {
			img.DiffIDs, img.ChainID, img.Size, img.Config = rec.DiffIDs, rec.ChainID, rec.Size, recordConfig(rec)
		}
		first = false
	}
	sort.Strings(img.Names)
	img.Name = name
	if img.Name == "" {
		img.Name = id
		if len(img.Names) > 0 {
			img.Name = img.Names[0]
		}
	}
	return img
}

// Images lists every registered image once, sorted by the name it is
// listed under (its first name, or its id).
func (s *Store) Images() ([]Image, error) {
	var out []Image
	err := s.db.View(func(tx *bolt.Tx) error {
		keys, err := readImageKeys(tx)
		for id := range keys {
			out = append(out, keys.image(id, ""))
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	return out, nil
}

// Image returns the image ref names: a name in any spelling ("busybox",
// "docker.io/library/busybox:latest"), a name as stored before names were
// normalized, an image id, or a prefix of at least 4 hex digits of one.
// It is ErrNotFound when nothing matches, ErrInvalidArgument for an
// ambiguous prefix or a reference that can be none of these.
func (s *Store) Image(ref string) (Image, error) {
	var img Image
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		img, _, err = resolveTx(tx, ref)
		return err
	})
	return img, err
}

// ImageByID returns the image with exactly this id.
func (s *Store) ImageByID(id string) (Image, error) {
	var img Image
	err := s.db.View(func(tx *bolt.Tx) error {
		keys, err := readImageKeys(tx)
		if err != nil {
			return err
		}
		if keys[id] == nil {
			return fmt.Errorf("no image with id %s: %w", errdefs.Quote(id), errdefs.ErrNotFound)
		}
		img = keys.image(id, "")
		return nil
	})
	return img, err
}

// resolveTx is Image inside a transaction; byID reports that ref named the
// image by its id (or a prefix of it) rather than by one of its keys.
func resolveTx(tx *bolt.Tx, ref string) (img Image, byID bool, err error) {
	if ref == "" || len(ref) > imageref.MaxLength {
		return Image{}, false, fmt.Errorf("image reference %s: %w", errdefs.Quote(ref), errdefs.ErrInvalidArgument)
	}
	keys, err := readImageKeys(tx)
	if err != nil {
		return Image{}, false, err
	}
	lookup := func(key string) (Image, bool) {
		raw := imagesBucket(tx).Get([]byte(key))
		if raw == nil {
			return Image{}, false
		}
		var rec imageRecord
		if json.Unmarshal(raw, &rec) != nil {
			return Image{}, false
		}
		return keys.image(recordID(rec), key), true
	}
	if img, ok := lookup(ref); ok && !imageref.IsID(ref) {
		return img, false, nil // a key as stored: canonical, or a name from before normalization
	}
	canonical, nameErr := imageref.Normalize(ref)
	if nameErr == nil {
		if img, ok := lookup(canonical); ok {
			return img, false, nil
		}
	}
	if prefix, ok := imageref.IDPrefix(ref); ok {
		var found []string
		for id := range keys {
			if strings.HasPrefix(strings.TrimPrefix(id, "sha256:"), prefix) {
				found = append(found, id)
			}
		}
		switch len(found) {
		case 1:
			return keys.image(found[0], ""), true, nil
		case 0:
		default:
			return Image{}, false, fmt.Errorf("image id prefix %s is ambiguous (%d images): %w", errdefs.Quote(ref), len(found), errdefs.ErrInvalidArgument)
		}
	}
	if _, isPrefix := imageref.IDPrefix(ref); nameErr != nil && !isPrefix {
		return Image{}, false, nameErr
	}
	return Image{}, false, fmt.Errorf("no such image: %s: %w", errdefs.Quote(ref), errdefs.ErrNotFound)
}

// imageRecordOf reads the record of the images/ key name, or ErrNotFound.
func imageRecordOf(tx *bolt.Tx, name string) (imageRecord, error) {
	var rec imageRecord
	ok, err := getJSON(imagesBucket(tx), name, &rec)
	if err == nil && !ok {
		err = fmt.Errorf("image %s: %w", errdefs.Quote(name), errdefs.ErrNotFound)
	}
	return rec, err
}

// RemoveImage removes ref from the store outside the journal (tests, and
// stores without one): as `docker rmi` does, a name of an image that has
// other names is untagged; the last name, or the id, deletes the image,
// which is refused with ErrFailedPrecondition while a mount uses it. A
// layer directory goes once no image or child layer references it.
func (s *Store) RemoveImage(ref string) error {
	plan, err := s.PlanRemove(ref)
	if err != nil {
		return fmt.Errorf("remove image: %w", err)
	}
	var out Removal
	op := s.UntagOp(plan.Key, &out)
	if plan.Delete {
		op = s.DeleteOp(plan.ID, &out)
	}
	if err := s.update(op); err != nil {
		return fmt.Errorf("remove image: %w", err)
	}
	return s.RemoveFreedLayers(out.Freed)
}

// RemovePlan is what removing a reference does: untag one name, or delete
// the image with every key it has.
type RemovePlan struct {
	ID    string
	Key   string // the images/ key the reference resolved to
	Names []string
	// Delete: the reference is the image's last key or its id.
	Delete bool
}

// PlanRemove reads what RemoveImage(ref) would do, without doing it. An id
// of an image with several names is refused (ErrFailedPrecondition), as
// Docker does: remove its names one by one.
func (s *Store) PlanRemove(ref string) (RemovePlan, error) {
	var plan RemovePlan
	err := s.db.View(func(tx *bolt.Tx) error {
		img, byID, err := resolveTx(tx, ref)
		if err != nil {
			return err
		}
		keys, err := readImageKeys(tx)
		if err != nil {
			return err
		}
		plan = RemovePlan{ID: img.ID, Key: img.Name, Names: img.Names}
		byName := !byID && slices.Contains(img.Names, img.Name)
		switch {
		case byName && len(keys[img.ID]) > 1:
			plan.Delete = false
		case !byName && len(img.Names) > 1:
			return fmt.Errorf("image %s has %d names (%s): remove them by name: %w", img.ID, len(img.Names), strings.Join(img.Names, ", "), errdefs.ErrFailedPrecondition)
		default:
			plan.Delete = true
		}
		if plan.Delete {
			users, err := mountsUsingImage(tx, img.ID, keys[img.ID])
			if err != nil {
				return err
			}
			if len(users) > 0 {
				return fmt.Errorf("image %s is used by the container mounts %s: %w", errdefs.Quote(ref), strings.Join(users, ", "), errdefs.ErrFailedPrecondition)
			}
		}
		return nil
	})
	return plan, err
}

// Removal is what an untag or delete committed: the layer directories
// whose records it deleted, to remove once it is durable.
type Removal struct {
	Freed []string
}

// UntagOp returns the write that removes the name key from its image; the
// image keeps its other keys. It refuses (ErrFailedPrecondition) to remove
// an image's last key: that is a delete.
func (s *Store) UntagOp(key string, out *Removal) schema.Op {
	return func(tx *bolt.Tx) error {
		*out = Removal{}
		rec, err := imageRecordOf(tx, key)
		if err != nil {
			return err
		}
		keys, err := readImageKeys(tx)
		if err != nil {
			return err
		}
		if len(keys[recordID(rec)]) < 2 {
			return fmt.Errorf("%s is the last name of image %s: deleting it deletes the image: %w", errdefs.Quote(key), recordID(rec), errdefs.ErrFailedPrecondition)
		}
		plan, err := planRelease(tx, rec.ChainID)
		if err != nil {
			return err
		}
		if err := imagesBucket(tx).Delete([]byte(key)); err != nil {
			return err
		}
		out.Freed, err = plan.apply(tx)
		return err
	}
}

// DeleteOp returns the write that deletes image id with every key it has.
// It refuses with ErrFailedPrecondition, naming them, while container
// mounts use the image, and ErrNotFound when there is no such image.
func (s *Store) DeleteOp(id string, out *Removal) schema.Op {
	return func(tx *bolt.Tx) error {
		*out = Removal{}
		keys, err := readImageKeys(tx)
		if err != nil {
			return err
		}
		mine := keys[id]
		if len(mine) == 0 {
			return fmt.Errorf("no image with id %s: %w", errdefs.Quote(id), errdefs.ErrNotFound)
		}
		users, err := mountsUsingImage(tx, id, mine)
		if err != nil {
			return err
		}
		if len(users) > 0 {
			return fmt.Errorf("image %s is used by the container mounts %s: %w", id, strings.Join(users, ", "), errdefs.ErrFailedPrecondition)
		}
		// Each key holds one reference on its chain; release them one by
		// one, each plan read after the previous one was applied.
		for _, key := range sortedKeys(mine) {
			plan, err := planRelease(tx, mine[key].ChainID)
			if err != nil {
				return err
			}
			if err := imagesBucket(tx).Delete([]byte(key)); err != nil {
				return err
			}
			freed, err := plan.apply(tx)
			if err != nil {
				return err
			}
			out.Freed = append(out.Freed, freed...)
		}
		return nil
	}
}

// RemoveFreedLayers deletes the directories a committed removal freed. A
// crash before they are gone leaves orphans, which Open deletes.
func (s *Store) RemoveFreedLayers(cacheIDs []string) error {
	for _, cacheID := range cacheIDs {
		if err := os.RemoveAll(s.layerDir(cacheID)); err != nil {
			return fmt.Errorf("delete layer dir %s: %w", cacheID, err)
		}
	}
	return nil
}

// mountsUsingImage returns the ids of the mounts created from image id,
// sorted. A mount made before image ids (schema 2) was made from a flat,
// single-layer image, whose id its chainID gives.
func mountsUsingImage(tx *bolt.Tx, id string, _ map[string]imageRecord) ([]string, error) {
	var ids []string
	err := mountsBucket(tx).ForEach(func(k, v []byte) error {
		var rec mountRecord
		if err := json.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("decode mount %s: %w", k, err)
		}
		if mountImageID(rec) == id {
			ids = append(ids, string(k))
		}
		return nil
	})
	return ids, err
}

// mountImageID is the id of the image a mount was made from.
func mountImageID(rec mountRecord) string {
	if rec.ImageID != "" {
		return rec.ImageID
	}
	return ConfigID(FlatConfig([]string{rec.ChainID}))
}

// MountsOfImage lists the mounts (container layers) created from image id.
func (s *Store) MountsOfImage(id string) ([]string, error) {
	var ids []string
	err := s.db.View(func(tx *bolt.Tx) error {
		keys, err := readImageKeys(tx)
		if err != nil {
			return err
		}
		ids, err = mountsUsingImage(tx, id, keys[id])
		return err
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

// ChainIDs computes the chainID of every prefix of diffIDs (bottom first):
// chainID(1) = diffID(1), chainID(n) = sha256(chainID(n-1) + " " + diffID(n)),
// with the image spec's own identity package.
func ChainIDs(diffIDs []string) []string {
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

func chainIDs(diffIDs []string) []string { return ChainIDs(diffIDs) }

// LayerInfo is a registered layer.
type LayerInfo struct {
	ChainID, DiffID, Parent, CacheID string
	Size, Refcount                   int64
	// Dir is the layer's directory, layers/<CacheID>.
	Dir string
}

// Layers lists every registered layer, sorted by chainID.
func (s *Store) Layers() ([]LayerInfo, error) {
	var out []LayerInfo
	err := s.db.View(func(tx *bolt.Tx) error {
		return layersBucket(tx).ForEach(func(k, v []byte) error {
			var rec layerRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("decode layer %.80q: %w", k, err)
			}
			out = append(out, LayerInfo{ChainID: string(k), DiffID: rec.DiffID, Parent: rec.Parent, CacheID: rec.CacheID,
				Size: rec.Size, Refcount: rec.Refcount, Dir: s.layerDir(rec.CacheID)})
			return nil
		})
	})
	return out, err
}

// LayerDirs lists the directories under layers/, registered or not.
func (s *Store) LayerDirs() ([]string, error) {
	entries, err := os.ReadDir(s.layersDir)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names, nil
}

// RegisteredLayers reports which of chainIDs have a layer record.
func (s *Store) RegisteredLayers(chainIDs []string) (map[string]bool, error) {
	out := map[string]bool{}
	err := s.db.View(func(tx *bolt.Tx) error {
		b := layersBucket(tx)
		for _, c := range chainIDs {
			out[c] = b.Get([]byte(c)) != nil
		}
		return nil
	})
	return out, err
}

// NameID is the id of the image the images/ key name belongs to, "" when
// no record has that key.
func (s *Store) NameID(name string) (string, error) {
	var id string
	err := s.db.View(func(tx *bolt.Tx) error {
		var rec imageRecord
		ok, err := getJSON(imagesBucket(tx), name, &rec)
		if ok && err == nil {
			id = recordID(rec)
		}
		return err
	})
	return id, err
}
