package executor

import (
	"fmt"
	"path"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// mountsOf is the runtime-spec form of a container's mounts, after runc's
// own (/proc, /dev, ...), parents before children so that /a is mounted
// before /a/b. Binds are recursive and private; a tmpfs is nosuid and
// nodev with mode 1777, as Docker's --mount type=tmpfs.
func mountsOf(mounts []Mount) []specs.Mount {
	sorted := slices.Clone(mounts)
	slices.SortStableFunc(sorted, func(a, b Mount) int {
		return strings.Count(path.Clean(a.Destination), "/") - strings.Count(path.Clean(b.Destination), "/")
	})
	var out []specs.Mount
	for _, m := range sorted {
		var sm specs.Mount
		switch m.Type {
		case "bind":
			sm = specs.Mount{Destination: m.Destination, Type: "bind", Source: m.Source, Options: []string{"rbind", "rprivate"}}
		case "tmpfs":
			sm = specs.Mount{Destination: m.Destination, Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777"}}
			if m.TmpfsSize > 0 {
				sm.Options = append(sm.Options, fmt.Sprintf("size=%d", m.TmpfsSize))
			}
		default:
			continue // the daemon validated the types; an unknown one is not mounted
		}
		if m.ReadOnly {
			sm.Options = append(sm.Options, "ro")
		}
		out = append(out, sm)
	}
	return out
}
