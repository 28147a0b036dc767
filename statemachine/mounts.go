package statemachine

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/cairn-run/cairn/internal/errdefs"
)

// MountType is what a container mount is made of.
type MountType string

const (
	MountVolume MountType = "volume" // a named or anonymous volume
	MountBind   MountType = "bind"   // a host path
	MountTmpfs  MountType = "tmpfs"  // memory, gone when the container stops
)

// Mount is one filesystem a container sees besides its root, as its
// create's intent records it (so recovery, inspect and the volume rules
// see it).
type Mount struct {
	Type MountType `json:"type"`
	// Source is the volume's name or the bind's host path ("" for tmpfs).
	Source      string `json:"source,omitempty"`
	Destination string `json:"destination"`
	ReadOnly    bool   `json:"read_only,omitempty"`
	// TmpfsSize is a tmpfs's size in bytes; 0 is the kernel's default.
	TmpfsSize int64 `json:"tmpfs_size,omitempty"`
	// Anonymous: the volume was made for this container (an image's
	// VOLUME, or a -v without a name); `rm -v` removes it.
	Anonymous bool `json:"anonymous,omitempty"`
}

// MaxMounts bounds the mounts of one container.
const MaxMounts = 128

// maxMountPath bounds a mount's paths (PATH_MAX).
const maxMountPath = 4096

// ValidateMounts refuses mounts that could never work: an unknown type, a
// container path that is relative, "/", or mounted twice, a bind source
// that is not absolute, a volume name Docker would refuse, a tmpfs with a
// source or a negative size. Whether a bind source exists is the caller's
// to check (it is the machine's). It is pure.
func ValidateMounts(mounts []Mount) error {
	if len(mounts) > MaxMounts {
		return fmt.Errorf("%d mounts, at most %d are allowed: %w", len(mounts), MaxMounts, errdefs.ErrInvalidArgument)
	}
	seen := map[string]bool{}
	for _, m := range mounts {
		dst := m.Destination
		switch {
		case len(dst) > maxMountPath || len(m.Source) > maxMountPath:
			return fmt.Errorf("mount path longer than %d bytes: %w", maxMountPath, errdefs.ErrInvalidArgument)
		case strings.ContainsRune(dst, 0) || strings.ContainsRune(m.Source, 0):
			return fmt.Errorf("mount path contains a NUL byte: %w", errdefs.ErrInvalidArgument)
		case !path.IsAbs(dst):
			return fmt.Errorf("mount destination %s is not an absolute path: %w", errdefs.Quote(dst), errdefs.ErrInvalidArgument)
		case path.Clean(dst) == "/":
			return fmt.Errorf("mount destination cannot be \"/\": %w", errdefs.ErrInvalidArgument)
		case seen[path.Clean(dst)]:
			return fmt.Errorf("duplicate mount point %s: %w", errdefs.Quote(dst), errdefs.ErrInvalidArgument)
		}
		seen[path.Clean(dst)] = true
		switch m.Type {
		case MountVolume:
			if m.Source == "" && !m.Anonymous {
				return fmt.Errorf("volume mount at %s names no volume: %w", errdefs.Quote(dst), errdefs.ErrInvalidArgument)
			}
			if m.Source != "" {
				if err := ValidateVolumeName(m.Source); err != nil {
					return err
				}
			}
		case MountBind:
			if !path.IsAbs(m.Source) {
				return fmt.Errorf("bind source %s is not an absolute path: %w", errdefs.Quote(m.Source), errdefs.ErrInvalidArgument)
			}
		case MountTmpfs:
			if m.Source != "" {
				return fmt.Errorf("a tmpfs mount takes no source (got %s): %w", errdefs.Quote(m.Source), errdefs.ErrInvalidArgument)
			}
			if m.TmpfsSize < 0 {
				return fmt.Errorf("tmpfs size %d is negative: %w", m.TmpfsSize, errdefs.ErrInvalidArgument)
			}
		default:
			return fmt.Errorf("unknown mount type %s (volume, bind or tmpfs): %w", errdefs.Quote(string(m.Type)), errdefs.ErrInvalidArgument)
		}
		if m.Type != MountTmpfs && m.TmpfsSize != 0 {
			return fmt.Errorf("tmpfs-size on a %s mount: %w", m.Type, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// VolumeNames are the volumes mounts name, in order, each once.
func VolumeNames(mounts []Mount) []string {
	var out []string
	for _, m := range mounts {
		if m.Type == MountVolume && m.Source != "" && !slices.Contains(out, m.Source) {
			out = append(out, m.Source)
		}
	}
	return out
}

// UsesVolume reports whether c's mounts name volume name.
func (c Container) UsesVolume(name string) bool {
	return slices.Contains(VolumeNames(c.Mounts), name)
}

// WithImageVolumes adds an anonymous volume mount for each of an image's
// VOLUME paths that no mount covers (Docker's rule). It is pure.
func WithImageVolumes(mounts []Mount, imageVolumes []string) []Mount {
	out := slices.Clone(mounts)
	for _, v := range imageVolumes {
		dst := path.Clean("/" + v)
		if dst == "/" || slices.ContainsFunc(out, func(m Mount) bool { return path.Clean(m.Destination) == dst }) {
			continue
		}
		out = append(out, Mount{Type: MountVolume, Destination: dst, Anonymous: true})
	}
	return out
}

// AnonymousVolumes are the volumes made for the container (rm -v removes them).
func AnonymousVolumes(mounts []Mount) []string {
	var out []string
	for _, m := range mounts {
		if m.Type == MountVolume && m.Anonymous && m.Source != "" {
			out = append(out, m.Source)
		}
	}
	return out
}
