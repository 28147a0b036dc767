package main

import (
	"fmt"
	"strconv"
	"strings"

	units "github.com/docker/go-units"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
)

// mountsValue collects -v and --mount flags into the create's mounts, in
// the order given; each is parsed as it is set, so a malformed one is a
// flag error before anything is sent.
type mountsValue struct {
	mounts *[]*cairnv1.Mount
	parse  func(string) (*cairnv1.Mount, error)
	kind   string
}

func (v *mountsValue) Set(s string) error {
	m, err := v.parse(s)
	if err != nil {
		return err
	}
	*v.mounts = append(*v.mounts, m)
	return nil
}

func (v *mountsValue) String() string { return "" }
func (v *mountsValue) Type() string   { return v.kind }

// parseVolumeFlag reads Docker's -v: NAME:/path[:ro|rw] (a volume, made if
// missing), /host/path:/path[:ro|rw] (a bind; the host path must exist)
// or /path (a new anonymous volume).
func parseVolumeFlag(s string) (*cairnv1.Mount, error) {
	parts := strings.Split(s, ":")
	m := &cairnv1.Mount{Type: cairnv1.MountType_MOUNT_TYPE_VOLUME}
	switch len(parts) {
	case 1:
		m.Destination = parts[0]
	case 2, 3:
		m.Source, m.Destination = parts[0], parts[1]
		if len(parts) == 3 {
			switch parts[2] {
			case "ro":
				m.ReadOnly = true
			case "rw":
			default:
				return nil, fmt.Errorf("-v %q: unknown mode %q (ro or rw)", s, parts[2])
			}
		}
		if m.Source == "" {
			return nil, fmt.Errorf("-v %q: empty source", s)
		}
		if strings.HasPrefix(m.Source, "/") {
			m.Type = cairnv1.MountType_MOUNT_TYPE_BIND
		}
	default:
		return nil, fmt.Errorf("-v %q: want NAME:/path[:ro], /host/path:/path[:ro] or /path", s)
	}
	return m, nil
}

// parseMountFlag reads Docker's --mount: type=volume|bind|tmpfs,
// src|source=..., dst|destination|target=..., readonly|ro[=true|false],
// tmpfs-size=SIZE (bytes, or 64m, 1g...).
func parseMountFlag(s string) (*cairnv1.Mount, error) {
	m := &cairnv1.Mount{Type: cairnv1.MountType_MOUNT_TYPE_VOLUME}
	for _, field := range strings.Split(s, ",") {
		key, val, hasVal := strings.Cut(field, "=")
		switch strings.ToLower(key) {
		case "type":
			switch val {
			case "volume":
				m.Type = cairnv1.MountType_MOUNT_TYPE_VOLUME
			case "bind":
				m.Type = cairnv1.MountType_MOUNT_TYPE_BIND
			case "tmpfs":
				m.Type = cairnv1.MountType_MOUNT_TYPE_TMPFS
			default:
				return nil, fmt.Errorf("--mount %q: unknown type %q (volume, bind or tmpfs)", s, val)
			}
		case "src", "source":
			m.Source = val
		case "dst", "destination", "target":
			m.Destination = val
		case "readonly", "ro":
			ro := true
			if hasVal {
				b, err := strconv.ParseBool(val)
				if err != nil {
					return nil, fmt.Errorf("--mount %q: readonly=%q is not a boolean", s, val)
				}
				ro = b
			}
			m.ReadOnly = ro
		case "tmpfs-size":
			n, err := units.RAMInBytes(val)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("--mount %q: tmpfs-size %q is not a size", s, val)
			}
			m.TmpfsSize = n
		default:
			return nil, fmt.Errorf("--mount %q: unknown key %q", s, key)
		}
	}
	if m.Destination == "" {
		return nil, fmt.Errorf("--mount %q: no dst (destination)", s)
	}
	return m, nil
}
