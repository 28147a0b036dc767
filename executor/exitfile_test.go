package executor

import (
	"encoding/json"
	"errors"
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
		if err := writeFileAtomic(dir, "f", []byte(content)); err != nil {
			t.Fatal(err)
		}
	}
	if got := readFile(t, filepath.Join(dir, "f")); got != "two" {
		t.Fatalf("content %q", got)
	}
}

func TestExitFile_WritesVersionAndExecID(t *testing.T) {
	dir := t.TempDir()
	if err := writeExitFile(dir, exitRecord{ExitCode: 3, ShimPID: 9, ShimStartTime: 90}); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(readFile(t, filepath.Join(dir, exitFileName))), &m); err != nil {
		t.Fatal(err)
	}
	if m["version"] != float64(protocolVersion) || m["exec_id"] != "" {
		t.Fatalf("exit.json = %v, want version %d and an empty exec_id", m, protocolVersion)
	}
}

func TestExitFile_Version1IsRead(t *testing.T) {
	dir := t.TempDir()
	// What the shim of commit 85b056e writes.
	v1 := `{"exit_code":7,"finished_at":"2026-11-25T12:00:00.5Z","shim_pid":9,"shim_start_time":90}`
	if err := os.WriteFile(filepath.Join(dir, exitFileName), []byte(v1), 0o600); err != nil {
		t.Fatal(err)
	}
	rec, ok, err := readExitFile(dir, Process{ShimPID: 9, ShimStartTime: 90})
	if err != nil || !ok || rec.ExitCode != 7 || rec.FinishedAt.IsZero() {
		t.Fatalf("version 1 exit.json = %+v, %v, %v", rec, ok, err)
	}
}

func TestExitFile_NewerVersionIsRefusedAndOtherExecsAreNotTheInit(t *testing.T) {
	dir := t.TempDir()
	run := Process{ShimPID: 9, ShimStartTime: 90}
	path := filepath.Join(dir, exitFileName)
	if err := os.WriteFile(path, []byte(`{"version":4,"exec_id":"","exit_code":1,"shim_pid":9,"shim_start_time":90}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := readExitFile(dir, run); ok || !errors.Is(err, errProtocolTooNew) {
		t.Fatalf("version 4 exit.json: ok=%v err=%v, want errProtocolTooNew", ok, err)
	}
	if err := os.WriteFile(path, []byte(`{"version":2,"exec_id":"e1","exit_code":1,"shim_pid":9,"shim_start_time":90}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := readExitFile(dir, run); ok || err != nil {
		t.Fatalf("an exec session's record was taken for the init's: ok=%v err=%v", ok, err)
	}
}

func TestShimRecord_Versions(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, shimFileName)
	for _, tc := range []struct {
		content string
		ok      bool
		tooNew  bool
	}{
		{`{"pid":12,"start_time":34}`, true, false}, // version 1
		{`{"version":2,"pid":12,"start_time":34}`, true, false},
		{`{"version":3,"pid":12,"start_time":34}`, true, false},
		{`{"version":4,"pid":12,"start_time":34}`, false, true},
		{`{"pid":0}`, false, false},
		{`{torn`, false, false},
	} {
		if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
			t.Fatal(err)
		}
		rec, ok, err := readShimRecord(dir)
		if ok != tc.ok || errors.Is(err, errProtocolTooNew) != tc.tooNew || (err != nil && !tc.tooNew) {
			t.Errorf("%s: %+v ok=%v err=%v", tc.content, rec, ok, err)
		}
		if ok && (rec.PID != 12 || rec.StartTime != 34) {
			t.Errorf("%s: read as %+v", tc.content, rec)
		}
	}
	// A start over a shim that a newer cairn recorded is refused, with why.
	e := &Executor{cfg: Config{Dir: t.TempDir()}}
	if err := os.MkdirAll(e.containerDir("newer"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.containerDir("newer"), shimFileName), []byte(`{"version":4,"pid":12}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.checkNotRunning("newer"); !errors.Is(err, errProtocolTooNew) {
		t.Errorf("checkNotRunning over a version 4 shim.json: %v", err)
	}
}

func TestSyncExitFile(t *testing.T) {
	dir := t.TempDir()
	if err := syncExitFile(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("sync without a record = %v, want ErrNotExist", err)
	}
	if err := writeExitFile(dir, exitRecord{ExitCode: 1, ShimPID: 9, ShimStartTime: 90}); err != nil {
		t.Fatal(err)
	}
	if err := syncExitFile(dir); err != nil {
		t.Fatal(err)
	}
}
