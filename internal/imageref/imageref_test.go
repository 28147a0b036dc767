package imageref

import (
	"errors"
	"strings"
	"testing"

	"github.com/cairn-run/cairn/internal/errdefs"
)

func TestNormalize_LikeDocker(t *testing.T) {
	const d = "sha256:7cc4b5aefd1d0cadf8d97d4350462ba51c694ebca145b08d7d41b41acc8db5aa"
	for in, want := range map[string]string{
		"busybox":                          "docker.io/library/busybox:latest",
		"busybox:latest":                   "docker.io/library/busybox:latest",
		"docker.io/library/busybox":        "docker.io/library/busybox:latest",
		"docker.io/busybox:1.36":           "docker.io/library/busybox:1.36",
		"library/busybox":                  "docker.io/library/busybox:latest",
		"user/app:v2":                      "docker.io/user/app:v2",
		"localhost:5000/app":               "localhost:5000/app:latest",
		"127.0.0.1:5000/team/app:1":        "127.0.0.1:5000/team/app:1",
		"busybox@" + d:                     "docker.io/library/busybox@" + d,
		"busybox:latest@" + d:              "docker.io/library/busybox@" + d, // a digest wins over a tag
		"quay.io/org/img:tag-with.dots_ok": "quay.io/org/img:tag-with.dots_ok",
	} {
		got, err := Normalize(in)
		if err != nil || got != want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", in, got, err, want)
		}
		if again, err := Normalize(Familiar(got)); err != nil || again != got {
			t.Errorf("Normalize(Familiar(%q)) = %q, %v", got, again, err)
		}
	}
	for _, bad := range []string{"", "Busybox", "busy box", "busybox:", ":tag", "a//b", strings.Repeat("a", 600),
		"7cc4b5aefd1d0cadf8d97d4350462ba51c694ebca145b08d7d41b41acc8db5aa", "busybox@sha256:short", "../etc"} {
		if got, err := Normalize(bad); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("Normalize(%q) = %q, %v; want InvalidArgument", bad, got, err)
		}
	}
}

func TestNormalizeTag_RefusesADigest(t *testing.T) {
	if _, err := NormalizeTag("busybox@sha256:7cc4b5aefd1d0cadf8d97d4350462ba51c694ebca145b08d7d41b41acc8db5aa"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("a digest as a tag: %v", err)
	}
	if got, err := NormalizeTag("busybox"); err != nil || got != "docker.io/library/busybox:latest" {
		t.Fatalf("%q %v", got, err)
	}
}

func TestFamiliarAndSplit(t *testing.T) {
	for canonical, want := range map[string][3]string{
		"docker.io/library/busybox:latest": {"busybox:latest", "busybox", "latest"},
		"docker.io/user/app:v2":            {"user/app:v2", "user/app", "v2"},
		"localhost:5000/app:latest":        {"localhost:5000/app:latest", "localhost:5000/app", "latest"},
		"legacy-name":                      {"legacy-name", "legacy-name", "<none>"},
	} {
		repo, tag := Split(canonical)
		if got := Familiar(canonical); got != want[0] || repo != want[1] || tag != want[2] {
			t.Errorf("%s: familiar %q, split %q %q; want %v", canonical, got, repo, tag, want)
		}
	}
}

func TestIDs(t *testing.T) {
	id := "sha256:" + strings.Repeat("ab", 32)
	if !IsID(id) || IsID(id[:20]) || IsID("busybox") {
		t.Fatal("IsID")
	}
	for in, want := range map[string]string{id: strings.Repeat("ab", 32), "abcd": "abcd", "sha256:abcd": "abcd"} {
		if got, ok := IDPrefix(in); !ok || got != want {
			t.Errorf("IDPrefix(%q) = %q %v", in, got, ok)
		}
	}
	for _, bad := range []string{"abc", "busybox", "ABCD", "sha512:abcd"} {
		if _, ok := IDPrefix(bad); ok {
			t.Errorf("IDPrefix(%q) accepted", bad)
		}
	}
	if _, err := ID("sha512:" + strings.Repeat("ab", 64)); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatal("sha512 id accepted")
	}
}
