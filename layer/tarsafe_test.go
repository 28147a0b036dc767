package layer

import (
	"archive/tar"
	"errors"
	"strings"
	"testing"

	"github.com/cairn-run/cairn/internal/errdefs"
)

func TestCleanEntryName(t *testing.T) {
	tests := []struct {
		in, want string
		refused  string // reason substring; "" means accepted
	}{
		{"bin/sh", "bin/sh", ""},
		{"./bin/sh", "bin/sh", ""},
		{"./", ".", ""},
		{".", ".", ""},
		{"usr/lib/", "usr/lib", ""},
		{"a//b/./c", "a/b/c", ""},
		{"..foo/bar..", "..foo/bar..", ""}, // dots inside names are fine
		{"/etc/passwd", "", "absolute"},
		{"../x", "", `".."`},
		{"a/../b", "", `".."`},
		{"a/..", "", `".."`},
		{"./..", "", `".."`},
		{"", "", "empty"},
		{"a\x00b", "", "NUL"},
	}
	for _, tt := range tests {
		got, err := cleanEntryName(tt.in)
		if tt.refused == "" {
			if err != nil || got != tt.want {
				t.Errorf("cleanEntryName(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
			continue
		}
		if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tt.refused) {
			t.Errorf("cleanEntryName(%q) = %q, %v; want refusal mentioning %q", tt.in, got, err, tt.refused)
		}
	}
}

func TestSymlinkTargetEscapes(t *testing.T) {
	tests := []struct {
		entry, target string
		escapes       bool
	}{
		{"bin/sh", "/bin/busybox", false}, // absolute: resolved in the container
		{"bin/ls", "busybox", false},
		{"usr/bin/x", "../lib/x", false},
		{"usr/bin/x", "../../etc", false}, // exactly the root
		{"usr/bin/x", "../../../etc", true},
		{"l", "..", true},
		{"l", ".", false},
		{"a/l", "b/../../../x", true},
		{"a/l", "b/../../x", false},
		{"a/l", "./../..", true},
		{"etc/up", "../bin", false},
	}
	for _, tt := range tests {
		if got := symlinkTargetEscapes(tt.entry, tt.target); got != tt.escapes {
			t.Errorf("symlinkTargetEscapes(%q -> %q) = %v, want %v", tt.entry, tt.target, got, tt.escapes)
		}
	}
}

func TestCheckParents(t *testing.T) {
	tree := map[string]entryKind{
		".": kindDir, "etc": kindDir, "etc/ssl": kindDir,
		"bin": kindSymlink, "etc/passwd": kindFile,
	}
	tests := []struct {
		name    string
		missing []string
		refused string
	}{
		{"etc/ssl/cert.pem", nil, ""},
		{"top", nil, ""},
		{"usr/lib/x", []string{"usr", "usr/lib"}, ""},
		{"etc/new/x", []string{"etc/new"}, ""},
		{"bin/sh", nil, `parent "bin" is a symlink`},
		{"bin/x/y", nil, `parent "bin" is a symlink`},
		{"etc/passwd/x", nil, `parent "etc/passwd" is not a directory`},
	}
	for _, tt := range tests {
		missing, err := checkParents(tree, tt.name)
		if tt.refused != "" {
			if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tt.refused) {
				t.Errorf("checkParents(%q) = %v; want refusal %q", tt.name, err, tt.refused)
			}
			continue
		}
		if err != nil || strings.Join(missing, ",") != strings.Join(tt.missing, ",") {
			t.Errorf("checkParents(%q) = %v, %v; want %v", tt.name, missing, err, tt.missing)
		}
	}
}

func TestCheckHardlink(t *testing.T) {
	tree := map[string]entryKind{".": kindDir, "bin": kindDir, "bin/busybox": kindFile, "bin/sh": kindSymlink}
	tests := []struct {
		entry, link, want string
		refused           string
	}{
		{"bin/ls", "bin/busybox", "bin/busybox", ""},
		{"bin/ls", "./bin/busybox", "bin/busybox", ""},
		{"bin/sh2", "bin/sh", "bin/sh", ""}, // a link to the symlink itself
		{"x", "/bin/busybox", "", "absolute"},
		{"x", "../bin/busybox", "", "not a safe path"},
		{"x", "bin/missing", "", "does not exist"},
		{"x", "bin", "", "is a directory"},
		{"x", "", "", "empty"},
		{"bin/busybox", "bin/busybox", "", "itself"},
	}
	for _, tt := range tests {
		got, err := checkHardlink(tree, tt.entry, tt.link)
		if tt.refused != "" {
			if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tt.refused) {
				t.Errorf("checkHardlink(%q -> %q) = %v; want refusal %q", tt.entry, tt.link, err, tt.refused)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("checkHardlink(%q -> %q) = %q, %v; want %q", tt.entry, tt.link, got, err, tt.want)
		}
	}
}

func TestKindOf(t *testing.T) {
	tests := []struct {
		typ     byte
		kind    entryKind
		skip    bool
		refused bool
	}{
		{tar.TypeReg, kindFile, false, false},
		{tar.TypeDir, kindDir, false, false},
		{tar.TypeSymlink, kindSymlink, false, false},
		{tar.TypeLink, kindFile, false, false},
		{tar.TypeFifo, kindFile, false, false},
		{tar.TypeXGlobalHeader, kindNone, true, false},
		{tar.TypeChar, kindNone, false, true},
		{tar.TypeBlock, kindNone, false, true},
		{tar.TypeGNUSparse, kindNone, false, true},
		{'Z', kindNone, false, true},
	}
	for _, tt := range tests {
		kind, skip, err := kindOf(&tar.Header{Name: "x", Typeflag: tt.typ})
		if kind != tt.kind || skip != tt.skip || (err != nil) != tt.refused {
			t.Errorf("kindOf(%q) = %v, %v, %v", tt.typ, kind, skip, err)
		}
		if err != nil && !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("kindOf(%q) error %v is not ErrInvalidArgument", tt.typ, err)
		}
	}
}

func TestCheckReplace(t *testing.T) {
	tests := []struct {
		existing, incoming entryKind
		unlink, refused    bool
	}{
		{kindNone, kindFile, false, false},
		{kindDir, kindDir, false, false},
		{kindDir, kindFile, false, true},
		{kindDir, kindSymlink, false, true},
		{kindFile, kindFile, true, false},
		{kindFile, kindDir, true, false},
		{kindSymlink, kindDir, true, false},
	}
	for _, tt := range tests {
		unlink, err := checkReplace(tt.existing, tt.incoming, "x")
		if unlink != tt.unlink || (err != nil) != tt.refused {
			t.Errorf("checkReplace(%v, %v) = %v, %v", tt.existing, tt.incoming, unlink, err)
		}
	}
}

func TestCheckOwner(t *testing.T) {
	for _, tt := range []struct {
		uid, gid int
		ok       bool
	}{{0, 0, true}, {65534, 65534, true}, {1<<32 - 2, 0, true}, {-1, 0, false}, {0, 1<<32 - 1, false}} {
		err := checkOwner(&tar.Header{Name: "x", Uid: tt.uid, Gid: tt.gid})
		if (err == nil) != tt.ok {
			t.Errorf("checkOwner(%d, %d) = %v", tt.uid, tt.gid, err)
		}
	}
}
