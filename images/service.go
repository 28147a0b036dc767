// Package images is the image service: what `cairn image` does, end to end.
// It reads what a client brings (an archive through imagearchive, a rootfs
// tar), stages and verifies every layer in the layer store's scratch
// directory, and then hands the store's changes to the journaled image
// driver (statemachine.Images): an intent naming the layers that will land,
// their install, and the registration committed with the DONE. Tag, rm and
// prune are image transitions too. It also resolves an image for a create
// (its config) and a user spec for a start.
//
// It moves images in and out of the store too, all in cairnd (the cairn
// binary, every container's shim, links none of this): Pull and Push talk
// to OCI distribution registries with go-containerregistry behind a
// transport that fences what they may reach (plain http only to loopback
// or --insecure-registry hosts, nothing off loopback from a loopback
// registry, header and stall timeouts); a pull is one journaled "pull"
// transition whose fetch step downloads and checks each missing layer.
// Save writes an OCI layout and a docker manifest.json in one tar from the
// configs and blobs the store keeps. Commit stages a container's changes as
// a layer and registers it as a "commit"; Export tars a container's
// flattened rootfs.
package images

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cairn-run/cairn/imagearchive"
	"github.com/cairn-run/cairn/internal/errdefs"
	"github.com/cairn-run/cairn/internal/imageref"
	"github.com/cairn-run/cairn/layer"
	sm "github.com/cairn-run/cairn/statemachine"
)

// Journal is the part of the journal the service reads.
type Journal interface {
	Image(id string) (sm.ImageView, bool)
	// Containers are the containers' views, to name those that use an
	// image.
	Containers() []sm.Container
}

// Service runs image operations on a layer store through the image driver.
type Service struct {
	Store   *layer.Store
	Driver  *sm.Images
	Journal Journal
	// Options bound what one load or import may read and unpack.
	Options layer.ImportOptions
	// Registries is how pulls and pushes reach registries.
	Registries Registries
	// Containers finds the container a commit or export names.
	Containers ContainerResolver
	// CrashPoint, if set, is called at the crash points the service
	// reaches inside a step (sm.CrashPullAfterKeptLayer).
	CrashPoint func(name string)
}

// Load reads an image archive from r (docker save, old or OCI-in-docker;
// an OCI layout as a tar; whole-archive gzip or zstd; layers plain, gzip
// or zstd) and registers each of its images, with the names the archive
// gives them, as one load transition each. Everything is read and checked
// before an image's intent: a refused archive writes nothing.
func (s *Service) Load(ctx context.Context, r io.Reader) ([]layer.Image, error) {
	st, err := s.Store.NewStaging(s.Options)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	defer st.Close()
	a, err := imagearchive.Spool(ctx, r, filepath.Join(st.Dir(), "archive"), imagearchive.SpoolOptions{MaxBytes: st.MaxBytes(), CheckSpace: st.CheckSpace})
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	defer a.Close()
	imgs, err := a.Images()
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	var out []layer.Image
	for _, img := range imgs {
		loaded, err := s.loadOne(ctx, st, img)
		if err != nil {
			return out, fmt.Errorf("load image %s: %w", img.ID, err)
		}
		out = append(out, loaded)
	}
	return out, nil
}

// loadOne stages the layers of img the store lacks, then runs its load.
func (s *Service) loadOne(ctx context.Context, st *layer.Staging, img imagearchive.Image) (layer.Image, error) {
	chain := layer.ChainIDs(img.DiffIDs())
	have, err := s.Store.RegisteredLayers(chain)
	if err != nil {
		return layer.Image{}, err
	}
	var missing []int // positions of the layers to stage, each chain position once
	for i := range img.Layers {
		if have[chain[i]] || slices.ContainsFunc(missing, func(j int) bool { return chain[j] == chain[i] }) {
			continue
		}
		missing = append(missing, i)
	}
	// Staged in parallel, as a pull's are; each reads its blob from the
	// spool by offset.
	staged, err := stageParallel(ctx, len(missing), func(ctx context.Context, k int) (layer.StagedLayer, error) {
		i := missing[k]
		l := img.Layers[i]
		blob, err := l.Open()
		if err != nil {
			return layer.StagedLayer{}, err
		}
		sl, err := st.Layer(ctx, blob, layer.LayerSource{ChainID: chain[i], Digest: l.Digest, Size: l.Size, DiffID: l.DiffID})
		if err != nil {
			return layer.StagedLayer{}, fmt.Errorf("layer %d (%s): %w", i+1, l.DiffID, err)
		}
		return sl, nil
	})
	if err != nil {
		return layer.Image{}, err
	}
	return s.register(ctx, sm.EventLoad, layer.NewImage{ID: img.ID, Config: img.Config, DiffIDs: img.DiffIDs(), Names: img.Names, Staged: staged})
}

