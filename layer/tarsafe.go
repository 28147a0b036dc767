package layer

import (
	"archive/tar"
	"fmt"
	"path"
	"strings"

	"github.com/cairn-run/cairn/internal/errdefs"
)

// This file holds the pure decisions about untrusted tar entries: which names,
// link targets and types are refused, and why. extract.go applies them; it
// never follows a symlink on top of that (openat2 RESOLVE_NO_SYMLINKS).

// entryKind is what the extractor has put at a path of the layer.
type entryKind uint8

const (
	kindNone entryKind = iota
	kindDir
	kindFile // regular file or fifo: something a hardlink may point to
	kindSymlink
	kindWhiteout // an overlay whiteout made from an OCI one
)

// refuse builds the error for a refused entry: ErrInvalidArgument with the
// entry name and the reason.
func refuse(entry, format string, args ...any) error {
	return fmt.Errorf("tar entry %s: %s: %w", errdefs.Quote(entry), fmt.Sprintf(format, args...), errdefs.ErrInvalidArgument)
}

// cleanEntryName returns the layer-relative path of a tar entry name ("." for
// the root). Absolute names and names with a ".." component are refused
// outright rather than cleaned, since a tar carrying them is hostile or broken.
// A leading "./" is normal.
func cleanEntryName(name string) (string, error) {
	switch {
	case name == "":
		return "", refuse(name, "empty name")
	case strings.IndexByte(name, 0) >= 0:
		return "", refuse(name, "NUL byte in name")
	case strings.HasPrefix(name, "/"):
		return "", refuse(name, "absolute path")
	}
	for _, c := range strings.Split(name, "/") {
		if c == ".." {
			return "", refuse(name, "path contains a \"..\" component")
		}
	}
	return path.Clean(name), nil
}

// kindOf maps a tar type to what the extractor creates, or refuses it. skip
// reports entries that carry no file (PAX global headers).
func kindOf(hdr *tar.Header) (kind entryKind, skip bool, err error) {
	switch hdr.Typeflag {
	case tar.TypeReg:
		return kindFile, false, nil
	case tar.TypeDir:
		return kindDir, false, nil
	case tar.TypeSymlink:
		return kindSymlink, false, nil
	case tar.TypeLink:
		return kindFile, false, nil // a new name for an existing non-directory
	case tar.TypeFifo:
		return kindFile, false, nil
	case tar.TypeChar, tar.TypeBlock:
		// Overlay whiteouts are char 0/0; a rootfs tar has no business
		// carrying them, nor any device node: /dev is the runtime's.
		return kindNone, false, refuse(hdr.Name, "device nodes are not allowed (including overlay whiteouts)")
	case tar.TypeXGlobalHeader:
		return kindNone, true, nil
	default:
		return kindNone, false, refuse(hdr.Name, "unsupported entry type %q", hdr.Typeflag)
	}
}

// symlinkTargetEscapes reports whether a relative symlink target, resolved
// lexically from the link's directory, leaves the layer root. Absolute
// targets never escape: they are resolved inside the container's root, and
// the extractor never follows links.
func symlinkTargetEscapes(entry, target string) bool {
	if path.IsAbs(target) {
		return false
	}
	p := path.Join(path.Dir(entry), target)
	return p == ".." || strings.HasPrefix(p, "../")
}

// checkSymlink refuses unusable or escaping symlink targets.
func checkSymlink(entry, target string) error {
	switch {
	case target == "":
		return refuse(entry, "empty symlink target")
	case strings.IndexByte(target, 0) >= 0:
		return refuse(entry, "NUL byte in symlink target")
	case symlinkTargetEscapes(entry, target):
		return refuse(entry, "symlink target %s escapes the layer root", errdefs.Quote(target))
	}
	return nil
}

// checkHardlink returns the cleaned target of a hardlink entry. The target
// must already have been extracted as a non-directory: a link can only
// point at something this tar itself put in the layer.
func checkHardlink(tree map[string]entryKind, entry, linkname string) (string, error) {
	if linkname == "" {
		return "", refuse(entry, "empty hardlink target")
	}
	if strings.HasPrefix(linkname, "/") {
		return "", refuse(entry, "hardlink target %s is absolute", errdefs.Quote(linkname))
	}
	target, err := cleanEntryName(linkname)
	if err != nil {
		return "", refuse(entry, "hardlink target %s is not a safe path", errdefs.Quote(linkname))
	}
	if target == entry {
		return "", refuse(entry, "hardlink to itself")
	}
	switch tree[target] {
	case kindNone:
		return "", refuse(entry, "hardlink target %s does not exist in the layer yet", errdefs.Quote(linkname))
	case kindDir:
		return "", refuse(entry, "hardlink target %s is a directory", errdefs.Quote(linkname))
	case kindWhiteout:
		return "", refuse(entry, "hardlink target %s is a whiteout", errdefs.Quote(linkname))
	}
	return target, nil
}

// checkParents walks the ancestors of name (a cleaned, non-root path) and
// returns those that do not exist yet, top first, so the extractor can create
// them as 0755 directories. An ancestor that is a symlink or a
// non-directory is refused: extraction never goes through a link.
func checkParents(tree map[string]entryKind, name string) ([]string, error) {
	var missing []string
	for i := 0; i < len(name); i++ {
		if name[i] != '/' {
			continue
		}
		anc := name[:i]
		switch tree[anc] {
		case kindNone:
			missing = append(missing, anc)
		case kindDir:
			if len(missing) > 0 {
				// Cannot happen: a directory's parents exist. Refuse rather
				// than guess.
				return nil, refuse(name, "inconsistent tree at %s", errdefs.Quote(anc))
			}
		case kindSymlink:
			return nil, refuse(name, "parent %s is a symlink", errdefs.Quote(anc))
		default:
			return nil, refuse(name, "parent %s is not a directory", errdefs.Quote(anc))
		}
	}
	return missing, nil
}

// checkReplace decides what to do when name already exists in the layer
// (later entries win, as with tar -x): a directory over a directory only
// updates its metadata; anything else over a non-directory replaces it; a
// non-directory over a directory is refused (it would drop a whole subtree
// silently).
func checkReplace(existing, incoming entryKind, name string) (unlinkFirst bool, err error) {
	switch {
	case existing == kindNone:
		return false, nil
	case existing == kindDir && incoming == kindDir:
		return false, nil
	case existing == kindDir:
		return false, refuse(name, "would replace a directory")
	default:
		return true, nil
	}
}

// checkOwner refuses ids the kernel cannot represent (-1 means "unchanged"
// to chown, which would silently keep root ownership).
func checkOwner(hdr *tar.Header) error {
	const maxID = 1<<32 - 2
	if hdr.Uid < 0 || hdr.Uid > maxID || hdr.Gid < 0 || hdr.Gid > maxID {
		return refuse(hdr.Name, "uid/gid %d/%d out of range", hdr.Uid, hdr.Gid)
	}
	return nil
}
