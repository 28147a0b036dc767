package testenv

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestImages are real image archives built offline from the busybox
// rootfs by tools nobody here wrote: Debian's umoci (a multi-layer OCI
// layout with a whiteout, an opaque directory and a config) and skopeo
// (the same image as a docker save archive, an oci-archive and with zstd
// layers). Built once per test binary (Main removes them).
type TestImages struct {
	// Layout is the umoci layout directory; it holds Base and Multi.
	Layout string
	// LayoutTar is Layout as a tar (what `tar -C Layout -cf` makes).
	LayoutTar string
	// OCIArchive, DockerArchive: skopeo's oci-archive and docker-archive
	// of Multi; ZstdLayoutTar is a layout of Multi with zstd layers, tarred.
	OCIArchive, DockerArchive, ZstdLayoutTar string
}

// Names and content of the test images.
const (
	// BaseImage is the busybox rootfs as one layer.
	BaseImage = "cairn-test/base:v1"
	// MultiImage is BaseImage plus a layer that deletes /bin/vi, adds the
	// user app (1000:1000, also in group extra 2000), /etc/cairn/{a,b} and
	// /data/seed and /data/sub (app's) in its VOLUME /data,
	// and a layer that makes /etc/cairn opaque and adds /etc/cairn/c.
	MultiImage = "cairn-test/multi:v1"
	// Its config.
	MultiCmd        = "echo multi $GREETING from $(pwd) as $(id -u):$(id -g)"
	MultiEntrypoint = "sh -c"
	MultiEnv        = "GREETING=hello"
	MultiWorkdir    = "/work/dir"
	MultiUser       = "app"
	MultiStopSignal = "SIGUSR1"
	MultiPort       = "8080/tcp"
	MultiVolume     = "/data"
	// MultiVolumeFile is a file the image has in its VOLUME, which a new
	// anonymous volume is filled with; MultiVolumeBody is its content.
	MultiVolumeFile = "/data/seed"
	MultiVolumeBody = "seeded by the image"
	MultiLabel      = "org.cairn.test=multi"
)

var testImages struct {
	once sync.Once
	imgs TestImages
	err  error
}

// Images builds (once) and returns the test images. It needs umoci and
// skopeo (scripts/install-deps.sh installs them); without them the test
// fails: CI runs every test.
func Images(t testing.TB) TestImages {
	t.Helper()
	testImages.once.Do(func() {
		testImages.imgs, testImages.err = buildImages(BusyboxTar(t))
	})
	if testImages.err != nil {
		t.Fatal(testImages.err)
	}
	return testImages.imgs
}

