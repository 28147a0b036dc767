package busybox

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"runtime"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// File is one entry of a layer LayerTar makes: a regular file, or with
// an empty body and a name whose base starts ".wh.", a whiteout.
type File struct {
	Name string
	Body string
}

// LayerTar is a small layer: its files (and the directories above them).
func LayerTar(files ...File) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		_ = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.Name, Mode: 0o644, Size: int64(len(f.Body)), ModTime: Epoch})
		_, _ = tw.Write([]byte(f.Body))
	}
	_ = tw.Close()
	return buf.Bytes()
}

// WriteArchive writes a docker save archive, written by go-containerregistry
// (gzip layers, manifest.json), of one image tagged tag: the busybox
// rootfs as its first layer, then the extra layers (tars), with cmd as its
// Cmd. Images written with the same busybox share their first layer.
func WriteArchive(w io.Writer, busyboxPath, tag string, cmd []string, extra ...[]byte) error {
	var rootfs bytes.Buffer
	if err := WriteRootfsTar(&rootfs, busyboxPath); err != nil {
		return err
	}
	layers := []v1.Layer{}
	for _, data := range append([][]byte{rootfs.Bytes()}, extra...) {
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
		if err != nil {
			return fmt.Errorf("layer: %w", err)
		}
		layers = append(layers, l)
	}
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		return err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", runtime.GOARCH
	cfg.Config.Cmd = cmd
	cfg.Created = v1.Time{Time: Epoch}
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		return err
	}
	ref, err := name.NewTag(tag)
	if err != nil {
		return err
	}
	return tarball.Write(ref, img, w)
}
