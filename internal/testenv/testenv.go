// Package testenv gives integration tests a scratch Cairn: the built
// binaries, a busybox image tar, a daemon on a fresh root, socket and cgroup
// parent, and a teardown that leaves no mount, cgroup, process or shim behind
// even when the test fails. Nothing here is used outside tests.
package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/cairn-run/cairn/internal/busybox"
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

// RepoRoot is the module's top directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

var (
	artifactsOnce sync.Once
	artifacts     struct {
		dir, cairnd, cairn, busyboxTar string
		err                            error
	}
)

// Main runs a test binary's tests and removes the artifacts built for them.
// Packages using Binaries or BusyboxTar call it from TestMain.
func Main(m *testing.M) int {
	code := m.Run()
	if artifacts.dir != "" {
		_ = os.RemoveAll(artifacts.dir)
	}
	return code
}

func build(t testing.TB) {
	t.Helper()
	artifactsOnce.Do(func() {
		dir, err := os.MkdirTemp("", "cairn-bin-")
		if err != nil {
			artifacts.err = err
			return
		}
		artifacts.dir = dir
		artifacts.cairnd = filepath.Join(dir, "cairnd")
		artifacts.cairn = filepath.Join(dir, "cairn")
		artifacts.busyboxTar = filepath.Join(dir, "busybox.tar")
		// Built with crash points, so tests can kill the daemon at any of them.
		cmd := exec.Command("go", "build", "-tags", "crashpoints", "-o", dir, "./cmd/cairnd", "./cmd/cairn")
		cmd.Dir = RepoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			artifacts.err = &buildError{step: cmd.Args, out: string(out), err: err}
			return
		}
		artifacts.err = busybox.WriteFile(artifacts.busyboxTar, busybox.DefaultPath)
	})
	if artifacts.err != nil {
		t.Fatal(artifacts.err)
	}
}

type buildError struct {
	step []string
	out  string
	err  error
}

func (e *buildError) Error() string { return e.step[0] + ": " + e.err.Error() + "\n" + e.out }

// Binaries builds cairnd and cairn once per test binary and returns their paths.
func Binaries(t testing.TB) (cairnd, cairn string) {
	build(t)
	return artifacts.cairnd, artifacts.cairn
}

// BusyboxTar returns the path of a busybox rootfs tar, the test image.
func BusyboxTar(t testing.TB) string {
	build(t)
	return artifacts.busyboxTar
}
