package images

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/gzip"

	"github.com/cairn-run/cairn/internal/errdefs"
	"github.com/cairn-run/cairn/internal/imageref"
	"github.com/cairn-run/cairn/layer"
	sm "github.com/cairn-run/cairn/statemachine"
)

// ContainerResolver finds the container a commit or export names (the
// journal).
type ContainerResolver interface {
	Resolve(ref string) (string, error)
	Container(id string) (sm.Container, bool)
}

// CommitRequest is what `cairn commit` asks for.
type CommitRequest struct {
	Container string
	// Ref is the new image's name; "" leaves it dangling under its id.
	Ref string
	// Changes are Dockerfile instructions applied to the config (CMD,
	// ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE, VOLUME, STOPSIGNAL).
	Changes         []string
	Comment, Author string
}

func (s *Service) container(ref string) (sm.Container, error) {
	if s.Containers == nil {
		return sm.Container{}, fmt.Errorf("no container lookup: %w", errdefs.ErrUnavailable)
	}
	id, err := s.Containers.Resolve(ref)
	if err != nil {
		return sm.Container{}, err
	}
	c, ok := s.Containers.Container(id)
	if !ok || c.MountID == "" {
		return sm.Container{}, fmt.Errorf("container %s: %w", errdefs.Quote(ref), errdefs.ErrNotFound)
	}
	return c, nil
}

// Commit makes an image of a container, as `docker commit` does: the
// container's image plus one layer holding what the container changed
// (its RW layer, whiteouts as OCI whiteouts, gzip-compressed), the
// container's image config with the changes applied, a history entry and
// the new diffID. The layer is staged and checked like a loaded one before
// the intent; the commit is then one journaled transition (intent naming
// the layer directory, install, registration with the DONE).
func (s *Service) Commit(ctx context.Context, req CommitRequest) (layer.Image, error) {
	img, err := s.commit(ctx, req)
	if err != nil {
		return layer.Image{}, fmt.Errorf("commit %s: %w", errdefs.Quote(req.Container), err)
	}
	return img, nil
}

func (s *Service) commit(ctx context.Context, req CommitRequest) (layer.Image, error) {
	var names []string
	if req.Ref != "" {
		canonical, err := imageref.NormalizeTag(req.Ref)
		if err != nil {
			return layer.Image{}, err
		}
		names = []string{canonical}
	}
	c, err := s.container(req.Container)
	if err != nil {
		return layer.Image{}, err
	}
	if c.ImageID == "" {
		return layer.Image{}, fmt.Errorf("container %s was made before image ids were kept: %w", c.ID, errdefs.ErrFailedPrecondition)
	}
	parent, err := s.Store.ImageByID(c.ImageID)
	if err != nil {
		return layer.Image{}, fmt.Errorf("the container's image: %w", err)
	}
	cfg, err := ParseConfig(parent.Config)
	if err != nil {
		return layer.Image{}, err
	}
	if err := ApplyChanges(&cfg.Config, req.Changes); err != nil {
		return layer.Image{}, err
	}
	st, err := s.Store.NewStaging(s.Options)
	if err != nil {
		return layer.Image{}, err
	}
	defer st.Close()
	pr, pw := io.Pipe()
	go func() {
		zw, _ := gzip.NewWriterLevel(pw, gzip.BestSpeed)
		err := s.Store.DiffTar(ctx, c.MountID, zw)
		if err == nil {
			err = zw.Close()
		}
		pw.CloseWithError(err)
	}()
	staged, err := st.Diff(ctx, pr)
	pr.CloseWithError(io.ErrClosedPipe)
	if err != nil {
		return layer.Image{}, fmt.Errorf("the container's changes: %w", err)
	}
	diffIDs := append(append([]string{}, parent.DiffIDs...), staged.DiffID)
	staged.ChainID = layer.ChainIDs(diffIDs)[len(diffIDs)-1]
	now := time.Now().UTC()
	cfg.Created = v1.Time{Time: now}
	cfg.Author = req.Author
	h, _ := v1.NewHash(staged.DiffID)
	cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, h)
	createdBy := "cairn commit"
	if len(req.Changes) > 0 {
		createdBy += " --change " + strings.Join(req.Changes, " --change ")
	}
	cfg.History = append(cfg.History, v1.History{Created: v1.Time{Time: now}, CreatedBy: createdBy, Comment: req.Comment, Author: req.Author})
	config, err := json.Marshal(cfg)
	if err != nil {
		return layer.Image{}, err
	}
	return s.register(ctx, sm.EventCommit, layer.NewImage{ID: layer.ConfigID(config), Config: config, DiffIDs: diffIDs, Names: names,
		Staged: []layer.StagedLayer{staged}})
}