// register runs the load or import of img: intent (naming the layers that
// land), install, and the registration with the DONE.
func (s *Service) register(ctx context.Context, event sm.Event, img layer.NewImage) (layer.Image, error) {
	var claims []sm.LayerClaim
	var cacheIDs []string
	for _, l := range img.Staged {
		claims = append(claims, sm.LayerClaim{ChainID: l.ChainID, CacheID: l.CacheID})
		cacheIDs = append(cacheIDs, l.CacheID)
	}
	var reg layer.Registration
	op := sm.ImageOp{
		Event: event, ID: img.ID, Refs: img.Names, Layers: claims,
		Do:   map[string]func() error{"layers": func() error { return s.Store.InstallLayers(img.Staged) }},
		Undo: map[string]func() error{"layers": func() error { return s.Store.RemoveUnregisteredLayers(cacheIDs) }},
		Outcome: func() (sm.Write, error) {
			return s.Store.RegisterImage(img, &reg), nil
		},
		After: func() { s.removeFreed(append(slices.Clone(reg.Unused), reg.Freed...)) },
	}
	if _, err := s.Driver.Run(ctx, op); err != nil {
		return layer.Image{}, err
	}
	return s.Store.ImageByID(img.ID)
}

func (s *Service) removeFreed(cacheIDs []string) {
	// A failure leaves unreferenced directories, which the store's next
	// Open deletes as orphans.
	_ = s.Store.RemoveUnregisteredLayers(cacheIDs)
}

// Import registers the rootfs tar r (plain or gzip) as a one-layer image
// called name, with the flat config of its layer; a taken name is
// ErrAlreadyExists, as it always was.
func (s *Service) Import(ctx context.Context, name string, r io.Reader) (layer.Image, error) {
	canonical, err := imageref.NormalizeTag(name)
	if err != nil {
		return layer.Image{}, fmt.Errorf("import %s: %w", errdefs.Quote(name), err)
	}
	if _, err := s.Store.Image(canonical); err == nil {
		return layer.Image{}, fmt.Errorf("import: image %s: %w", errdefs.Quote(canonical), errdefs.ErrAlreadyExists)
	}
	st, err := s.Store.NewStaging(s.Options)
	if err != nil {
		return layer.Image{}, fmt.Errorf("import %s: %w", errdefs.Quote(name), err)
	}
	defer st.Close()
	l, err := st.Flat(ctx, r)
	if err != nil {
		return layer.Image{}, fmt.Errorf("import %s: %w", errdefs.Quote(name), err)
	}
	config := layer.FlatConfig([]string{l.DiffID})
	img, err := s.register(ctx, sm.EventImport, layer.NewImage{ID: layer.ConfigID(config), Config: config, DiffIDs: []string{l.DiffID},
		Names: []string{canonical}, Staged: []layer.StagedLayer{l}, Exclusive: true})
	if err != nil {
		return layer.Image{}, fmt.Errorf("import %s: %w", errdefs.Quote(name), err)
	}
	img.Name = canonical
	return img, nil
}

// Tag gives the image src names the name dst (a tag, any spelling),
// moving it from another image that has it.
func (s *Service) Tag(ctx context.Context, src, dst string) (layer.Image, error) {
	img, err := s.Store.Image(src)
	if err != nil {
		return layer.Image{}, err
	}
	name, err := imageref.NormalizeTag(dst)
	if err != nil {
		return layer.Image{}, err
	}
	var reg layer.Registration
	_, err = s.Driver.Run(ctx, sm.ImageOp{
		Event: sm.EventTag, ID: img.ID, Refs: []string{name},
		Outcome: func() (sm.Write, error) { return s.Store.TagOp(img.ID, name, &reg), nil },
		After:   func() { s.removeFreed(reg.Freed) },
	})
	if err != nil {
		return layer.Image{}, err
	}
	out, err := s.Store.ImageByID(img.ID)
	out.Name = name
	return out, err
}

// Removed is what a remove did.
type Removed struct {
	// Untagged are the names removed; Deleted the id of the image deleted
	// ("" when it only lost a name).
	Untagged []string
	Deleted  string
}

// Remove removes ref as `docker rmi` does: a name of an image with other
// names is untagged; its last name, or its id, deletes the image, which is
// ErrFailedPrecondition while a container uses it (its layers stay as long
// as another image uses them).
func (s *Service) Remove(ctx context.Context, ref string) (Removed, error) {
	plan, err := s.Store.PlanRemove(ref)
	if err != nil {
		return Removed{}, s.namingUsers(ref, err)
	}
	if !plan.Delete {
		var out layer.Removal
		_, err := s.Driver.Run(ctx, sm.ImageOp{
			Event: sm.EventUntag, ID: plan.ID, Refs: []string{plan.Key},
			Outcome: func() (sm.Write, error) { return s.Store.UntagOp(plan.Key, &out), nil },
			After:   func() { s.removeFreed(out.Freed) },
		})
		return Removed{Untagged: []string{plan.Key}}, err
	}
	if err := s.delete(ctx, plan.ID, plan.Names); err != nil {
		return Removed{}, s.namingUsers(ref, err)
	}
	return Removed{Untagged: plan.Names, Deleted: plan.ID}, nil
}

