package main_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-run/cairn/internal/schema"
	"github.com/cairn-run/cairn/internal/testenv/scratch"
)

func TestCLI_JournalSalvageWritesAFileThatPassesTheCheck(t *testing.T) {
	e := scratch.NewDaemon(t)
	cli(t, e, "create", "--name", "kept", "busybox", "true")
	e.Stop()
	t.Cleanup(e.Start)
	original, err := os.ReadFile(filepath.Join(e.Config.Root, "cairn.db"))
	if err != nil {
		t.Fatal(err)
	}
	outDir := t.TempDir()
	out := filepath.Join(outDir, "cairn.db")
	stdout, errOut, code := cli(t, e, "journal", "check", "--root", e.Config.Root, "--salvage", out)
	// Four records: the import of busybox (intent, done) and the create.
	if code != 0 || !strings.Contains(stdout, "kept 4 records, dropped 0") || !strings.Contains(stdout, "1 containers, 1 image views") {
		t.Fatalf("salvage: code %d, %q %q", code, stdout, errOut)
	}
	stdout, errOut, code = cli(t, e, "journal", "check", "--root", outDir)
	if code != 0 || !strings.Contains(stdout, fmt.Sprintf("ok: schema %d,", schema.Version)) || !strings.Contains(stdout, "clean shutdown: no") {
		t.Fatalf("check of the salvaged file: code %d, %q %q", code, stdout, errOut)
	}
	if _, errOut, code = cli(t, e, "journal", "check", "--root", e.Config.Root, "--salvage", out); code == 0 || !strings.Contains(errOut, "already exists") {
		t.Fatalf("salvage over an existing file: code %d, %q", code, errOut)
	}
	after, _ := os.ReadFile(filepath.Join(e.Config.Root, "cairn.db"))
	if string(after) != string(original) {
		t.Fatal("salvage changed the original journal")
	}
}
