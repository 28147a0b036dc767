package imagearchive

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/cairn-run/cairn/internal/errdefs"
)

// images reads an archive held in memory.
func images(data []byte) ([]Image, error) {
	a, err := ReadBytes(data)
	if err != nil {
		return nil, err
	}
	return a.Images()
}

func TestImages_AValidLayoutAndDockerArchiveRead(t *testing.T) {
	imgs, err := images(newOCIParts(t, layerA(t), layerB(t)).archive(t))
	if err != nil || len(imgs) != 1 || len(imgs[0].Layers) != 2 || imgs[0].Names[0] != "example.org/test:v1" {
		t.Fatalf("layout: %+v %v", imgs, err)
	}
	files, manifest := dockerArchive(t, layerA(t), layerB(t))
	imgs, err = images(tarOf(t, append(files, reg("manifest.json", manifest))...))
	if err != nil || len(imgs) != 1 || imgs[0].Names[0] != "docker.io/library/busybox:latest" || imgs[0].Layers[1].Digest != "" {
		t.Fatalf("docker save: %+v %v", imgs, err)
	}
	// The whole archive gzip-compressed (docker save | gzip) reads the same.
	gz, err := images(gzipOf(t, tarOf(t, append(files, reg("manifest.json", manifest))...)))
	if err != nil || gz[0].ID != imgs[0].ID {
		t.Fatalf("gzip archive: %v", err)
	}
	// Shared layers are links in old docker save archives.
	files = append(files, symlink("0000000000000000000000000000000000000000000000000000000000000003/layer.tar", "../"+fmt.Sprintf("%064x", 1)+"/layer.tar"))
	manifest = bytes.Replace(manifest, []byte(fmt.Sprintf("%064x", 2)), []byte(fmt.Sprintf("%064x", 3)), 1)
	if _, err := images(tarOf(t, append(files, reg("manifest.json", manifest))...)); err == nil || !strings.Contains(err.Error(), "diffID") {
		// The link leads to layer 1, whose diffID is not layer 2's: the
		// reader resolves it, the layer store will refuse the content.
		if err != nil {
			t.Fatalf("a layer shared by a symlink: %v", err)
		}
	}
}