func (s *Service) delete(ctx context.Context, id string, names []string) error {
	var out layer.Removal
	_, err := s.Driver.Run(ctx, sm.ImageOp{
		Event: sm.EventDelete, ID: id, Refs: names,
		Outcome: func() (sm.Write, error) { return s.Store.DeleteOp(id, &out), nil },
		After:   func() { s.removeFreed(out.Freed) },
	})
	return err
}

// namingUsers turns a refusal because container mounts use the image into
// one that names the containers, as Docker does.
func (s *Service) namingUsers(ref string, err error) error {
	if !errors.Is(err, errdefs.ErrFailedPrecondition) {
		return err
	}
	img, ierr := s.Store.Image(ref)
	if ierr != nil {
		return err
	}
	mounts, merr := s.Store.MountsOfImage(img.ID)
	if merr != nil || len(mounts) == 0 {
		return err
	}
	var users []string
	for _, c := range s.Journal.Containers() {
		if slices.Contains(mounts, c.MountID) {
			who := c.ID[:min(12, len(c.ID))]
			if c.Name != "" {
				who = c.Name + " (" + who + ")"
			}
			users = append(users, fmt.Sprintf("%s %s", c.State, who))
		}
	}
	if len(users) == 0 {
		return err
	}
	return fmt.Errorf("image %s is used by container %s; remove it first: %w", errdefs.Quote(ref), strings.Join(users, ", "), errdefs.ErrFailedPrecondition)
}

// Prune deletes the images without a name that no container uses; with
// all, every image no container uses. It returns the ids deleted.
func (s *Service) Prune(ctx context.Context, all bool) ([]string, error) {
	imgs, err := s.Store.Images()
	if err != nil {
		return nil, err
	}
	var deleted []string
	for _, img := range imgs {
		if len(img.Names) > 0 && !all {
			continue
		}
		users, err := s.Store.MountsOfImage(img.ID)
		if err != nil {
			return deleted, err
		}
		if len(users) > 0 {
			continue
		}
		if err := s.delete(ctx, img.ID, img.Names); err != nil {
			if errors.Is(err, errdefs.ErrFailedPrecondition) || errors.Is(err, errdefs.ErrNotFound) {
				continue // a container took it, or it went, meanwhile
			}
			return deleted, err
		}
		deleted = append(deleted, img.ID)
	}
	return deleted, nil
}

// Resolve finds the image a create names and reads the config it runs
// with.
func (s *Service) Resolve(ref string) (sm.ImageInfo, error) {
	img, err := s.Store.Image(ref)
	if err != nil {
		return sm.ImageInfo{}, err
	}
	cfg, err := ParseConfig(img.Config)
	if err != nil {
		return sm.ImageInfo{}, fmt.Errorf("image %s: %w", img.ID, err)
	}
	return sm.ImageInfo{Ref: img.Name, ID: img.ID, Config: RunConfig(cfg)}, nil
}

// Inspection is what `cairn image inspect` shows.
type Inspection struct {
	Image layer.Image
	// View is the journal's view; absent for an image imported before
	// images were journaled.
	View    *sm.ImageView
	Mounts  []string
	History []HistoryEntry
}

// Inspect describes the image ref names.
func (s *Service) Inspect(ref string) (Inspection, error) {
	img, err := s.Store.Image(ref)
	if err != nil {
		return Inspection{}, err
	}
	ins := Inspection{Image: img}
	if v, ok := s.Journal.Image(img.ID); ok {
		ins.View = &v
	}
	if ins.Mounts, err = s.Store.MountsOfImage(img.ID); err != nil {
		return ins, err
	}
	cfg, err := ParseConfig(img.Config)
	if err != nil {
		return ins, err
	}
	sizes := map[string]int64{}
	if ls, err := s.Store.Layers(); err == nil {
		for _, l := range ls {
			sizes[l.DiffID] = l.Size
		}
	}
	ins.History = History(cfg, sizes)
	return ins, nil
}

// List lists every image once.
func (s *Service) List() ([]layer.Image, error) { return s.Store.Images() }

// ImageID resolves ref to an image id.
func (s *Service) ImageID(ref string) (string, error) {
	img, err := s.Store.Image(ref)
	return img.ID, err
}
