package busybox

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"time"
)

// imageConfig is the part of an OCI image config WriteArchive fills in. (The
// image-spec types would pull go-digest's package initialisation, regexps
// of some 90 KB, into every shim process: see WriteArchive.)
type imageConfig struct {
	Created      time.Time `json:"created"`
	Architecture string    `json:"architecture"`
	OS           string    `json:"os"`
	Config       struct {
		Cmd []string `json:"Cmd,omitempty"`
	} `json:"config"`
	RootFS struct {
		Type    string   `json:"type"`
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

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

// WriteArchive writes a docker save archive (the format `docker load`
// reads: manifest.json, the config, gzip layer files) of one image tagged
// tag: the busybox rootfs as its first layer, then the extra layers (tars),
// with cmd as its Cmd. Images written with the same busybox share their
// first layer. It is written here rather than with go-containerregistry's
// tarball writer to keep that library out of the cairn binary, which is
// also every container's shim: the drill needs it, and the format is a
// manifest and some files.
func WriteArchive(w io.Writer, busyboxPath, tag string, cmd []string, extra ...[]byte) error {
	var rootfs bytes.Buffer
	if err := WriteRootfsTar(&rootfs, busyboxPath); err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	add := func(name string, body []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body)), ModTime: Epoch}); err != nil {
			return err
		}
		_, err := tw.Write(body)
		return err
	}
	cfg := imageConfig{Created: Epoch, Architecture: runtime.GOARCH, OS: "linux"}
	cfg.Config.Cmd = cmd
	cfg.RootFS.Type = "layers"
	var layerFiles []string
	for _, layer := range append([][]byte{rootfs.Bytes()}, extra...) {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, "sha256:"+sha256Hex(layer))
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		if _, err := zw.Write(layer); err != nil {
			return err
		}
		if err := zw.Close(); err != nil {
			return err
		}
		name := sha256Hex(gz.Bytes()) + ".tar.gz"
		if err := add(name, gz.Bytes()); err != nil {
			return err
		}
		layerFiles = append(layerFiles, name)
	}
	config, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	configName := sha256Hex(config) + ".json"
	if err := add(configName, config); err != nil {
		return err
	}
	manifest, err := json.Marshal([]struct {
		Config   string
		RepoTags []string
		Layers   []string
	}{{Config: configName, RepoTags: []string{tag}, Layers: layerFiles}})
	if err != nil {
		return err
	}
	if err := add("manifest.json", manifest); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	return nil
}
