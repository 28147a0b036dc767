package main_test

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-run/cairn/internal/testenv"
	"github.com/cairn-run/cairn/internal/testenv/scratch"
)

func tarNames(t *testing.T, path string) map[string]bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	names := map[string]bool{}
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		names[hdr.Name] = true
	}
}

func TestCLI_LoginPushPullSaveCommitExport(t *testing.T) {
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{BasicAuth: true})
	e := scratch.NewDaemon(t)
	dir := t.TempDir()
	t.Setenv("CAIRN_CONFIG", filepath.Join(dir, "config.json"))
	ref := reg.Host + "/cli/busybox:v1"
	if out, errOut, code := cli(t, e, "image", "tag", "busybox", ref); code != 0 {
		t.Fatalf("tag: %s %s", out, errOut)
	}
	// Not logged in: the registry refuses.
	if _, errOut, code := cli(t, e, "push", "--insecure-registry", ref); code == 0 || !strings.Contains(errOut, "permission_denied") {
		t.Fatalf("push without a login: code %d %s", code, errOut)
	}
	if out, errOut, code := cliWithInput(t, e, strings.NewReader(reg.Password+"\n"), "login", reg.Host, "-u", reg.User, "--password-stdin"); code != 0 {
		t.Fatalf("login: %s %s", out, errOut)
	}
	if fi, err := os.Stat(filepath.Join(dir, "config.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the login file: %v %v", fi, err)
	}
	out, errOut, code := cli(t, e, "push", "--insecure-registry", ref)
	if code != 0 || !strings.Contains(out, "digest sha256:") || !strings.Contains(errOut, "Pushed") {
		t.Fatalf("push: code %d %q %q", code, out, errOut)
	}
	if _, _, code := cli(t, e, "image", "rm", ref); code != 0 {
		t.Fatal("rm")
	}
	// Not a terminal: plain lines, one per change of a layer's status.
	out, errOut, code = cli(t, e, "pull", "--insecure-registry", ref)
	if code != 0 || !strings.Contains(out, "Pulled "+ref) || !strings.Contains(errOut, "Already exists") {
		t.Fatalf("pull: code %d %q %q", code, out, errOut)
	}
	if strings.Contains(errOut, "\x1b[") {
		t.Fatalf("terminal escapes on a pipe: %q", errOut)
	}

	// save -o FILE, then load it back.
	saved := filepath.Join(dir, "saved.tar")
	if _, errOut, code := cli(t, e, "image", "save", "-o", saved, "busybox"); code != 0 {
		t.Fatalf("save: %s", errOut)
	}
	if names := tarNames(t, saved); !names["manifest.json"] || !names["index.json"] || !names["oci-layout"] {
		t.Fatalf("saved archive: %v", names)
	}
	if out, errOut, code := cli(t, e, "image", "load", "-i", saved); code != 0 || !strings.Contains(out, "Loaded image: busybox:latest") {
		t.Fatalf("load of the saved archive: %q %q", out, errOut)
	}

	// commit, run the committed image; export.
	id, _, code := cli(t, e, "run", "-d", "busybox", "sh", "-c", "echo made > /made")
	id = strings.TrimSpace(id)
	if code != 0 {
		t.Fatal("run")
	}
	cli(t, e, "wait", id)
	if out, errOut, code := cli(t, e, "commit", "--change", `CMD ["cat", "/made"]`, id, "made:v1"); code != 0 || !strings.HasPrefix(out, "sha256:") {
		t.Fatalf("commit: %q %q", out, errOut)
	}
	if out, _, code := cli(t, e, "run", "--rm", "made:v1"); code != 0 || out != "made\n" {
		t.Fatalf("run of the committed image: %q %d", out, code)
	}
	exported := filepath.Join(dir, "rootfs.tar")
	if _, errOut, code := cli(t, e, "export", "-o", exported, id); code != 0 {
		t.Fatalf("export: %s", errOut)
	}
	if names := tarNames(t, exported); !names["made"] || !names["bin/busybox"] {
		t.Fatalf("export lacks files: %d entries", len(names))
	}
	// A failed export leaves no file behind.
	if _, _, code := cli(t, e, "export", "-o", filepath.Join(dir, "none.tar"), "no-such-container"); code == 0 {
		t.Fatal("export of a missing container succeeded")
	}
	if _, err := os.Stat(filepath.Join(dir, "none.tar")); !os.IsNotExist(err) {
		t.Fatalf("a failed export left a file: %v", err)
	}
	cli(t, e, "rm", id)
}
