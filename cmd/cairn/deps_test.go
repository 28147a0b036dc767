package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The cairn binary is every container's shim: each package it links pays
// its initialisation in every shim process. The image libraries belong to
// cairnd (pull, push, save, commit and export run there; the CLI streams
// bytes and prints).
var heavyForTheShim = []string{
	"github.com/google/go-containerregistry",
	"github.com/distribution/reference",
	"github.com/opencontainers/image-spec",
	"github.com/opencontainers/go-digest",
	"github.com/klauspost/compress",
	"github.com/containerd/containerd",
	"github.com/containerd/continuity",
	"github.com/docker/cli",
	"github.com/cairn-run/cairn/images",
	"github.com/cairn-run/cairn/imagearchive",
	"github.com/cairn-run/cairn/layer",
}

func TestCairnBinaryLinksNoImageLibrary(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		for _, heavy := range heavyForTheShim {
			if strings.HasPrefix(pkg, heavy) {
				t.Errorf("cmd/cairn depends on %s: keep it in cairnd", pkg)
			}
		}
	}
}
