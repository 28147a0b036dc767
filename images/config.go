package images

import (
	"bytes"
	"fmt"
	"slices"
	"sort"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/cairn-run/cairn/internal/errdefs"
	sm "github.com/cairn-run/cairn/statemachine"
)

// ParseConfig reads an image config (OCI or Docker; both have the same
// fields) as the layer store keeps it.
func ParseConfig(raw []byte) (*v1.ConfigFile, error) {
	cfg, err := v1.ParseConfigFile(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("image config: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	return cfg, nil
}

// RunConfig is the part of an image config a container runs with.
func RunConfig(cfg *v1.ConfigFile) sm.ImageConfig {
	c := cfg.Config
	return sm.ImageConfig{
		Entrypoint: slices.Clone(c.Entrypoint), Cmd: slices.Clone(c.Cmd), Env: slices.Clone(c.Env),
		WorkingDir: c.WorkingDir, User: c.User, StopSignal: c.StopSignal,
		ExposedPorts: sortedSet(c.ExposedPorts), Volumes: sortedSet(c.Volumes), Labels: c.Labels,
	}
}

func sortedSet(m map[string]struct{}) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// HistoryEntry is one line of `cairn image history`: a step of the image's
// build, newest first, with the layer it made (if it made one).
type HistoryEntry struct {
	Created    time.Time
	CreatedBy  string
	Comment    string
	EmptyLayer bool
	// DiffID and Size are the layer's, for a step that made one.
	DiffID string
	Size   int64
}

// History is the image's build history, newest first: the config's
// history entries, each non-empty one matched with the next layer. A
// config without history (a flat import) gets one entry per layer.
func History(cfg *v1.ConfigFile, layerSizes map[string]int64) []HistoryEntry {
	var out []HistoryEntry
	diffIDs := cfg.RootFS.DiffIDs
	layer := 0
	for _, h := range cfg.History {
		e := HistoryEntry{Created: h.Created.Time, CreatedBy: h.CreatedBy, Comment: h.Comment, EmptyLayer: h.EmptyLayer}
		if !h.EmptyLayer && layer < len(diffIDs) {
			e.DiffID = diffIDs[layer].String()
			e.Size = layerSizes[e.DiffID]
			layer++
		}
		out = append(out, e)
	}
	for ; layer < len(diffIDs); layer++ {
		d := diffIDs[layer].String()
		out = append(out, HistoryEntry{Created: cfg.Created.Time, DiffID: d, Size: layerSizes[d]})
	}
	slices.Reverse(out)
	return out
}
