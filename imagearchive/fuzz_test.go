package imagearchive

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cairn-run/cairn/internal/errdefs"
)

// The fuzz tests feed the readers hostile bytes: any archive, and any
// index, manifest and config (with their digests filled in, so the fuzzer
// gets past the digest checks to the parsing). Whatever comes in, the
// readers return images or an InvalidArgument / ResourceExhausted error:
// they never panic, never read past an entry, never hand out a layer they
// did not check. The seed corpus is committed in testdata/fuzz; CI runs
// each target for a short while (scripts/test.sh).

func FuzzArchive(f *testing.F) {
	for _, seed := range fuzzArchiveSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkArchive(t, data)
	})
}

// FuzzMetadata takes an index, a manifest and a config; "$M", "$C" and
// "$L" in them stand for the digest of the manifest, config and layer, and
// "$MS", "$CS", "$LS" for their sizes.
func FuzzMetadata(f *testing.F) {
	for _, s := range metadataSeeds {
		f.Add([]byte(s[0]), []byte(s[1]), []byte(s[2]), s[3] == "docker")
	}
	layer := tarOf(f, reg("a", []byte("a")))
	f.Fuzz(func(t *testing.T, index, manifest, config []byte, docker bool) {
		checkArchive(t, metadataArchive(t, index, manifest, config, layer, docker))
	})
}

func checkArchive(t *testing.T, data []byte) {
	imgs, err := images(data)
	if err != nil {
		if !errors.Is(err, errdefs.ErrInvalidArgument) && !errors.Is(err, errdefs.ErrResourceExhausted) {
			t.Fatalf("error %v is neither InvalidArgument nor ResourceExhausted", err)
		}
		return
	}
	if len(imgs) == 0 || len(imgs) > MaxImages {
		t.Fatalf("%d images", len(imgs))
	}
	for _, img := range imgs {
		if img.ID != configID(img.Config) || len(img.Layers) == 0 || len(img.Layers) > MaxLayers || img.ConfigFile == nil {
			t.Fatalf("image %+v", img)
		}
		for _, l := range img.Layers {
			r, err := l.Open()
			if err != nil {
				if !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("open layer: %v", err)
				}
				continue
			}
			n, err := io.Copy(io.Discard, r)
			if err != nil || (l.Size >= 0 && n != l.Size) {
				t.Fatalf("layer %s: read %d bytes of %d: %v", l.Digest, n, l.Size, err)
			}
		}
	}
}

// metadataArchive is an OCI layout (or docker save archive) around the
// fuzzed metadata, with the placeholders replaced.
func metadataArchive(t testing.TB, index, manifest, config, layer []byte, docker bool) []byte {
	sub := func(b []byte, pairs ...string) []byte {
		return []byte(strings.NewReplacer(pairs...).Replace(string(b)))
	}
	lpairs := []string{"$LS", strconv.Itoa(len(layer)), "$L", strings.TrimPrefix(sha(layer), "sha256:")}
	config = sub(config, lpairs...)
	cpairs := append([]string{"$CS", strconv.Itoa(len(config)), "$C", strings.TrimPrefix(sha(config), "sha256:")}, lpairs...)
	if docker {
		return tarOf(t, reg("layer.tar", layer), reg(strings.TrimPrefix(sha(config), "sha256:")+".json", config), reg("manifest.json", sub(manifest, cpairs...)))
	}
	manifest = sub(manifest, cpairs...)
	index = sub(index, append([]string{"$MS", strconv.Itoa(len(manifest)), "$M", strings.TrimPrefix(sha(manifest), "sha256:")}, cpairs...)...)
	return tarOf(t,
		reg("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)),
		reg("index.json", index),
		reg(blobName(sha(manifest)), manifest),
		reg(blobName(sha(config)), config),
		reg(blobName(sha(layer)), layer),
	)
}

var metadataSeeds = [][4]string{
	{`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:$M","size":$MS,"annotations":{"org.opencontainers.image.ref.name":"example.org/a:b"}}]}`,
		`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:$C","size":$CS},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:$L","size":$LS}]}`,
		`{"os":"linux","architecture":"amd64","config":{"Cmd":["sh"],"Env":["A=b"]},"rootfs":{"type":"layers","diff_ids":["sha256:$L"]}}`, "oci"},
	{`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"sha256:$M","size":$MS}]}`,
		`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:$C","size":$CS,"platform":{"os":"linux","architecture":"amd64"}}]}`,
		`{"schemaVersion":2,"config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"sha256:$L","size":$LS},"layers":[]}`, "oci"},
	{``,
		`[{"Config":"$C.json","RepoTags":["busybox:latest","example.org/x/y:1"],"Layers":["layer.tar"]}]`,
		`{"os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:$L"]},"history":[{"created_by":"x"}]}`, "docker"},
}

func fuzzArchiveSeeds(t testing.TB) [][]byte {
	files, manifest := dockerArchive(t, layerA(t), layerB(t))
	return [][]byte{
		newOCIParts(t, layerA(t), layerB(t)).archive(t),
		tarOf(t, append(files, reg("manifest.json", manifest))...),
		gzipOf(t, newOCIParts(t, layerA(t)).archive(t)),
		tarOf(t, symlink("blobs", "x"), reg("index.json", []byte(`{"schemaVersion":2,"manifests":[]}`)), reg("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))),
	}
}

// TestWriteFuzzCorpus writes the seeds into testdata/fuzz when
// CAIRN_WRITE_FUZZ_CORPUS=1 (go test -run TestWriteFuzzCorpus); the files
// are committed, so the corpus is there without it.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("CAIRN_WRITE_FUZZ_CORPUS") != "1" {
		t.Skip("set CAIRN_WRITE_FUZZ_CORPUS=1 to rewrite testdata/fuzz")
	}
	write := func(target, name string, args ...string) {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		b.WriteString("go test fuzz v1\n")
		for _, a := range args {
			b.WriteString(a + "\n")
		}
		if err := os.WriteFile(filepath.Join(dir, name), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i, seed := range fuzzArchiveSeeds(t) {
		write("FuzzArchive", fmt.Sprintf("seed-%d", i), "[]byte("+strconv.Quote(string(seed))+")")
	}
	for i, s := range metadataSeeds {
		write("FuzzMetadata", fmt.Sprintf("seed-%d", i), "[]byte("+strconv.Quote(s[0])+")", "[]byte("+strconv.Quote(s[1])+")",
			"[]byte("+strconv.Quote(s[2])+")", "bool("+strconv.FormatBool(s[3] == "docker")+")")
	}
}

func TestMetadataSeedsAreImages(t *testing.T) {
	layer := tarOf(t, reg("a", []byte("a")))
	for i, s := range metadataSeeds {
		imgs, err := images(metadataArchive(t, []byte(s[0]), []byte(s[1]), []byte(s[2]), layer, s[3] == "docker"))
		if i == 1 {
			// The second seed's "config" is a layer: refused, by design a
			// near miss for the fuzzer to work from.
			if err == nil {
				t.Errorf("seed %d accepted", i)
			}
			continue
		}
		if err != nil || len(imgs) != 1 {
			t.Errorf("seed %d: %+v %v", i, imgs, err)
		}
	}
}
