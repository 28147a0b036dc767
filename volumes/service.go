package volumes

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/cairn-run/cairn/internal/errdefs"
	sm "github.com/cairn-run/cairn/statemachine"
)

// Journal is the journal as the volume service reads it.
type Journal interface {
	Volume(name string) (sm.VolumeView, bool)
	Volumes() []sm.VolumeView
	Containers() []sm.Container
}

// Service creates, lists, removes and prunes volumes.
type Service struct {
	// Dir holds the volumes: <Dir>/<name>/_data.
	Dir     string
	Journal Journal
	Driver  *sm.Volumes
}

// Volume is a volume as the API shows it.
type Volume struct {
	Name       string
	Mountpoint string
	Labels     map[string]string
	Anonymous  bool
	CreatedAt  time.Time
	// UsedBy are the ids of the containers whose mounts name it.
	UsedBy []string
	// Pending is the event of an unfinished intent, if any.
	Pending sm.Event
}

// Limits of a create's labels.
const (
	maxLabels     = 256
	maxLabelBytes = 4096
)

// Mountpoint is where volume name's data is on the host.
func (s *Service) Mountpoint(name string) string { return filepath.Join(s.Dir, name, "_data") }

func (s *Service) dir(name string) string { return filepath.Join(s.Dir, name) }

// NewAnonymousName is a fresh 64-hex volume name.
func NewAnonymousName() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Create makes volume name (a fresh anonymous one when name is empty).
// Creating a volume that exists returns it, as Docker does.
func (s *Service) Create(ctx context.Context, name string, labels map[string]string) (Volume, error) {
	anonymous := name == ""
	if anonymous {
		name = NewAnonymousName()
	}
	if err := sm.ValidateVolumeName(name); err != nil {
		return Volume{}, err
	}
	if err := checkLabels(labels); err != nil {
		return Volume{}, err
	}
	unlock, err := s.Driver.Lock(ctx, name)
	if err != nil {
		return Volume{}, err
	}
	defer unlock()
	if _, err := s.ensureLocked(ctx, name, &sm.VolumeSpec{Labels: labels, Anonymous: anonymous}); err != nil {
		return Volume{}, err
	}
	return s.Get(name)
}

// Ensure makes volume name if it does not exist (a create's -v NAME:/path),
// with spec, and says whether it did; an existing one is left as it is.
func (s *Service) Ensure(ctx context.Context, name string, spec sm.VolumeSpec) (created bool, err error) {
	if err := sm.ValidateVolumeName(name); err != nil {
		return false, err
	}
	unlock, err := s.Driver.Lock(ctx, name)
	if err != nil {
		return false, err
	}
	defer unlock()
	return s.ensureLocked(ctx, name, &spec)
}

func (s *Service) ensureLocked(ctx context.Context, name string, spec *sm.VolumeSpec) (bool, error) {
	if v, ok := s.Journal.Volume(name); ok && v.State == sm.StatePresent && v.Pending == nil {
		return false, nil
	}
	if err := os.MkdirAll(s.Dir, 0o701); err != nil {
		return false, fmt.Errorf("volumes directory: %w", err)
	}
	made := false
	_, err := s.Driver.RunLocked(ctx, sm.VolumeOp{
		Event: sm.EventVolumeCreate, Name: name, Spec: spec,
		Do: map[string]func() error{"directory": func() error {
			// A leftover directory of the same name is never adopted
			// (nor deleted): its data is no volume's the journal knows.
			if err := os.Mkdir(s.dir(name), 0o701); err != nil {
				if errors.Is(err, fs.ErrExist) {
					return fmt.Errorf("directory %s exists but no volume of that name does: %w", s.dir(name), errdefs.ErrFailedPrecondition)
				}
				return err
			}
			made = true
			return os.Mkdir(s.Mountpoint(name), 0o755)
		}},
		Undo: map[string]func() error{"directory": func() error {
			if !made {
				return nil
			}
			return os.RemoveAll(s.dir(name))
		}},
	})
	return err == nil, err
}