func TestImages_HostileArchivesAreRefused(t *testing.T) {
	tooManyLayers := func() []byte {
		p := newOCIParts(t, layerA(t))
		l := p.manifest.Layers[0]
		diffs := make([]string, 10_000)
		for i := range diffs {
			p.manifest.Layers = append(p.manifest.Layers, l)
			diffs[i] = p.diffIDs[0]
		}
		p.manifest.Layers = p.manifest.Layers[:10_000]
		p.config = fmt.Appendf(nil, `{"os":"linux","rootfs":{"type":"layers","diff_ids":["%s"]}}`, strings.Join(diffs, `","`))
		p.manifest.Config.Size, p.manifest.Config.Digest = int64(len(p.config)), hash(t, sha(p.config))
		return p.archive(t)
	}
	dockerWith := func(mutate func(files []tfile, manifest []byte) ([]tfile, []byte)) []byte {
		files, manifest := dockerArchive(t, layerA(t))
		files, manifest = mutate(files, manifest)
		return tarOf(t, append(files, reg("manifest.json", manifest))...)
	}
	cases := map[string]struct {
		archive []byte
		want    string // in the error
	}{
		"empty":           {nil, "empty"},
		"not a tar":       {[]byte(strings.Repeat("garbage ", 200)), "corrupt"},
		"a rootfs tar":    {tarOf(t, reg("bin/sh", []byte("x"))), "cairn image import"},
		"absolute path":   {tarOf(t, reg("/etc/passwd", []byte("x"))), "absolute"},
		"escaping path":   {tarOf(t, reg("blobs/../../x", []byte("x"))), "escapes"},
		"device node":     {tarOf(t, tarDevice("dev/null", tar.TypeChar)), "not allowed"},
		"fifo":            {tarOf(t, tarDevice("p", tar.TypeFifo)), "not allowed"},
		"duplicate entry": {tarOf(t, reg("index.json", []byte("{}")), reg("index.json", []byte("{}"))), "twice"},
		"missing config blob": {newOCIPartsWith(t, func(p *ociParts) {
			p.after = func(files map[string][]byte) { delete(files, blobName(sha(p.config))) }
		}), "missing from the archive"},
		"missing layer blob": {newOCIPartsWith(t, func(p *ociParts) {
			p.after = func(files map[string][]byte) { delete(files, blobName(sha(p.layers[0]))) }
		}), "missing from the archive"},
		"missing manifest blob": {newOCIPartsWith(t, func(p *ociParts) {
			p.after = func(files map[string][]byte) { delete(files, blobName(sha(p.manifestBytes(t)))) }
		}), "missing from the archive"},
		"config digest mismatch": {newOCIPartsWith(t, func(p *ociParts) {
			p.after = func(files map[string][]byte) {
				files[blobName(sha(p.config))] = bytes.Replace(p.config, []byte(`"sh"`), []byte(`"rm"`), 1)
			}
		}), "hashes to"},
		"manifest digest mismatch": {newOCIPartsWith(t, func(p *ociParts) {
			p.after = func(files map[string][]byte) {
				m := p.manifestBytes(t)
				files[blobName(sha(m))] = bytes.Replace(m, []byte(`"schemaVersion":2`), []byte(`"schemaVersion":2 `), 1)
			}
		}), "its descriptor says"},
		"layer size mismatch": {newOCIPartsWith(t, func(p *ociParts) { p.manifest.Layers[0].Size++ }), "its descriptor says"},
		"manifest over 4 MiB": {newOCIPartsWith(t, func(p *ociParts) {
			m := p.manifestBytes(t)
			p.rawManifest = append(m[:len(m)-1], []byte(`,"annotations":{"pad":"`+strings.Repeat("x", MaxMetadataBytes)+`"}}`)...)
		}), "more than"},
		"index.json over 4 MiB": {newOCIPartsWith(t, func(p *ociParts) {
			p.rawIndex = []byte(`{"schemaVersion":2,"manifests":[],"annotations":{"pad":"` + strings.Repeat("x", MaxMetadataBytes) + `"}}`)
		}), "more than"},
		"10,000 layers": {tooManyLayers(), "at most 499"},
		"symlinked blobs directory": {newOCIPartsWith(t, func(p *ociParts) {
			p.noBlobsDir = true
			p.after = func(files map[string][]byte) {
				for name, b := range files {
					if strings.HasPrefix(name, "blobs/") {
						delete(files, name)
						files["elsewhere/"+strings.TrimPrefix(name, "blobs/")] = b
					}
				}
			}
			p.extra = []tfile{symlink("blobs", "elsewhere")}
		}), "symlink"},
		"unknown manifest media type": {newOCIPartsWith(t, func(p *ociParts) {
			m := p.manifestBytes(t)
			p.index.Manifests = []v1.Descriptor{{MediaType: "application/vnd.example.thing+json", Size: int64(len(m)), Digest: hash(t, sha(m))}}
		}), "unknown media type"},
		"unknown config media type": {newOCIPartsWith(t, func(p *ociParts) { p.manifest.Config.MediaType = "application/vnd.cncf.helm.config.v1+json" }), "unknown config media type"},
		"unknown layer media type":  {newOCIPartsWith(t, func(p *ociParts) { p.manifest.Layers[0].MediaType = "application/vnd.example.layer" }), "unknown layer media type"},
		"foreign layer":             {newOCIPartsWith(t, func(p *ociParts) { p.manifest.Layers[0].MediaType = types.DockerForeignLayer }), "non-distributable"},
		"schema 1 manifest": {newOCIPartsWith(t, func(p *ociParts) {
			m := p.manifestBytes(t)
			p.index.Manifests = []v1.Descriptor{{MediaType: types.DockerManifestSchema1Signed, Size: int64(len(m)), Digest: hash(t, sha(m))}}
		}), "schema 1"},
		"sha512 digest": {newOCIPartsWith(t, func(p *ociParts) {
			p.manifest.Layers[0].Digest = hash(t, "sha512:"+strings.Repeat("ab", 64))
		}), "not sha256"},
		"diffIDs do not match the layers": {newOCIPartsWith(t, func(p *ociParts) {
			p.config = []byte(`{"os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
			p.manifest.Config.Size, p.manifest.Config.Digest = int64(len(p.config)), hash(t, sha(p.config))
		}), "0 diffIDs for 1 layers"},
		"no layers": {newOCIPartsWith(t, func(p *ociParts) {
			p.manifest.Layers = nil
			p.config = []byte(`{"os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
			p.manifest.Config.Size, p.manifest.Config.Digest = int64(len(p.config)), hash(t, sha(p.config))
		}), "without layers"},
		"windows image": {newOCIPartsWith(t, func(p *ociParts) {
			p.config = bytes.Replace(p.config, []byte(`"os":"linux"`), []byte(`"os":"windows"`), 1)
			p.manifest.Config.Size, p.manifest.Config.Digest = int64(len(p.config)), hash(t, sha(p.config))
		}), "not linux"},
		"bad oci-layout": {newOCIPartsWith(t, func(p *ociParts) {
			p.after = func(files map[string][]byte) { files["oci-layout"] = []byte(`{"imageLayoutVersion":"9"}`) }
		}), "1.0.0"},
		"docker: layer symlink escapes": {dockerWith(func(files []tfile, m []byte) ([]tfile, []byte) {
			return append(files[1:], symlink(files[0].name, "../../../etc/shadow")), m
		}), "outside the archive"},
		"docker: absolute layer symlink": {dockerWith(func(files []tfile, m []byte) ([]tfile, []byte) {
			return append(files[1:], symlink(files[0].name, "/etc/shadow")), m
		}), "absolute"},
		"docker: symlink loop": {dockerWith(func(files []tfile, m []byte) ([]tfile, []byte) {
			return append(files[1:], symlink(files[0].name, "layer.tar")), m
		}), "links"},
		"docker: hardlink loop": {dockerWith(func(files []tfile, m []byte) ([]tfile, []byte) {
			return append(files[1:], hardlink(files[0].name, files[0].name)), m
		}), "links"},
		"docker: config digest mismatch": {dockerWith(func(files []tfile, m []byte) ([]tfile, []byte) {
			files[1].body = bytes.Replace(files[1].body, []byte(`"sh"`), []byte(`"rm"`), 1)
			return files, m
		}), "hashes to"},
		"docker: missing layer": {dockerWith(func(files []tfile, m []byte) ([]tfile, []byte) {
			return files[1:], m
		}), "missing from the archive"},
		"docker: escaping layer path": {dockerWith(func(files []tfile, m []byte) ([]tfile, []byte) {
			return files, bytes.Replace(m, []byte(`"Layers":["`), []byte(`"Layers":["../`), 1)
		}), "escapes"},
		"docker: foreign layers": {dockerWith(func(files []tfile, m []byte) ([]tfile, []byte) {
			return files, bytes.Replace(m, []byte(`"Layers"`), []byte(`"LayerSources":{"sha256:`+strings.Repeat("0", 64)+`":{"mediaType":"x","size":1,"digest":"sha256:`+strings.Repeat("0", 64)+`"}},"Layers"`), 1)
		}), "foreign"},
		"docker: manifest.json over 4 MiB":  {tarOf(t, reg("manifest.json", append([]byte(`[{"Config":"`), bytes.Repeat([]byte("x"), MaxMetadataBytes)...))), "more than"},
		"docker: manifest.json is not json": {tarOf(t, reg("manifest.json", []byte("[{"))), "does not parse"},
	}
	// A symlinked blob file in an OCI layout.
	{
		p := newOCIParts(t, layerA(t))
		cfg := blobName(sha(p.config))
		p.after = func(files map[string][]byte) { files["other"] = files[cfg]; delete(files, cfg) }
		p.extra = []tfile{symlink(cfg, "../../other")}
		cases["symlinked blob"] = struct {
			archive []byte
			want    string
		}{p.archive(t), "is a link"}
	}
	for name, tt := range cases {
		t.Run(name, func(t *testing.T) {
			imgs, err := images(tt.archive)
			if err == nil {
				t.Fatalf("accepted: %+v", imgs)
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) && !errors.Is(err, errdefs.ErrResourceExhausted) {
				t.Errorf("error %v is neither InvalidArgument nor ResourceExhausted", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
			t.Logf("%s", err)
			if len(err.Error()) > 600 {
				t.Errorf("error of %d bytes echoes too much", len(err.Error()))
			}
		})
	}
}

func TestImages_NestedIndexesChooseThePlatformAndStopAtADepth(t *testing.T) {
	p := newOCIParts(t, layerA(t))
	m := p.manifestBytes(t)
	mdesc := v1.Descriptor{MediaType: types.OCIManifestSchema1, Size: int64(len(m)), Digest: hash(t, sha(m))}
	nested := func(inner v1.Descriptor, platform *v1.Platform) ([]byte, v1.Descriptor) {
		inner.Platform = platform
		other := inner
		other.Platform = &v1.Platform{OS: "linux", Architecture: "s390x"}
		b := fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[%s,%s]}`, mustJSON(t, other), mustJSON(t, inner))
		return b, v1.Descriptor{MediaType: types.OCIImageIndex, Size: int64(len(b)), Digest: hash(t, sha(b))}
	}
	host := &v1.Platform{OS: "linux", Architecture: wantPlatform().Architecture}
	build := func(depth int) []byte {
		desc := mdesc
		blobs := map[string][]byte{}
		for i := 0; i < depth; i++ {
			var b []byte
			b, desc = nested(desc, host)
			blobs[blobName(desc.Digest.String())] = b
		}
		q := newOCIParts(t, layerA(t))
		desc.Annotations = map[string]string{annotationImageName: "docker.io/library/multi:arch"}
		q.index.Manifests = []v1.Descriptor{desc}
		q.after = func(files map[string][]byte) {
			for k, v := range blobs {
				files[k] = v
			}
		}
		return q.archive(t)
	}
	imgs, err := images(build(2))
	if err != nil || len(imgs) != 1 || imgs[0].Names[0] != "docker.io/library/multi:arch" {
		t.Fatalf("two nested indexes: %+v %v", imgs, err)
	}
	if _, err := images(build(maxIndexDepth + 1)); !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "nested") {
		t.Fatalf("indexes nested too deep: %v", err)
	}
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func newOCIPartsWith(t testing.TB, mutate func(p *ociParts)) []byte {
	t.Helper()
	p := newOCIParts(t, layerA(t))
	mutate(p)
	return p.archive(t)
}

func blobName(digest string) string { return "blobs/sha256/" + strings.TrimPrefix(digest, "sha256:") }
