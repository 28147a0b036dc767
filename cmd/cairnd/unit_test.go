package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The unit shipped in packaging/ is valid for systemd, waits for READY=1
// and leaves the shims alone when it stops cairnd.
func TestSystemdUnit(t *testing.T) {
	data, err := os.ReadFile("../../packaging/systemd/cairnd.service")
	if err != nil {
		t.Fatal(err)
	}
	unit := string(data)
	for _, want := range []string{"Type=notify", "KillMode=process", "ExecStart=/usr/local/bin/cairnd"} {
		if !strings.Contains(unit, "\n"+want+"\n") {
			t.Errorf("the unit lacks %s", want)
		}
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatal("needs systemd-analyze (Debian's systemd) to verify the unit")
	}
	// verify checks that ExecStart exists: point it at one that does.
	copyPath := filepath.Join(t.TempDir(), "cairnd.service")
	if err := os.WriteFile(copyPath, []byte(strings.ReplaceAll(unit, "/usr/local/bin/cairnd", "/bin/true")), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(analyze, "verify", copyPath).CombinedOutput(); err != nil || len(out) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}
