package imagearchive

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/cairn-run/cairn/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func readArchive(t *testing.T, path string) []Image {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	a, err := ReadBytes(data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	imgs, err := a.Images()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return imgs
}

func byName(imgs []Image, name string) (Image, bool) {
	for _, img := range imgs {
		if slices.Contains(img.Names, name) {
			return img, true
		}
	}
	return Image{}, false
}

// blobSum hashes a layer blob as the archive holds it.
func blobSum(t *testing.T, l Layer) string {
	t.Helper()
	r, err := l.Open()
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		t.Fatal(err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

func TestImages_WhatUmociAndSkopeoWrite(t *testing.T) {
	ti := testenv.Images(t)
	const multi = "docker.io/" + testenv.MultiImage
	for _, tt := range []struct {
		name, path string
		images     int
		mediaType  string
	}{
		{"umoci layout as a tar", ti.LayoutTar, 2, "application/vnd.oci.image.layer.v1.tar+gzip"},
		{"skopeo oci-archive", ti.OCIArchive, 1, "application/vnd.oci.image.layer.v1.tar+gzip"},
		{"skopeo docker-archive", ti.DockerArchive, 1, "application/vnd.docker.image.rootfs.diff.tar"},
		{"skopeo zstd layout", ti.ZstdLayoutTar, 1, "application/vnd.oci.image.layer.v1.tar+zstd"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			imgs := readArchive(t, tt.path)
			if len(imgs) != tt.images {
				t.Fatalf("%d images, want %d: %+v", len(imgs), tt.images, imgs)
			}
			img, ok := byName(imgs, multi)
			if !ok {
				t.Fatalf("no image named %s: %+v", multi, imgs)
			}
			if len(img.Layers) != 3 || img.ConfigFile == nil {
				t.Fatalf("%d layers", len(img.Layers))
			}
			c := img.ConfigFile.Config
			if strings.Join(c.Entrypoint, " ") != testenv.MultiEntrypoint || strings.Join(c.Cmd, " ") != testenv.MultiCmd ||
				c.WorkingDir != testenv.MultiWorkdir || c.User != testenv.MultiUser || c.StopSignal != testenv.MultiStopSignal ||
				!slices.Contains(c.Env, testenv.MultiEnv) {
				t.Errorf("config %+v", c)
			}
			if img.ID != configID(img.Config) {
				t.Error("id is not the config's digest")
			}
			for _, l := range img.Layers {
				if l.MediaType != tt.mediaType {
					t.Errorf("layer media type %s, want %s", l.MediaType, tt.mediaType)
				}
				if l.Digest != "" && blobSum(t, l) != l.Digest {
					t.Errorf("layer %s reads back as %s", l.Digest, blobSum(t, l))
				}
			}
			if tt.images == 2 {
				base, ok := byName(imgs, "docker.io/"+testenv.BaseImage)
				if !ok || len(base.Layers) != 1 || base.Layers[0].DiffID != img.Layers[0].DiffID {
					t.Errorf("base image %+v does not share multi's first layer", base)
				}
			}
		})
	}
	// The four are one image: the same config, so the same id, whatever the
	// archive format and the layers' compression.
	want := readArchive(t, ti.LayoutTar)
	wantImg, _ := byName(want, multi)
	for _, p := range []string{ti.OCIArchive, ti.DockerArchive, ti.ZstdLayoutTar} {
		img, _ := byName(readArchive(t, p), multi)
		if !slices.Equal(img.DiffIDs(), wantImg.DiffIDs()) {
			t.Errorf("%s: diffIDs %v, want %v", p, img.DiffIDs(), wantImg.DiffIDs())
		}
	}
}
