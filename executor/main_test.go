package executor

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The test binary is its own shim and container init stub, exactly like the
// cairn CLI in production.
func TestMain(m *testing.M) {
	MaybeInit()
	if len(os.Args) > 1 && os.Args[1] == "shim" {
		if err := RunShim(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	code := m.Run()
	if leaked := leakedCgroups(); len(leaked) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: cgroups leaked by this run (now removed): %v\n", leaked)
		code = 1
	}
	if testRootfs != "" {
		_ = os.RemoveAll(filepath.Dir(testRootfs))
	}
	os.Exit(code)
}

// testRootfs is a busybox root filesystem shared by all tests of the run
// (containers only read it); built on first use.
var (
	testRootfs   string
	testRootfsMu sync.Mutex
)

// requireRoot skips a test that needs root, or fails it when the run
// demands root tests (CAIRN_REQUIRE_ROOT_TESTS=1), so CI cannot go green by
// skipping everything.
func requireRoot(t testing.TB) {
	t.Helper()
	why := ""
	switch {
	case os.Geteuid() != 0:
		why = "needs root (namespaces, cgroups)"
	case !fileExists("/bin/busybox"):
		why = "needs /bin/busybox (apt-get install busybox-static)"
	}
	if why == "" {
		return
	}
	if os.Getenv("CAIRN_REQUIRE_ROOT_TESTS") == "1" {
		t.Fatalf("%s, and CAIRN_REQUIRE_ROOT_TESTS=1", why)
	}
	t.Skip(why)
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func busyboxRootfs(t testing.TB) string {
	t.Helper()
	testRootfsMu.Lock()
	defer testRootfsMu.Unlock()
	if testRootfs != "" {
		return testRootfs
	}
	base, err := os.MkdirTemp("", "cairn-executor-rootfs-")
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(base, "rootfs")
	for _, d := range []string{"bin", "etc", "tmp", "proc", "dev", "sys", "root"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(root, "tmp"), 0o1777); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("/bin/busybox", "--list").Output()
	if err != nil {
		t.Fatalf("busybox --list: %v", err)
	}
	for _, applet := range strings.Fields(string(out)) {
		if applet == "busybox" {
			continue
		}
		if err := os.Symlink("busybox", filepath.Join(root, "bin", applet)); err != nil && !os.IsExist(err) {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\n",
		"etc/group":  "root:x:0:\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	testRootfs = root
	return root
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
