package crashpoint

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

func TestParse(t *testing.T) {
	got := parse(" start.after-mount, ,stop.before-done")
	if len(got) != 2 || !got["start.after-mount"] || !got["stop.before-done"] {
		t.Fatalf("parse = %v", got)
	}
	if parse("") != nil {
		t.Fatal("empty env armed something")
	}
}

func TestCheck_RefusesUnknownNames(t *testing.T) {
	known := []string{"start.after-mount", "stop.after-signal"}
	if err := check(parse("start.after-mount"), known); err != nil {
		t.Fatal(err)
	}
	err := check(parse("start.after-mount,stop.after-sginal"), known)
	if err == nil || !strings.Contains(err.Error(), "stop.after-sginal") {
		t.Fatalf("got %v, want the misspelt name refused", err)
	}
}

// runChild runs this test binary's test name with CAIRN_CRASH_AT=here and
// returns how it ended.
func runChild(t *testing.T, name string) (syscall.WaitStatus, error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+name+"$")
	cmd.Env = append(os.Environ(), "CRASHPOINT_CHILD=1", Env+"=here")
	err := cmd.Run()
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ws, err
}

func TestHit_KillsOnlyWhenBuiltWithCrashPoints(t *testing.T) {
	if os.Getenv("CRASHPOINT_CHILD") == "1" {
		Hit("other")
		Hit("here")
		os.Exit(0) // not reached when armed in a crashpoints build
	}
	ws, err := runChild(t, "TestHit_KillsOnlyWhenBuiltWithCrashPoints")
	if Enabled {
		if err == nil || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("child ended with %v, want SIGKILL", err)
		}
		return
	}
	if err != nil {
		t.Fatalf("a release build crashed at an armed point: %v", err)
	}
}

func TestIgnored_OnlyInReleaseBuilds(t *testing.T) {
	t.Setenv(Env, "start.after-mount")
	if Ignored() == Enabled {
		t.Fatalf("Ignored() = %v in a build with Enabled = %v", Ignored(), Enabled)
	}
}
