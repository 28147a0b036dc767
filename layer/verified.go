package layer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/cairn-run/cairn/internal/errdefs"
)

// Verified layers are what lets an interrupted pull resume: a layer a
// pull has downloaded, checked (blob digest, size, diffID) and made
// durable is moved out of tmp/ (which every start wipes) into
// verified/<cacheID>/ as layer/ (the extracted directory) and blob, with
// a marker, verified.json, written and fsynced before the one rename that
// puts the three in place. The cacheID is
// one the pull's intent claims, so the journal names every such directory
// before it exists; a directory whose marker is missing or unreadable was
// never finished and nothing may use it. After a crash, recovery keeps
// the complete ones the rolled-back pull claimed and lists them in its
// RECONCILED record; the next pull of any image with that diffID and blob
// adopts one (TakeVerified) under a claim of its own intent instead of
// downloading it, and its install moves it into layers/.
//
// A verified layer is never registered: it is listed nowhere as a layer
// or an image. Open removes the incomplete ones, and the complete ones
// whose marker is older than VerifiedLayerTTL (a kept layer nobody pulls
// again is swept by the first start after that).

// VerifiedLayerTTL is how long a kept verified layer waits to be adopted.
const VerifiedLayerTTL = 24 * time.Hour

const verifiedMarker = "verified.json"

// verifiedRecord is the marker of a complete verified layer.
type verifiedRecord struct {
	DiffID string   `json:"diff_id"`
	Size   int64    `json:"size"`
	Blob   BlobInfo `json:"blob"`
}

func (s *Store) verifiedDir(cacheID string) string { return filepath.Join(s.verifiedRoot, cacheID) }

// KeepVerified moves a staged, verified layer out of its staging directory
// into verified/<CacheID>, its marker written beside it before one rename
// makes the three appear together, durably. The layer's files and blob
// are durable already (the staging's syncfs); the marker is fsynced, and a
// marker that a crash still leaves short or a part that went missing
// makes the directory incomplete, which nobody adopts and Open removes.
// The layer returned is the same layer in its new place, for
// InstallLayers.
func (s *Store) KeepVerified(l StagedLayer) (StagedLayer, error) {
	if !cacheIDPattern.MatchString(l.CacheID) || l.dir == "" || l.blobFile == "" {
		return l, fmt.Errorf("keep verified layer %s: not a staged layer: %w", errdefs.Quote(l.CacheID), errdefs.ErrInvalidArgument)
	}
	keep := l.dir + ".keep"
	if err := os.Mkdir(keep, 0o700); err != nil {
		return l, fmt.Errorf("keep verified layer: %w", err)
	}
	if err := os.Rename(l.dir, filepath.Join(keep, "layer")); err != nil {
		return l, fmt.Errorf("keep verified layer: %w", err)
	}
	// From here on a failure leaves everything under keep, in the staging
	// directory its Close removes.
	if err := os.Rename(l.blobFile, filepath.Join(keep, "blob")); err != nil {
		return l, fmt.Errorf("keep verified layer: %w", err)
	}
	marker, err := json.Marshal(verifiedRecord{DiffID: l.DiffID, Size: l.Size, Blob: l.Blob})
	if err != nil {
		return l, err
	}
	f, err := os.OpenFile(filepath.Join(keep, verifiedMarker), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return l, fmt.Errorf("keep verified layer: %w", err)
	}
	_, err = f.Write(marker)
	if serr := f.Sync(); err == nil {
		err = serr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return l, fmt.Errorf("keep verified layer: %w", err)
	}
	dir := s.verifiedDir(l.CacheID)
	if err := os.Rename(keep, dir); err != nil {
		return l, fmt.Errorf("keep verified layer: %w", err)
	}
	kept := l
	kept.dir, kept.blobFile, kept.kept = filepath.Join(dir, "layer"), filepath.Join(dir, "blob"), dir
	if err := syncDir(s.verifiedRoot, false); err != nil {
		return kept, fmt.Errorf("keep verified layer: %w", err)
	}
	return kept, nil
}

