package imagearchive

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// tfile is one entry of a test archive.
type tfile struct {
	name string
	typ  byte
	body []byte
	link string
}

func reg(name string, body []byte) tfile    { return tfile{name: name, typ: tar.TypeReg, body: body} }
func symlink(name, target string) tfile     { return tfile{name: name, typ: tar.TypeSymlink, link: target} }
func tarDir(name string) tfile              { return tfile{name: name, typ: tar.TypeDir} }
func hardlink(name, target string) tfile    { return tfile{name: name, typ: tar.TypeLink, link: target} }
func tarDevice(name string, typ byte) tfile { return tfile{name: name, typ: typ} }

func tarOf(t testing.TB, files ...tfile) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Typeflag: f.typ, Mode: 0o644, Size: int64(len(f.body)), Linkname: f.link}
		if f.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if f.typ == tar.TypeReg {
			if _, err := tw.Write(f.body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipOf(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func hash(t testing.TB, s string) v1.Hash {
	t.Helper()
	h, err := v1.NewHash(s)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// ociParts are the pieces of an OCI layout archive; knobs change them
// before (and after) their digests are taken.
type ociParts struct {
	layers   [][]byte // layer blobs (gzip)
	diffIDs  []string
	config   []byte
	manifest v1.Manifest
	index    v1.IndexManifest
	// rawManifest and rawIndex, when set, are the manifest and index.json
	// as they are written.
	rawManifest, rawIndex []byte
	// after runs on the archive's files before they are written.
	after func(files map[string][]byte)
	// extra entries, written first.
	extra []tfile
	// noBlobsDir leaves the blobs/ and blobs/sha256/ directory entries out.
	noBlobsDir bool
}

// newOCIParts is a valid one-image layout with the given layers.
func newOCIParts(t testing.TB, layerTars ...[]byte) *ociParts {
	t.Helper()
	p := &ociParts{}
	for _, lt := range layerTars {
		p.layers = append(p.layers, gzipOf(t, lt))
		p.diffIDs = append(p.diffIDs, sha(lt))
	}
	p.config = fmt.Appendf(nil, `{"architecture":"amd64","os":"linux","config":{"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":["%s"]}}`, strings.Join(p.diffIDs, `","`))
	p.manifest = v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1,
		Config: v1.Descriptor{MediaType: types.OCIConfigJSON, Size: int64(len(p.config)), Digest: hash(t, sha(p.config))}}
	for _, l := range p.layers {
		p.manifest.Layers = append(p.manifest.Layers, v1.Descriptor{MediaType: types.OCILayer, Size: int64(len(l)), Digest: hash(t, sha(l))})
	}
	return p
}

// archive writes the layout as a tar: the manifest's and index's
// descriptors are filled in from the bytes unless rawIndex is set.
func (p *ociParts) archive(t testing.TB) []byte {
	t.Helper()
	files := map[string][]byte{"oci-layout": []byte(`{"imageLayoutVersion":"1.0.0"}`)}
	files["blobs/sha256/"+strings.TrimPrefix(sha(p.config), "sha256:")] = p.config
	for _, l := range p.layers {
		files["blobs/sha256/"+strings.TrimPrefix(sha(l), "sha256:")] = l
	}
	manifest := p.rawManifest
	if manifest == nil {
		var err error
		if manifest, err = json.Marshal(p.manifest); err != nil {
			t.Fatal(err)
		}
	}
	files["blobs/sha256/"+strings.TrimPrefix(sha(manifest), "sha256:")] = manifest
	index := p.rawIndex
	if index == nil {
		idx := p.index
		if idx.SchemaVersion == 0 {
			idx.SchemaVersion = 2
		}
		if len(idx.Manifests) == 0 {
			idx.Manifests = []v1.Descriptor{{MediaType: types.OCIManifestSchema1, Size: int64(len(manifest)), Digest: hash(t, sha(manifest)),
				Annotations: map[string]string{annotationRefName: "example.org/test:v1"}}}
		}
		var err error
		if index, err = json.Marshal(idx); err != nil {
			t.Fatal(err)
		}
	}
	files["index.json"] = index
	if p.after != nil {
		p.after(files)
	}
	entries := append([]tfile{}, p.extra...)
	if !p.noBlobsDir {
		entries = append(entries, tarDir("blobs/"), tarDir("blobs/sha256/"))
	}
	for _, name := range sortedNames(files) {
		entries = append(entries, reg(name, files[name]))
	}
	return tarOf(t, entries...)
}

// manifestBytes is the manifest as archive writes it.
func (p *ociParts) manifestBytes(t testing.TB) []byte {
	t.Helper()
	if p.rawManifest != nil {
		return p.rawManifest
	}
	b, err := json.Marshal(p.manifest)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sortedNames(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// dockerArchive is a valid old-format docker save archive of one image.
func dockerArchive(t testing.TB, layerTars ...[]byte) (files []tfile, manifest []byte) {
	t.Helper()
	var diffIDs, paths []string
	for i, lt := range layerTars {
		diffIDs = append(diffIDs, sha(lt))
		p := fmt.Sprintf("%064x/layer.tar", i+1)
		paths = append(paths, p)
		files = append(files, reg(p, lt))
	}
	config := fmt.Appendf(nil, `{"architecture":"amd64","os":"linux","config":{"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":["%s"]}}`, strings.Join(diffIDs, `","`))
	cfgName := strings.TrimPrefix(sha(config), "sha256:") + ".json"
	files = append(files, reg(cfgName, config))
	manifest, err := json.Marshal([]map[string]any{{"Config": cfgName, "RepoTags": []string{"busybox:latest"}, "Layers": paths}})
	if err != nil {
		t.Fatal(err)
	}
	return files, manifest
}

var (
	layerA = func(t testing.TB) []byte { return tarOf(t, reg("a", []byte("a"))) }
	layerB = func(t testing.TB) []byte { return tarOf(t, reg("b", []byte("b"))) }
)
