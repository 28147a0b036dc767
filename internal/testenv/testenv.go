// Package testenv is the one test harness leaf every package's tests use:
// the root check, random ids, the busybox image (as a tar and as an
// unpacked rootfs), the built binaries, and leak checks of what a Cairn
// leaves on the machine. It imports nothing of Cairn but leaves, so the
// executor's and the layer store's own tests can use it; a scratch daemon
// is in package scratch. Nothing here is used outside tests.
package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/cairn-run/cairn/internal/busybox"
	"github.com/cairn-run/cairn/internal/inspect"
)

// RequireRootEnv, when set to 1, turns a root-only test's skip into a
// failure: CI runs as root and must run every test.
const RequireRootEnv = "CAIRN_REQUIRE_ROOT_TESTS"

// RequireRoot skips the test with a reason when not running as root, or
// fails it when RequireRootEnv=1.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv(RequireRootEnv) == "1" {
		t.Fatalf("needs root (real containers, mounts, cgroups), and %s=1 forbids skipping", RequireRootEnv)
	}
	t.Skip("needs root: runs real containers (namespaces, cgroups, overlay mounts)")
}

// RandomHex returns 2n random hex digits, for ids and cgroup parents that
// no other test uses.
func RandomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b)
}

// RepoRoot is the module's top directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// artifacts are built once per test binary, into one directory that Main
// removes.
var (
	artifactsMu  sync.Mutex
	artifactsDir string
	built        struct {
		once          sync.Once
		cairnd, cairn string
		err           error
	}
	image struct {
		once sync.Once
		tar  string
		err  error
	}
	rootfs struct {
		once sync.Once
		dir  string
		err  error
	}
)

// Main runs a test binary's tests and removes the artifacts built for them.
// Packages using Binaries, BusyboxTar or BusyboxRootfs call it from
// TestMain.
func Main(m *testing.M) int {
	code := m.Run()
	artifactsMu.Lock()
	defer artifactsMu.Unlock()
	if artifactsDir != "" {
		_ = os.RemoveAll(artifactsDir)
	}
	return code
}

func artifactPath(name string) (string, error) {
	artifactsMu.Lock()
	defer artifactsMu.Unlock()
	if artifactsDir == "" {
		dir, err := os.MkdirTemp("", "cairn-test-artifacts-")
		if err != nil {
			return "", err
		}
		artifactsDir = dir
	}
	return filepath.Join(artifactsDir, name), nil
}

// ArtifactDir makes a directory named name among the test binary's
// artifacts, which Main removes when the tests are done: for things a
// package builds once for all its tests.
func ArtifactDir(name string) (string, error) {
	dir, err := artifactPath(name)
	if err != nil {
		return "", err
	}
	return dir, os.MkdirAll(dir, 0o755)
}

// Binaries builds cairnd and cairn once per test binary and returns their
// paths. They are built with crash points, so tests can kill the daemon at
// any of them.
func Binaries(t testing.TB) (cairnd, cairn string) {
	t.Helper()
	built.once.Do(func() {
		dir, err := artifactPath("bin")
		if err != nil {
			built.err = err
			return
		}
		cmd := exec.Command("go", "build", "-tags", "crashpoints,seccomp", "-o", dir+"/", "./cmd/cairnd", "./cmd/cairn")
		cmd.Dir = RepoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			built.err = &buildError{step: cmd.Args, out: string(out), err: err}
			return
		}
		built.cairnd, built.cairn = filepath.Join(dir, "cairnd"), filepath.Join(dir, "cairn")
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.cairnd, built.cairn
}

type buildError struct {
	step []string
	out  string
	err  error
}

func (e *buildError) Error() string { return e.step[0] + ": " + e.err.Error() + "\n" + e.out }

// BusyboxTar returns the path of the busybox rootfs tar, the test image
// (internal/busybox; it needs Debian's busybox-static).
func BusyboxTar(t testing.TB) string {
	t.Helper()
	image.once.Do(func() {
		path, err := artifactPath("busybox.tar")
		if err == nil {
			err = busybox.WriteFile(path, busybox.DefaultPath)
		}
		image.tar, image.err = path, err
	})
	if image.err != nil {
		t.Fatal(image.err)
	}
	return image.tar
}

// BusyboxRootfs returns a directory holding the busybox image unpacked,
// shared by the tests of the binary: containers may run on it but must not
// write to it.
func BusyboxRootfs(t testing.TB) string {
	t.Helper()
	tarPath := BusyboxTar(t)
	rootfs.once.Do(func() {
		dir, err := artifactPath("rootfs")
		if err == nil {
			err = os.Mkdir(dir, 0o755)
		}
		if err == nil {
			var out []byte
			if out, err = exec.Command("tar", "-C", dir, "-xf", tarPath).CombinedOutput(); err != nil {
				err = &buildError{step: []string{"tar"}, out: string(out), err: err}
			}
		}
		rootfs.dir, rootfs.err = dir, err
	})
	if rootfs.err != nil {
		t.Fatal(rootfs.err)
	}
	return rootfs.dir
}

// Leaks lists what a Cairn on root with cgroupParent left on the machine:
// mounts under root, container cgroups, shims, container processes. A
// shim waiting in standbyDir (a standby shim, which has no container yet)
// is not counted; pass "" to count it.
func Leaks(root, cgroupParent, standbyDir string) []string {
	return inspect.Leaks(root, cgroupParent, standbyDir)
}

// Scrub kills, unmounts and removes whatever Leaks finds, and the cgroup
// parent itself, reporting what it had to clean.
func Scrub(root, cgroupParent string) []string {
	return inspect.Scrub(root, cgroupParent)
}
