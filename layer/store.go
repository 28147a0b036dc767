package layer

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cairn-run/cairn/internal/errdefs"
	"github.com/cairn-run/cairn/internal/schema"
)

// Storage is where the store keeps its records: the daemon's bbolt file,
// read in read transactions and written only through the journal's group
// commit, so a store write can share a transaction (and its fsync) with the
// journal records of the same step. *journal.Journal implements it.
type Storage interface {
	View(fn func(tx *bolt.Tx) error) error
	// Write commits op in the journal's group commit.
	Write(op schema.Op) error
}

// Store is the layer store. It is safe for concurrent use: every decision
// that must be atomic is taken inside one bbolt transaction, and every
// directory a call creates has a name nobody else uses (random cacheID, a
// caller-chosen unique mountID).
type Store struct {
	db        Storage
	dir       string // absolute, symlinks resolved: mountinfo shows real paths
	layersDir string
	mountsDir string
	tmpDir    string
	blobsDir  string
	// verifiedRoot holds the verified layers of interrupted pulls
	// (verified.go).
	verifiedRoot string

	// root: running with euid 0, so ownership (Lchown) and file capabilities
	// from the tar are applied. Without it an import keeps the caller's
	// ownership; that is only useful for tests.
	root bool
	// resolvConf is the host file the init layer's etc/resolv.conf is derived
	// from; tests point it elsewhere.
	resolvConf string

	mu         sync.Mutex         // guards mountLocks
	mountLocks map[string]*idLock // per mount id, see lockMount
	// verifiedBusy are the verified layers a pull of this process is
	// keeping or has taken (guarded by mu).
	verifiedBusy map[string]bool
}

// Open prepares the store under dir on the daemon's storage (the journal),
// whose file already has the store's buckets (internal/schema). It deletes the
// leftovers of interrupted imports (everything under tmp/, and layer
// directories no layers/ record points to) and returns the store.
func Open(dir string, db Storage) (*Store, error) {
	if db == nil {
		return nil, fmt.Errorf("layer store: nil storage: %w", errdefs.ErrInvalidArgument)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("layer store: %w", err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("layer store: %w", err)
	}
	if abs, err = filepath.EvalSymlinks(abs); err != nil {
		return nil, fmt.Errorf("layer store: %w", err)
	}
	// The legacy overlay option string cannot carry these characters
	// unescaped, and mountinfo parsing is simpler without them.
	if strings.ContainsAny(abs, ",:\\\n\t ") {
		return nil, fmt.Errorf("layer store: directory %q contains one of ',:\\' or whitespace: %w", abs, errdefs.ErrInvalidArgument)
	}
	s := &Store{
		db:           db,
		dir:          abs,
		layersDir:    filepath.Join(abs, "layers"),
		mountsDir:    filepath.Join(abs, "mounts"),
		tmpDir:       filepath.Join(abs, "tmp"),
		blobsDir:     filepath.Join(abs, "blobs"),
		verifiedRoot: filepath.Join(abs, "verified"),
		verifiedBusy: map[string]bool{},
		root:         os.Geteuid() == 0,
		resolvConf:   "/etc/resolv.conf",
	}
	// Nothing in tmp/ is ever registered, so it is always safe to wipe.
	if err := os.RemoveAll(s.tmpDir); err != nil {
		return nil, fmt.Errorf("layer store: remove interrupted imports: %w", err)
	}
	for _, d := range []string{s.layersDir, s.mountsDir, s.tmpDir, s.blobsDir, s.verifiedRoot} {
		if err := os.Mkdir(d, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("layer store: %w", err)
		}
		// Enforce 0700 even on a directory made by an older version or by
		// hand: layers hold setuid binaries from untrusted tars.
		if err := os.Chmod(d, 0o700); err != nil {
			return nil, fmt.Errorf("layer store: %w", err)
		}
	}
	referenced := map[string]bool{}
	err = db.View(func(tx *bolt.Tx) error {
		if layersBucket(tx) == nil {
			return fmt.Errorf("bucket %s is missing (the journal creates it): %w", schema.BucketLayers, errdefs.ErrFailedPrecondition)
		}
		return layersBucket(tx).ForEach(func(_, v []byte) error {
			var rec layerRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return err
			}
			referenced[rec.CacheID] = true
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("layer store: %w", err)
	}
	if err := s.removeOrphanLayers(referenced); err != nil {
		return nil, err
	}
	if err := s.removeOrphanBlobs(referenced); err != nil {
		return nil, err
	}
	if err := s.sweepVerified(time.Now()); err != nil {
		return nil, err
	}
	return s, nil
}

// update commits op alone through the storage's group commit.
func (s *Store) update(op schema.Op) error {
	return s.db.Write(op)
}

// removeOrphanLayers deletes layers/<cacheID> directories that no record
// points to: an import that crashed between its rename and its commit, or a
// RemoveImage that crashed between its commit and the directory removal.
// cacheIDs are random, so an unreferenced one can never become referenced.
func (s *Store) removeOrphanLayers(referenced map[string]bool) error {
	entries, err := os.ReadDir(s.layersDir)
	if err != nil {
		return fmt.Errorf("layer store: %w", err)
	}
	for _, e := range entries {
		if referenced[e.Name()] {
			continue
		}
		if err := os.RemoveAll(filepath.Join(s.layersDir, e.Name())); err != nil {
			return fmt.Errorf("layer store: remove orphan layer %s: %w", e.Name(), err)
		}
	}
	return nil
}

// Dir returns the store's absolute directory.
func (s *Store) Dir() string { return s.dir }

// validateMountID accepts exactly 64 lowercase hex digits; the id becomes a
// path component, so nothing else may pass.
func validateMountID(id string) error {
	if len(id) != 64 {
		return fmt.Errorf("mount id %q: must be 64 lowercase hex digits: %w", id, errdefs.ErrInvalidArgument)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return fmt.Errorf("mount id %q: must be 64 lowercase hex digits: %w", id, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// newCacheID returns 32 random hex digits. Layer directories are named
// randomly, not by digest, so a half-written directory can never be mistaken
// for a finished one with the same content.
func newCacheID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random cache id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

func (s *Store) layerDir(cacheID string) string { return filepath.Join(s.layersDir, cacheID) }
