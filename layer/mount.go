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
// mount mountID (64 hex, chosen by the caller) on image, and registers it. The
// registering transaction checks that the image exists (ErrNotFound).
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
	var (
		m     Mount
		fresh bool // this call registered it
	)
	err := s.db.Update(func(tx *bolt.Tx) error {
		var rec mountRecord
		ok, err := getJSON(mountsBucket(tx), mountID, &rec)
		if err != nil {
			return err
		}
		if ok && rec.Image != image {
			return fmt.Errorf("mount %s exists on image %q: %w", mountID, rec.Image, errdefs.ErrAlreadyExists)
		}
		if !ok {
			var img imageRecord
			found, err := getJSON(imagesBucket(tx), image, &img)
			if err != nil {
				return err
			}
			if !found {
				return fmt.Errorf("image %q: %w", image, errdefs.ErrNotFound)
			}
			rec = mountRecord{Image: image, ChainID: img.ChainID, Created: time.Now().UTC()}
			if err := putJSON(mountsBucket(tx), mountID, rec); err != nil {
				return err
			}
			fresh = true
		}
		lower, err := s.layerDirs(tx, rec.ChainID)
		if err != nil {
			return err
		}
		m = s.mountFromRecord(mountID, rec, lower)
		return nil
	})
	if err != nil {
		return Mount{}, fmt.Errorf("create mount %s: %w", mountID, err)
	}
	if !fresh {
		if _, err := os.Lstat(m.Rootfs); err == nil {
			return m, nil // complete: merged/ is made last
		}
	}
	if err := s.buildMountDirs(m, init.Hostname); err != nil {
		if fresh {
			// Leave nothing behind that this call made; a pre-existing
			// record stays for the caller to retry or remove.
			s.discardMount(mountID)
		}
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
	_ = s.db.Update(func(tx *bolt.Tx) error { return mountsBucket(tx).Delete([]byte(id)) })
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
// its record. It is idempotent: an unknown id is not an error, and the
// directory of an unregistered id (a crash leftover) is deleted too.
func (s *Store) RemoveMount(mountID string) error {
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
	err := s.db.Update(func(tx *bolt.Tx) error {
		return mountsBucket(tx).Delete([]byte(mountID))
	})
	if err != nil {
		return fmt.Errorf("remove mount %s: %w", mountID, err)
	}
	return nil
}
