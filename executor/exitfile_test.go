package executor

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestExitFile_RoundTrip(t *testing.T) {
	dir := t.TempDir()
	run := Process{PID: 10, StartTime: 100, ShimPID: 9, ShimStartTime: 90}
	if _, ok, err := readExitFile(dir, run); ok || err != nil {
		t.Fatalf("empty dir: ok=%v err=%v", ok, err)
	}
	at := time.Date(2026, 11, 25, 12, 0, 0, 123, time.UTC)
	want := exitRecord{ExitCode: 137, Signal: "SIGKILL", FinishedAt: at, ShimPID: 9, ShimStartTime: 90}
	if err := writeExitFile(dir, want); err != nil {
		t.Fatal(err)
	}
	otherRun := Process{PID: 20, StartTime: 200, ShimPID: 19, ShimStartTime: 190}
	if _, ok, _ := readExitFile(dir, otherRun); ok {
		t.Fatal("an exit record was taken for the exit of another run")
	}
	got, ok, err := readExitFile(dir, run)
	if err != nil || !ok || got.ExitCode != 137 || got.Signal != "SIGKILL" || !got.FinishedAt.Equal(at) {
		t.Fatalf("got %+v ok=%v err=%v", got, ok, err)
	}
	x := got.exit()
	if x.Code == nil || *x.Code != 137 || x.Reason != "" {
		t.Fatalf("exit() = %+v", x)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
	if fi, _ := os.Stat(filepath.Join(dir, exitFileName)); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestExitFile_Corrupt(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, exitFileName), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := readExitFile(dir, Process{}); ok || err == nil {
		t.Fatalf("corrupt file: ok=%v err=%v, want an error", ok, err)
	}
}

func TestWriteFileAtomic_Replaces(t *testing.T) {
	dir := t.TempDir()
	for _, content := range []string{"one", "two"} {
		if err := writeFileAtomic(dir, "f", []byte(content), false); err != nil {
			t.Fatal(err)
		}
	}
	if got := readFile(t, filepath.Join(dir, "f")); got != "two" {
		t.Fatalf("content %q", got)
	}
}
