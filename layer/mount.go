package layer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cairn-run/cairn/internal/errdefs"
	"github.com/cairn-run/cairn/internal/schema"
)

// Mount describes a container's layers: its init and RW layers on top of the
// image's.
type Mount struct {
	ID        string
	Image     string
	ChainID   string
	Rootfs    string   // overlay mount point (merged)
	Upper     string   // RW layer
	Work      string   // overlay workdir
	Init      string   // init layer, the topmost lower dir
	Lower     []string // image layer dirs, top first
	CreatedAt time.Time
}

func (s *Store) mountDir(id string) string { return filepath.Join(s.mountsDir, id) }

func (s *Store) mountFromRecord(id string, rec mountRecord, lower []string) Mount {
	d := s.mountDir(id)
	return Mount{
		ID:        id,
		Image:     rec.Image,
		ChainID:   rec.ChainID,
		Rootfs:    filepath.Join(d, "merged"),
		Upper:     filepath.Join(d, "upper"),
		Work:      filepath.Join(d, "work"),
		Init:      filepath.Join(d, "init"),
		Lower:     lower,
		CreatedAt: rec.Created,
	}
}

// CreateMount creates the init layer and an empty RW layer for the container
// mount mountID (64 hex, chosen by the caller) on image, and registers it: it
// commits RegisterMount's Op alone, then runs BuildMount. The registering
// transaction checks that the image exists (ErrNotFound).
//
// It is idempotent: called again with the same mountID and image — e.g. by
// recovery after a crash — it finishes what is missing and returns the same
// Mount; with another image it is ErrAlreadyExists. An already complete mount
// is left untouched (its layers may be mounted).
func (s *Store) CreateMount(ctx context.Context, mountID, image string, init InitConfig) (Mount, error) {
	if err := validateMountID(mountID); err != nil {
		return Mount{}, fmt.Errorf("create mount: %w", err)
	}
	if err := validateHostname(init.Hostname); err != nil {
		return Mount{}, fmt.Errorf("create mount %s: %w", mountID, err)
	}
	if err := ctx.Err(); err != nil {
		return Mount{}, err
	}
	fresh := false // this call registered it
	if err := s.update(s.registerMount(mountID, image, &fresh)); err != nil {
		return Mount{}, fmt.Errorf("create mount %s: %w", mountID, err)
	}
	m, err := s.BuildMount(ctx, mountID, init)
	if err != nil && fresh {
		// Leave nothing behind that this call made; a pre-existing record
		// stays for the caller to retry or remove.
		s.discardMount(mountID)
	}
	return m, err
}

// RegisterMount returns the write that registers the container mount
// mountID on image, for the caller to commit with the journal record that
// needs it (the create's INTENT): journal.Commit(recs, op). In the
// transaction it checks that image exists (ErrNotFound) and that mountID is
// free or already registered on the same image (then it writes nothing);
// on another image it is ErrAlreadyExists. It checks everything before it
// writes, as a schema.Op must. BuildMount makes the directories afterwards.
func (s *Store) RegisterMount(mountID, image string) (schema.Op, error) {
	if err := validateMountID(mountID); err != nil {
		return nil, fmt.Errorf("register mount: %w", err)
	}
	return s.registerMount(mountID, image, new(bool)), nil
}

// registerMount is RegisterMount's Op; it sets *fresh when it registered the
// mount (an Op may run more than once: it sets, never accumulates).
func (s *Store) registerMount(mountID, image string, fresh *bool) schema.Op {
	return func(tx *bolt.Tx) error {
		*fresh = false
		var rec mountRecord
		ok, err := getJSON(mountsBucket(tx), mountID, &rec)
		if err != nil {
			return fmt.Errorf("mount %s: %w", mountID, err)
		}
		if ok {
			if rec.Image == image || rec.ImageID == image {
				return nil
			}
			if img, _, err := resolveTx(tx, image); err == nil && (img.ID == rec.ImageID || img.Name == rec.Image) {
				return nil
			}
			return fmt.Errorf("mount %s exists on image %q: %w", mountID, rec.Image, errdefs.ErrAlreadyExists)
		}
		img, _, err := resolveTx(tx, image)
		if err != nil {
			return err
		}
		if _, err := s.layerDirs(tx, img.ChainID); err != nil {
			return err
		}
		rec = mountRecord{Image: img.Name, ImageID: img.ID, ChainID: img.ChainID, Created: time.Now().UTC()}
		if err := putJSON(mountsBucket(tx), mountID, rec); err != nil {
			return err
		}
		*fresh = true
		return nil
	}
}

