// Package imageref names images the way Docker does, with
// github.com/distribution/reference: "busybox" is
// docker.io/library/busybox:latest, a tag and a digest together keep only
// the digest, and an image ID is "sha256:" and 64 hex digits (a prefix of
// its hex part, of at least MinIDPrefix digits, also names it where the
// store can resolve one). It is a leaf: every layer of Cairn that takes an
// image name from a client goes through Normalize, so two spellings of one
// name can never become two images.
package imageref

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"

	"github.com/cairn-run/cairn/internal/errdefs"
)

// MaxLength bounds a reference as a client may send it: distribution's
// limit on the name (255) plus room for a tag or a digest.
const MaxLength = 512

// MinIDPrefix is the shortest hex prefix of an image ID a lookup accepts.
const MinIDPrefix = 4

var (
	idPattern     = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	prefixPattern = regexp.MustCompile(`^(sha256:)?[0-9a-f]{4,64}$`)
)

// Normalize returns the canonical form of a name: domain, path and a tag
// (":latest" when none is given) or a digest. It refuses what Docker
// refuses (upper case, bad characters, 64 hex digits on their own) with
// ErrInvalidArgument.
func Normalize(ref string) (string, error) {
	if ref == "" {
		return "", fmt.Errorf("empty image reference: %w", errdefs.ErrInvalidArgument)
	}
	if len(ref) > MaxLength {
		return "", fmt.Errorf("image reference of %d bytes, at most %d: %w", len(ref), MaxLength, errdefs.ErrInvalidArgument)
	}
	named, err := reference.ParseDockerRef(ref)
	if err != nil {
		return "", fmt.Errorf("image reference %s: %v: %w", errdefs.Quote(ref), err, errdefs.ErrInvalidArgument)
	}
	return named.String(), nil
}

// NormalizeTag is Normalize for a name that is to be given to an image
// (load, tag, import): it must be a tag, not a digest, which only a
// registry can vouch for.
func NormalizeTag(ref string) (string, error) {
	n, err := Normalize(ref)
	if err != nil {
		return "", err
	}
	if IsDigested(n) {
		return "", fmt.Errorf("image reference %s: an image can be tagged with a name and tag, not a digest: %w", errdefs.Quote(ref), errdefs.ErrInvalidArgument)
	}
	return n, nil
}

// IsDigested reports whether a canonical name is name@digest.
func IsDigested(canonical string) bool { return strings.Contains(canonical, "@") }

// Familiar is the short form Docker shows: "busybox:latest" for
// docker.io/library/busybox:latest. A string that is not a canonical name
// (an image ID, a name stored before names were normalized) is returned
// as it is.
func Familiar(canonical string) string {
	if IsID(canonical) {
		return canonical
	}
	named, err := reference.ParseNamed(canonical)
	if err != nil {
		return canonical
	}
	return reference.FamiliarString(named)
}

// Split returns the familiar repository and the tag (or digest) of a
// canonical name, as the REPOSITORY and TAG columns of `image ls` show
// them; "<none>" for what is missing.
func Split(canonical string) (repository, tag string) {
	named, err := reference.ParseNamed(canonical)
	if err != nil {
		return canonical, "<none>"
	}
	repository, tag = reference.FamiliarName(named), "<none>"
	switch r := named.(type) {
	case reference.Tagged:
		tag = r.Tag()
	case reference.Digested:
		tag = r.Digest().String()
	}
	return repository, tag
}

// IsID reports whether s is a full image ID: "sha256:" and 64 hex digits.
func IsID(s string) bool { return idPattern.MatchString(s) }

// IDPrefix returns the hex digits of s when s can be (a prefix of) an
// image ID: 4 to 64 lowercase hex digits, with or without "sha256:".
func IDPrefix(s string) (string, bool) {
	if !prefixPattern.MatchString(s) {
		return "", false
	}
	return strings.TrimPrefix(s, "sha256:"), true
}

// ID checks that s is a digest of the kind image IDs are (sha256) and
// returns it.
func ID(s string) (digest.Digest, error) {
	d, err := digest.Parse(s)
	if err != nil || d.Algorithm() != digest.SHA256 {
		return "", fmt.Errorf("image id %s: want sha256:<64 hex>: %w", errdefs.Quote(s), errdefs.ErrInvalidArgument)
	}
	return d, nil
}
