package statemachine

import (
	"fmt"
	"maps"
	"path"
	"reflect"
	"slices"
	"strings"

	"github.com/cairn-run/cairn/internal/errdefs"
	"github.com/cairn-run/cairn/resources"
)

// ImageInfo is what a create learns of its image.
type ImageInfo struct {
	// Ref is the name the image was found under (canonical), or its id.
	Ref string
	// ID is the image id.
	ID     string
	Config ImageConfig
}

// ImageConfig is the part of an image's config a container runs with.
type ImageConfig struct {
	Entrypoint   []string
	Cmd          []string
	Env          []string
	WorkingDir   string
	User         string
	StopSignal   string
	ExposedPorts []string
	Volumes      []string
	Labels       map[string]string
}

// ContainerConfig is what a container took from its image's config and
// its create's overrides, besides its command and environment.
type ContainerConfig struct {
	// WorkingDir is the process's directory, created if missing; "" is /.
	WorkingDir string `json:"working_dir,omitempty"`
	// User is "name", "uid", "uid:gid", "name:group", resolved through
	// the container's /etc/passwd and /etc/group at each start; "" is root.
	User string `json:"user,omitempty"`
	// StopSignal is what stop sends first; "" is SIGTERM.
	StopSignal string `json:"stop_signal,omitempty"`
	// ExposedPorts, Volumes and Labels are recorded for the networking and
	// volume work to come.
	ExposedPorts []string          `json:"exposed_ports,omitempty"`
	Volumes      []string          `json:"volumes,omitempty"`
	Labels       map[string]string `json:"labels,omitempty"`
	// Network is what the create asked of the network (nil: none).
	Network *NetworkSettings `json:"network,omitempty"`
	// Resources are the container's limits with the daemon's defaults
	// applied at create (resources.Resolve); an update changes them.
	Resources resources.Resources `json:"resources,omitzero"`
	// Security are its security options, normalised.
	Security resources.Security `json:"security,omitzero"`
}

// Clone returns a deep copy.
func (c ContainerConfig) Clone() ContainerConfig {
	c.Resources = c.Resources.Clone()
	c.Security = c.Security.Clone()
	c.ExposedPorts = slices.Clone(c.ExposedPorts)
	c.Volumes = slices.Clone(c.Volumes)
	c.Labels = maps.Clone(c.Labels)
	c.Network = c.Network.Clone()
	return c
}

// maxUserBytes bounds a user spec: a name and a group of at most 256 bytes
// each, and a colon.
const maxUserBytes = 513

// MergeConfig is Docker's merge of an image's config with a create's
// overrides: the command is the entrypoint (the override's, or the
// image's) followed by the request's arguments, or by the image's Cmd when
// there are none and the entrypoint was not overridden; the environment is
// the image's with the request's entries replacing those of the same key
// (and appended otherwise); the working directory, user and stop signal
// are the request's, else the image's. It is pure.
func MergeConfig(img ImageConfig, req CreateRequest) (command, env []string, cfg ContainerConfig, err error) {
	entrypoint, cmd := img.Entrypoint, req.Command
	if req.Entrypoint != nil {
		entrypoint = *req.Entrypoint
	} else if len(cmd) == 0 {
		cmd = img.Cmd
	}
	command = append(slices.Clone(entrypoint), cmd...)
	if len(command) == 0 || command[0] == "" {
		return nil, nil, cfg, fmt.Errorf("no command given, and the image has neither Entrypoint nor Cmd: %w", errdefs.ErrInvalidArgument)
	}
	env = mergeEnv(img.Env, req.Env)

	cfg.WorkingDir = img.WorkingDir
	if req.WorkingDir != "" {
		if !path.IsAbs(req.WorkingDir) {
			return nil, nil, cfg, fmt.Errorf("working directory %s is not absolute: %w", errdefs.Quote(req.WorkingDir), errdefs.ErrInvalidArgument)
		}
		cfg.WorkingDir = req.WorkingDir
	}
	if cfg.WorkingDir != "" {
		// An image's relative WorkingDir is taken from the root, as Docker does.
		cfg.WorkingDir = path.Clean("/" + cfg.WorkingDir)
		if strings.ContainsRune(cfg.WorkingDir, 0) {
			return nil, nil, cfg, fmt.Errorf("working directory holds a NUL byte: %w", errdefs.ErrInvalidArgument)
		}
		if cfg.WorkingDir == "/" {
			cfg.WorkingDir = ""
		}
	}
	cfg.User = img.User
	if req.User != "" {
		cfg.User = req.User
	}
	if len(cfg.User) > maxUserBytes || strings.ContainsAny(cfg.User, "\x00\n") {
		return nil, nil, cfg, fmt.Errorf("user %s: at most %d bytes, no NUL or newline: %w", errdefs.Quote(cfg.User), maxUserBytes, errdefs.ErrInvalidArgument)
	}
	if img.StopSignal != "" {
		sig, err := ParseSignal(img.StopSignal)
		if err != nil {
			return nil, nil, cfg, fmt.Errorf("the image's stop signal: %w", err)
		}
		cfg.StopSignal = SignalName(sig)
	}
	cfg.ExposedPorts = slices.Sorted(slices.Values(img.ExposedPorts))
	cfg.Volumes = slices.Sorted(slices.Values(img.Volumes))
	if len(img.Labels) > 0 {
		cfg.Labels = maps.Clone(img.Labels)
	}
	return command, env, cfg, nil
}

// mergeEnv is the image's environment with each override replacing the
// entry of its key, or appended in its order.
func mergeEnv(image, overrides []string) []string {
	out := slices.Clone(image)
	for _, kv := range overrides {
		key, _, _ := strings.Cut(kv, "=")
		i := slices.IndexFunc(out, func(e string) bool {
			k, _, _ := strings.Cut(e, "=")
			return k == key
		})
		if i >= 0 {
			out[i] = kv
		} else {
			out = append(out, kv)
		}
	}
	return out
}

func (c ContainerConfig) isZero() bool {
	return c.WorkingDir == "" && c.User == "" && c.StopSignal == "" && len(c.ExposedPorts) == 0 && len(c.Volumes) == 0 && len(c.Labels) == 0 &&
		c.Network == nil && reflect.ValueOf(c.Resources).IsZero() && c.Security.IsZero()
}