func checkLabels(labels map[string]string) error {
	if len(labels) > maxLabels {
		return fmt.Errorf("%d labels, at most %d are allowed: %w", len(labels), maxLabels, errdefs.ErrInvalidArgument)
	}
	for k, v := range labels {
		if k == "" || len(k)+len(v) > maxLabelBytes {
			return fmt.Errorf("label %s: keys must not be empty and a label at most %d bytes: %w", errdefs.Quote(k), maxLabelBytes, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// Get returns volume name: ErrNotFound if there is none (a create still
// in flight is none yet).
func (s *Service) Get(name string) (Volume, error) {
	v, ok := s.Journal.Volume(name)
	if !ok || v.State == sm.StateNone {
		return Volume{}, fmt.Errorf("no such volume: %s: %w", errdefs.Quote(name), errdefs.ErrNotFound)
	}
	return s.volume(v, s.Journal.Containers()), nil
}

func (s *Service) volume(v sm.VolumeView, containers []sm.Container) Volume {
	out := Volume{Name: v.Name, Mountpoint: s.Mountpoint(v.Name), Labels: maps.Clone(v.Labels), Anonymous: v.Anonymous, CreatedAt: v.CreatedAt}
	if v.Pending != nil {
		out.Pending = v.Pending.Event
	}
	for _, c := range containers {
		if c.UsesVolume(v.Name) {
			out.UsedBy = append(out.UsedBy, c.ID)
		}
	}
	slices.Sort(out.UsedBy)
	return out
}

// List returns every volume, by name.
func (s *Service) List() []Volume {
	containers := s.Journal.Containers()
	var out []Volume
	for _, v := range s.Journal.Volumes() {
		if v.State != sm.StateNone {
			out = append(out, s.volume(v, containers))
		}
	}
	return out
}

// Remove deletes volume name and its data. With force, a volume that does
// not exist is no error (removed is then false). A volume a container uses
// is refused either way (ErrFailedPrecondition naming the containers).
func (s *Service) Remove(ctx context.Context, name string, force bool) (removed bool, err error) {
	if err := sm.ValidateVolumeName(name); err != nil {
		return false, err
	}
	unlock, err := s.Driver.Lock(ctx, name)
	if err != nil {
		return false, err
	}
	defer unlock()
	return s.removeLocked(ctx, name, force)
}

func (s *Service) removeLocked(ctx context.Context, name string, force bool) (bool, error) {
	v, ok := s.Journal.Volume(name)
	if !ok || v.State == sm.StateNone {
		if force {
			return false, nil
		}
		return false, fmt.Errorf("no such volume: %s: %w", errdefs.Quote(name), errdefs.ErrNotFound)
	}
	if users := s.volume(v, s.Journal.Containers()).UsedBy; len(users) > 0 {
		return false, fmt.Errorf("volume %s is in use by %s (remove them first; -f does not override this): %w", errdefs.Quote(name), describe(users), errdefs.ErrFailedPrecondition)
	}
	_, err := s.Driver.RunLocked(ctx, sm.VolumeOp{
		Event: sm.EventVolumeRemove, Name: name,
		Do: map[string]func() error{"delete": func() error { return os.RemoveAll(s.dir(name)) }},
	})
	return err == nil, err
}

func describe(ids []string) string {
	short := make([]string, len(ids))
	for i, id := range ids {
		short[i] = id[:min(12, len(id))]
	}
	if len(short) > 10 {
		short = append(short[:10], fmt.Sprintf("and %d more", len(ids)-10))
	}
	what := "container "
	if len(ids) > 1 {
		what = "containers "
	}
	return what + fmt.Sprint(short)
}

// Prune removes the volumes no container uses: the anonymous ones, or
// every one with all (Docker's `volume prune [--all]`). It returns the
// names removed; a volume that gained a user meanwhile is skipped.
func (s *Service) Prune(ctx context.Context, all bool) ([]string, error) {
	var removed []string
	var errs []error
	for _, v := range s.List() {
		if len(v.UsedBy) > 0 || v.Pending != "" || !all && !v.Anonymous {
			continue
		}
		ok, err := s.Remove(ctx, v.Name, true)
		switch {
		case errors.Is(err, errdefs.ErrFailedPrecondition):
		case err != nil:
			errs = append(errs, err)
		case ok:
			removed = append(removed, v.Name)
		}
	}
	return removed, errors.Join(errs...)
}

// Exists reports whether volume name's directory and data directory exist
// (recovery's observation).
func (s *Service) Exists(name string) (dir, data bool, err error) {
	exists := func(p string) (bool, error) {
		_, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return err == nil, err
	}
	if dir, err = exists(s.dir(name)); err != nil || !dir {
		return dir, false, err
	}
	data, err = exists(s.Mountpoint(name))
	return dir, data, err
}

// RemoveDirectory deletes volume name's directory and its data (recovery's
// action).
func (s *Service) RemoveDirectory(name string) error {
	if err := sm.ValidateVolumeName(name); err != nil {
		return err
	}
	return os.RemoveAll(s.dir(name))
}