func buildImages(busyboxTar string) (TestImages, error) {
	for _, tool := range []string{"umoci", "skopeo"} {
		if _, err := exec.LookPath(tool); err != nil {
			return TestImages{}, fmt.Errorf("%s is not installed (scripts/install-deps.sh installs it): %w", tool, err)
		}
	}
	dir, err := artifactPath("images")
	if err != nil {
		return TestImages{}, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return TestImages{}, err
	}
	imgs := TestImages{
		Layout: filepath.Join(dir, "layout"), LayoutTar: filepath.Join(dir, "layout.tar"),
		OCIArchive: filepath.Join(dir, "oci-archive.tar"), DockerArchive: filepath.Join(dir, "docker-archive.tar"),
		ZstdLayoutTar: filepath.Join(dir, "zstd-layout.tar"),
	}
	L := imgs.Layout
	rootless := []string{}
	if os.Geteuid() != 0 {
		rootless = []string{"--rootless"}
	}
	bundle := func(n string) string { return filepath.Join(dir, "bundle-"+n) }
	opaque := filepath.Join(dir, "opaque.tar")
	if err := os.WriteFile(opaque, opaqueLayer(), 0o644); err != nil {
		return imgs, err
	}
	steps := [][]string{
		{"umoci", "init", "--layout", L},
		{"umoci", "new", "--image", L + ":base"},
		append([]string{"umoci", "unpack"}, append(rootless, "--image", L+":base", bundle("1"))...),
		{"tar", "-C", bundle("1") + "/rootfs", "-xf", busyboxTar},
		{"umoci", "repack", "--image", L + ":base", bundle("1")},
		append([]string{"umoci", "unpack"}, append(rootless, "--image", L+":base", bundle("2"))...),
		{"sh", "-c", `set -e; r=` + bundle("2") + `/rootfs
			rm $r/bin/vi
			echo 'app:x:1000:1000:app:/home/app:/bin/sh' >> $r/etc/passwd
			printf 'app:x:1000:\nextra:x:2000:app\n' >> $r/etc/group
			mkdir -p $r/etc/cairn $r/home/app
			echo a > $r/etc/cairn/a; echo b > $r/etc/cairn/b
			mkdir -p $r/data/sub; printf '` + MultiVolumeBody + `' > $r` + MultiVolumeFile + `; chown 1000:1000 $r/data/sub`},
		{"umoci", "repack", "--image", L + ":multi", bundle("2")},
		{"umoci", "raw", "add-layer", "--image", L + ":multi", opaque},
		{"umoci", "config", "--image", L + ":multi",
			"--config.entrypoint", "sh", "--config.entrypoint", "-c", "--config.cmd", MultiCmd,
			"--config.env", MultiEnv, "--config.workingdir", MultiWorkdir, "--config.user", MultiUser,
			"--config.stopsignal", MultiStopSignal, "--config.exposedports", MultiPort,
			"--config.volume", MultiVolume, "--config.label", MultiLabel},
		{"umoci", "tag", "--image", L + ":base", BaseImage},
		{"umoci", "tag", "--image", L + ":multi", MultiImage},
		{"umoci", "rm", "--image", L + ":base"},
		{"umoci", "rm", "--image", L + ":multi"},
		{"tar", "-C", L, "-cf", imgs.LayoutTar, "."},
		{"skopeo", "copy", "-q", "oci:" + L + ":" + MultiImage, "oci-archive:" + imgs.OCIArchive + ":" + MultiImage},
		{"skopeo", "copy", "-q", "oci:" + L + ":" + MultiImage, "docker-archive:" + imgs.DockerArchive + ":" + MultiImage},
		{"skopeo", "copy", "-q", "--dest-compress-format", "zstd", "oci:" + L + ":" + MultiImage, "oci:" + filepath.Join(dir, "zstd") + ":" + MultiImage},
		{"tar", "-C", filepath.Join(dir, "zstd"), "-cf", imgs.ZstdLayoutTar, "."},
	}
	for _, step := range steps {
		cmd := exec.Command(step[0], step[1:]...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return imgs, &buildError{step: step, out: string(out), err: err}
		}
	}
	for _, b := range []string{bundle("1"), bundle("2")} {
		_ = os.RemoveAll(b)
	}
	return imgs, nil
}

// opaqueLayer is a hand-made layer: /etc/cairn becomes opaque (a and b of
// the layer below are hidden) and gets c.
func opaqueLayer() []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct{ name, body string }{{"etc/cairn/.wh..wh..opq", ""}, {"etc/cairn/c", "c\n"}} {
		_ = tw.WriteHeader(&tar.Header{Name: f.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(f.body))})
		_, _ = tw.Write([]byte(f.body))
	}
	_ = tw.WriteHeader(&tar.Header{Name: "etc/cairn/", Typeflag: tar.TypeDir, Mode: 0o755})
	_ = tw.Close()
	return buf.Bytes()
}

// TarDir is the tar of a directory's content (names relative to it), as a
// test would hand an OCI layout directory to a reader of tars.
func TarDir(t testing.TB, dir string) []byte {
	t.Helper()
	out, err := exec.Command("tar", "-C", dir, "-cf", "-", ".").Output()
	if err != nil {
		t.Fatalf("tar %s: %v", dir, err)
	}
	return out
}

// Sh runs a shell command for a test and returns its output.
func Sh(t testing.TB, script string) string {
	t.Helper()
	out, err := exec.Command("sh", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	return strings.TrimSpace(string(out))
}