// BuildMount makes the directories of the registered mount mountID: the
// init layer (filled from init), upper, work and finally merged. It is
// idempotent: a complete mount (merged/ exists, made last) is returned
// untouched, since its layers may be mounted; a partial one is finished.
// Recovery calls it to finish a create. An unregistered mount is
// ErrNotFound.
func (s *Store) BuildMount(ctx context.Context, mountID string, init InitConfig) (Mount, error) {
	if err := validateHostname(init.Hostname); err != nil {
		return Mount{}, fmt.Errorf("build mount %s: %w", mountID, err)
	}
	if err := ctx.Err(); err != nil {
		return Mount{}, err
	}
	m, err := s.MountInfo(mountID)
	if err != nil {
		return Mount{}, fmt.Errorf("build mount %s: %w", mountID, err)
	}
	if _, err := os.Lstat(m.Rootfs); err == nil {
		return m, nil // complete: merged/ is made last
	}
	if err := s.buildMountDirs(m, init.Hostname); err != nil {
		return Mount{}, fmt.Errorf("create mount %s: %w", mountID, err)
	}
	return m, nil
}

// buildMountDirs makes init (filled), upper, work and finally merged.
func (s *Store) buildMountDirs(m Mount, hostname string) error {
	if err := os.Mkdir(s.mountDir(m.ID), 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	if err := mkdirMode(m.Init, 0o755); err != nil {
		return err
	}
	resolv, err := os.ReadFile(s.resolvConf)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read host resolv.conf: %w", err)
	}
	if err := writeInitLayer(m.Init, hostname, filterResolvConf(resolv)); err != nil {
		return fmt.Errorf("init layer: %w", err)
	}
	// upper's mode becomes the mode of the container's "/".
	for _, d := range []struct {
		path string
		mode os.FileMode
	}{{m.Upper, 0o755}, {m.Work, 0o700}, {m.Rootfs, 0o755}} {
		if err := mkdirMode(d.path, d.mode); err != nil {
			return err
		}
	}
	return nil
}

// discardMount is the best-effort undo of a failed fresh CreateMount.
func (s *Store) discardMount(id string) {
	if os.RemoveAll(s.mountDir(id)) != nil {
		return // keep the record so RemoveMount can finish later
	}
	_ = s.update(unregisterMount(id))
}

// MountInfo returns the registered mount mountID, or ErrNotFound.
func (s *Store) MountInfo(mountID string) (Mount, error) {
	if err := validateMountID(mountID); err != nil {
		return Mount{}, err
	}
	var m Mount
	err := s.db.View(func(tx *bolt.Tx) error {
		var rec mountRecord
		ok, err := getJSON(mountsBucket(tx), mountID, &rec)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("mount %s: %w", mountID, errdefs.ErrNotFound)
		}
		lower, err := s.layerDirs(tx, rec.ChainID)
		if err != nil {
			return err
		}
		m = s.mountFromRecord(mountID, rec, lower)
		return nil
	})
	return m, err
}

// Mounts lists every registered mount, sorted by id, for startup recovery.
func (s *Store) Mounts() ([]Mount, error) {
	var out []Mount
	err := s.db.View(func(tx *bolt.Tx) error {
		return mountsBucket(tx).ForEach(func(k, v []byte) error {
			var rec mountRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("decode mount %s: %w", k, err)
			}
			lower, err := s.layerDirs(tx, rec.ChainID)
			if err != nil {
				return err
			}
			out = append(out, s.mountFromRecord(string(k), rec, lower))
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list mounts: %w", err)
	}
	return out, nil
}

// RemoveMount unmounts if needed, deletes the mount's directories and then
// its record: RemoveMountDirs, then UnregisterMount's Op committed alone. It
// is idempotent: an unknown id is not an error, and the directory of an
// unregistered id (a crash leftover) is deleted too.
func (s *Store) RemoveMount(mountID string) error {
	if err := s.RemoveMountDirs(mountID); err != nil {
		return err
	}
	if err := s.update(unregisterMount(mountID)); err != nil {
		return fmt.Errorf("remove mount %s: %w", mountID, err)
	}
	return nil
}

// RemoveMountDirs unmounts the mount if needed and deletes its directories,
// leaving its record; the caller then commits UnregisterMount's Op with the
// record that finishes the remove (its DONE). Idempotent, like RemoveMount.
func (s *Store) RemoveMountDirs(mountID string) error {
	if err := validateMountID(mountID); err != nil {
		return fmt.Errorf("remove mount: %w", err)
	}
	unlock := s.lockMount(mountID)
	defer unlock()
	if err := s.unmountLocked(mountID); err != nil {
		return err
	}
	// unmountLocked returned nil, so nothing is mounted on merged/: RemoveAll
	// does not stop at mount points and must not delete through one.
	if err := os.RemoveAll(s.mountDir(mountID)); err != nil {
		return fmt.Errorf("remove mount %s: %w", mountID, err)
	}
	return nil
}

// UnregisterMount returns the write that deletes the record of mount
// mountID (none: nothing to do), for the caller to commit with the record
// that finishes the remove, after RemoveMountDirs: journal.Commit(recs, op).
func (s *Store) UnregisterMount(mountID string) (schema.Op, error) {
	if err := validateMountID(mountID); err != nil {
		return nil, fmt.Errorf("unregister mount: %w", err)
	}
	return unregisterMount(mountID), nil
}

func unregisterMount(mountID string) schema.Op {
	return func(tx *bolt.Tx) error { return mountsBucket(tx).Delete([]byte(mountID)) }
}
