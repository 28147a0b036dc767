package main

import (
	"path"
	"sort"
	"strconv"
	"strings"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/internal/errdefs"
)

// filters are the --filter KEY=VALUE flags of a listing: values of one key
// OR, different keys AND, as Docker's.
type filters map[string][]string

var (
	containerFilterKeys = []string{"id", "name", "status", "label", "ancestor", "exited"}
	imageFilterKeys     = []string{"reference", "dangling", "label", "id"}
)

// containerStates are the values of a status filter.
var containerStates = map[string]cairnv1.ContainerState{
	"created": cairnv1.ContainerState_CONTAINER_STATE_CREATED,
	"running": cairnv1.ContainerState_CONTAINER_STATE_RUNNING,
	"paused":  cairnv1.ContainerState_CONTAINER_STATE_PAUSED,
	"stopped": cairnv1.ContainerState_CONTAINER_STATE_STOPPED,
	"exited":  cairnv1.ContainerState_CONTAINER_STATE_STOPPED, // Docker's name
}

func parseFilters(args, keys []string) (filters, error) {
	f := filters{}
	for _, a := range args {
		key, value, ok := strings.Cut(a, "=")
		if !ok || value == "" {
			return nil, usageErrorf("bad filter %s: want KEY=VALUE", errdefs.Quote(a))
		}
		if !contains(keys, key) {
			return nil, usageErrorf("unknown filter key %s: use one of %s", errdefs.Quote(key), strings.Join(keys, ", "))
		}
		switch key {
		case "status":
			if _, ok := containerStates[value]; !ok {
				return nil, usageErrorf("bad status filter %s: use created, running, paused, stopped or exited", errdefs.Quote(value))
			}
		case "exited":
			if _, err := strconv.Atoi(value); err != nil {
				return nil, usageErrorf("bad exited filter %s: want an exit code", errdefs.Quote(value))
			}
		case "dangling":
			if value != "true" && value != "false" {
				return nil, usageErrorf("bad dangling filter %s: use true or false", errdefs.Quote(value))
			}
		}
		f[key] = append(f[key], value)
	}
	return f, nil
}

func (f filters) has(key string) bool { return len(f[key]) > 0 }

// any is true when key is not filtered on, or when one of its values
// matches.
func (f filters) any(key string, match func(string) bool) bool {
	values := f[key]
	if len(values) == 0 {
		return true
	}
	for _, v := range values {
		if match(v) {
			return true
		}
	}
	return false
}

func (f filters) matchContainer(c *cairnv1.Container) bool {
	return f.any("id", func(v string) bool { return strings.HasPrefix(c.Id, v) }) &&
		f.any("name", func(v string) bool { return strings.Contains(c.Name, v) }) &&
		f.any("status", func(v string) bool { return containerStates[v] == c.State }) &&
		f.any("label", func(v string) bool { return matchLabel(c.GetConfig().GetLabels(), v) }) &&
		f.any("ancestor", func(v string) bool { return matchImage(c.Image, c.ImageId, v) }) &&
		f.any("exited", func(v string) bool {
			code, _ := strconv.Atoi(v)
			return c.State == cairnv1.ContainerState_CONTAINER_STATE_STOPPED && c.ExitCode != nil && int(*c.ExitCode) == code
		})
}

func (f filters) matchImage(img *cairnv1.Image) bool {
	return f.any("reference", func(v string) bool {
		for _, n := range img.Names {
			if matchReference(n, v) {
				return true
			}
		}
		return false
	}) &&
		f.any("dangling", func(v string) bool { return (len(img.Names) == 0) == (v == "true") }) &&
		f.any("label", func(v string) bool { return matchLabel(img.GetConfig().GetLabels(), v) }) &&
		f.any("id", func(v string) bool { return matchID(img.Id, v) })
}

// matchLabel: "key" is present, or "key=value" is set so.
func matchLabel(labels map[string]string, filter string) bool {
	key, value, hasValue := strings.Cut(filter, "=")
	got, ok := labels[key]
	return ok && (!hasValue || got == value)
}

// matchImage is true when ref names the image (in any form Docker
// accepts: busybox, busybox:latest, docker.io/library/busybox) or is a
// prefix of its id.
func matchImage(canonical, id, ref string) bool {
	return (canonical != "" && familiar(canonical) == familiarRef(ref)) || matchID(id, ref)
}

// matchID: ref is the id, or a prefix of 4 or more of its hex digits, with
// or without "sha256:".
func matchID(id, ref string) bool {
	hex := strings.TrimPrefix(id, "sha256:")
	want := strings.TrimPrefix(ref, "sha256:")
	return id != "" && len(want) >= 4 && strings.HasPrefix(hex, want)
}

// matchReference matches a canonical name against a reference filter:
// "busybox" (any tag), "busybox:1.36", or a shell pattern of the familiar
// name ("busy*", "*:latest").
func matchReference(canonical, pattern string) bool {
	name := familiar(canonical)
	repo, _ := splitName(canonical)
	if ok, _ := path.Match(pattern, name); ok {
		return true
	}
	ok, _ := path.Match(pattern, repo)
	return ok
}

// familiarRef is what familiar gives for the canonical form of a reference
// the user typed: the default tag added, the default registry and
// namespace taken off.
func familiarRef(ref string) string {
	if name, digest, ok := strings.Cut(ref, "@"); ok {
		if colon := strings.LastIndexByte(name, ':'); colon > strings.LastIndexByte(name, '/') {
			ref = name[:colon] + "@" + digest // a tag beside a digest: the digest wins
		}
	} else if strings.LastIndexByte(ref, ':') <= strings.LastIndexByte(ref, '/') {
		ref += ":latest"
	}
	first, rest, hasSlash := strings.Cut(ref, "/")
	switch {
	case first == "index.docker.io":
		ref = defaultDomain + rest
	case !hasSlash || (!strings.ContainsAny(first, ".:") && first != "localhost"):
		ref = defaultDomain + ref // no registry: Docker Hub's
	}
	if r, ok := strings.CutPrefix(ref, defaultDomain); ok && !strings.Contains(r, "/") {
		ref = defaultDomain + officialRepoPath + r
	}
	return familiar(ref)
}

// labelList is labels as Docker's .Labels column shows them: k=v,k2=v2.
func labelList(labels map[string]string) string {
	parts := make([]string, 0, len(labels))
	for k, v := range labels {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