// readVerified returns the marker of verified/<cacheID> when the layer is
// complete: the marker readable, the directory and a blob of the size it
// names beside it.
func (s *Store) readVerified(cacheID string) (verifiedRecord, time.Time, bool, error) {
	dir := s.verifiedDir(cacheID)
	info, err := os.Lstat(filepath.Join(dir, verifiedMarker))
	if errors.Is(err, fs.ErrNotExist) {
		return verifiedRecord{}, time.Time{}, false, nil
	}
	if err != nil {
		return verifiedRecord{}, time.Time{}, false, err
	}
	data, err := os.ReadFile(filepath.Join(dir, verifiedMarker))
	if err != nil {
		return verifiedRecord{}, time.Time{}, false, err
	}
	var rec verifiedRecord
	if json.Unmarshal(data, &rec) != nil || rec.DiffID == "" || rec.Blob.Digest == "" {
		return verifiedRecord{}, time.Time{}, false, nil
	}
	if st, err := os.Lstat(filepath.Join(dir, "layer")); err != nil || !st.IsDir() {
		return rec, info.ModTime(), false, nil
	}
	if st, err := os.Lstat(filepath.Join(dir, "blob")); err != nil || !st.Mode().IsRegular() || st.Size() != rec.Blob.Size {
		return rec, info.ModTime(), false, nil
	}
	return rec, info.ModTime(), true, nil
}

// VerifiedLayerKept reports whether verified/<cacheID> is a complete
// verified layer, what recovery keeps of a rolled-back pull.
func (s *Store) VerifiedLayerKept(cacheID string) (bool, error) {
	if !cacheIDPattern.MatchString(cacheID) {
		return false, fmt.Errorf("cache id %s: %w", errdefs.Quote(cacheID), errdefs.ErrInvalidArgument)
	}
	_, _, ok, err := s.readVerified(cacheID)
	return ok, err
}

// TakeVerified finds a complete verified layer with diffID whose blob is
// blobDigest, nobody else's in this process, and reserves it for the
// caller: the returned layer (its ChainID to be set by the caller) goes to
// InstallLayers under the returned CacheID, which the caller's intent must
// claim. ok is false when there is none. ReleaseVerified gives it back.
func (s *Store) TakeVerified(diffID, blobDigest string) (StagedLayer, bool, error) {
	entries, err := os.ReadDir(s.verifiedRoot)
	if err != nil {
		return StagedLayer{}, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range entries {
		id := e.Name()
		if !cacheIDPattern.MatchString(id) || s.verifiedBusy[id] {
			continue
		}
		rec, _, ok, err := s.readVerified(id)
		if err != nil || !ok || rec.DiffID != diffID || rec.Blob.Digest != blobDigest {
			continue
		}
		dir := s.verifiedDir(id)
		s.verifiedBusy[id] = true
		return StagedLayer{DiffID: rec.DiffID, Size: rec.Size, CacheID: id, Blob: rec.Blob,
			dir: filepath.Join(dir, "layer"), blobFile: filepath.Join(dir, "blob"), kept: dir}, true, nil
	}
	return StagedLayer{}, false, nil
}

// ReserveVerified marks cacheIDs as this process's own (a pull keeping
// them as it fetches), so that no other pull takes them.
func (s *Store) ReserveVerified(cacheIDs []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range cacheIDs {
		s.verifiedBusy[id] = true
	}
}

// ReleaseVerified ends the reservations of cacheIDs.
func (s *Store) ReleaseVerified(cacheIDs []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range cacheIDs {
		delete(s.verifiedBusy, id)
	}
}

// RemoveVerified deletes verified/<cacheID> of each cacheID.
func (s *Store) RemoveVerified(cacheIDs []string) error {
	for _, id := range cacheIDs {
		if !cacheIDPattern.MatchString(id) {
			return fmt.Errorf("cache id %s: %w", errdefs.Quote(id), errdefs.ErrInvalidArgument)
		}
		if err := os.RemoveAll(s.verifiedDir(id)); err != nil {
			return err
		}
	}
	return nil
}

// sweepVerified removes, at Open, every verified layer that is incomplete
// (its marker never landed) or older than VerifiedLayerTTL.
func (s *Store) sweepVerified(now time.Time) error {
	entries, err := os.ReadDir(s.verifiedRoot)
	if err != nil {
		return fmt.Errorf("layer store: %w", err)
	}
	for _, e := range entries {
		id := e.Name()
		if cacheIDPattern.MatchString(id) {
			_, at, ok, err := s.readVerified(id)
			if err == nil && ok && now.Sub(at) < VerifiedLayerTTL {
				continue
			}
		}
		if err := os.RemoveAll(filepath.Join(s.verifiedRoot, id)); err != nil {
			return fmt.Errorf("layer store: remove verified layer %s: %w", id, err)
		}
	}
	return nil
}

// VerifiedLayers lists the cacheIDs of the verified layers on disk.
func (s *Store) VerifiedLayers() ([]string, error) {
	entries, err := os.ReadDir(s.verifiedRoot)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range entries {
		ids = append(ids, e.Name())
	}
	return ids, nil
}
