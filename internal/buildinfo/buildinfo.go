// Package buildinfo reads what the Go toolchain stamped into the running
// binary (module version, VCS revision and time, whether the tree was
// modified, Go version), for `cairn version` and `cairnd --version`.
package buildinfo

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// Info is the build of one binary.
type Info struct {
	Version   string // module version: "(devel)" for a plain go build
	Revision  string // vcs.revision
	Time      string // vcs.time, RFC 3339
	Modified  bool   // vcs.modified: built from a tree with uncommitted changes
	GoVersion string
}

// Read returns the running binary's build info.
func Read() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return Info{Version: "unknown"}
	}
	return FromBuildInfo(bi)
}

// FromBuildInfo extracts Info from what runtime/debug reports.
func FromBuildInfo(bi *debug.BuildInfo) Info {
	info := Info{Version: bi.Main.Version, GoVersion: bi.GoVersion}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Revision = s.Value
		case "vcs.time":
			info.Time = s.Value
		case "vcs.modified":
			info.Modified = s.Value == "true"
		}
	}
	if info.Version == "" {
		info.Version = "unknown"
	}
	return info
}

// String is one line: "v1.2.3 (abcdef123456, 2026-12-01T10:00:00Z, modified) go1.26.8".
func (i Info) String() string {
	var vcs []string
	if i.Revision != "" {
		vcs = append(vcs, shortRevision(i.Revision))
	}
	if i.Time != "" {
		vcs = append(vcs, i.Time)
	}
	if i.Modified {
		vcs = append(vcs, "modified")
	}
	s := i.Version
	if len(vcs) > 0 {
		s += " (" + strings.Join(vcs, ", ") + ")"
	}
	if i.GoVersion != "" {
		s += " " + i.GoVersion
	}
	return s
}

func shortRevision(r string) string {
	if len(r) > 12 {
		return r[:12]
	}
	return r
}

// Lines is the multi-line form `cairn version` prints, each line indented.
func (i Info) Lines(indent string) string {
	modified := "no"
	if i.Modified {
		modified = "yes"
	}
	or := func(s string) string {
		if s == "" {
			return "unknown"
		}
		return s
	}
	return fmt.Sprintf("%sVersion:    %s\n%sRevision:   %s\n%sBuilt:      %s\n%sModified:   %s\n%sGo version: %s\n",
		indent, or(i.Version), indent, or(i.Revision), indent, or(i.Time), indent, modified, indent, or(i.GoVersion))
}