// ApplyChanges applies Dockerfile instructions to an image config, as
// `docker commit --change` does: CMD, ENTRYPOINT and VOLUME take the JSON
// form or the shell form (CMD and ENTRYPOINT run by /bin/sh -c), ENV and
// LABEL take KEY=VALUE pairs (or ENV KEY VALUE), EXPOSE ports, WORKDIR,
// USER and STOPSIGNAL one value. Anything else is ErrInvalidArgument.
func ApplyChanges(c *v1.Config, changes []string) error {
	for _, ch := range changes {
		if err := applyChange(c, ch); err != nil {
			return fmt.Errorf("change %s: %w", errdefs.Quote(ch), err)
		}
	}
	return nil
}

func applyChange(c *v1.Config, change string) error {
	instr, rest, _ := strings.Cut(strings.TrimSpace(change), " ")
	rest = strings.TrimSpace(rest)
	if rest == "" {
		return fmt.Errorf("%s needs a value: %w", errdefs.Quote(instr), errdefs.ErrInvalidArgument)
	}
	switch strings.ToUpper(instr) {
	case "CMD":
		c.Cmd = commandForm(rest)
	case "ENTRYPOINT":
		c.Entrypoint = commandForm(rest)
		c.Cmd = nil // as Docker does: a new entrypoint drops the old cmd
	case "ENV":
		pairs, err := keyValues(rest, true)
		if err != nil {
			return err
		}
		for _, kv := range pairs {
			c.Env = setEnv(c.Env, kv[0], kv[1])
		}
	case "LABEL":
		pairs, err := keyValues(rest, false)
		if err != nil {
			return err
		}
		if c.Labels == nil {
			c.Labels = map[string]string{}
		}
		for _, kv := range pairs {
			c.Labels[kv[0]] = kv[1]
		}
	case "WORKDIR":
		c.WorkingDir = rest
	case "USER":
		c.User = rest
	case "STOPSIGNAL":
		c.StopSignal = rest
	case "EXPOSE":
		if c.ExposedPorts == nil {
			c.ExposedPorts = map[string]struct{}{}
		}
		for _, p := range strings.Fields(rest) {
			if !strings.Contains(p, "/") {
				p += "/tcp"
			}
			c.ExposedPorts[p] = struct{}{}
		}
	case "VOLUME":
		if c.Volumes == nil {
			c.Volumes = map[string]struct{}{}
		}
		vols := jsonList(rest)
		if vols == nil {
			vols = strings.Fields(rest)
		}
		for _, v := range vols {
			c.Volumes[v] = struct{}{}
		}
	default:
		return fmt.Errorf("unknown instruction %s (CMD, ENTRYPOINT, ENV, LABEL, WORKDIR, USER, STOPSIGNAL, EXPOSE, VOLUME): %w", errdefs.Quote(instr), errdefs.ErrInvalidArgument)
	}
	return nil
}

func jsonList(s string) []string {
	if !strings.HasPrefix(s, "[") {
		return nil
	}
	var out []string
	if json.Unmarshal([]byte(s), &out) != nil {
		return nil
	}
	return out
}

func commandForm(s string) []string {
	if l := jsonList(s); l != nil {
		return l
	}
	return []string{"/bin/sh", "-c", s}
}

// keyValues reads KEY=VALUE pairs (values may be double-quoted); with
// legacy, "KEY VALUE" (one pair, the rest of the line) too.
func keyValues(s string, legacy bool) ([][2]string, error) {
	first, _, _ := strings.Cut(s, " ")
	if legacy && !strings.Contains(first, "=") {
		k, v, _ := strings.Cut(s, " ")
		return [][2]string{{k, strings.TrimSpace(v)}}, nil
	}
	var out [][2]string
	for s != "" {
		k, rest, ok := strings.Cut(s, "=")
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			return nil, fmt.Errorf("want KEY=VALUE pairs: %w", errdefs.ErrInvalidArgument)
		}
		var v string
		if strings.HasPrefix(rest, `"`) {
			end := 1
			for end < len(rest) && (rest[end] != '"' || rest[end-1] == '\\') {
				end++
			}
			if end == len(rest) {
				return nil, fmt.Errorf("unterminated quote: %w", errdefs.ErrInvalidArgument)
			}
			u, err := strconv.Unquote(rest[:end+1])
			if err != nil {
				return nil, fmt.Errorf("bad quoting: %w", errdefs.ErrInvalidArgument)
			}
			v, rest = u, rest[end+1:]
		} else {
			v, rest, _ = strings.Cut(rest, " ")
		}
		out = append(out, [2]string{k, v})
		s = strings.TrimSpace(rest)
	}
	return out, nil
}

func setEnv(env []string, k, v string) []string {
	for i, e := range env {
		if ek, _, _ := strings.Cut(e, "="); ek == k {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}

// Export writes the flattened root filesystem of a container as a tar
// (`docker export`).
func (s *Service) Export(ctx context.Context, ref string, w io.Writer) error {
	c, err := s.container(ref)
	if err != nil {
		return fmt.Errorf("export %s: %w", errdefs.Quote(ref), err)
	}
	if err := s.Store.ExportTar(ctx, c.MountID, w); err != nil {
		return fmt.Errorf("export %s: %w", errdefs.Quote(ref), err)
	}
	return nil
}
