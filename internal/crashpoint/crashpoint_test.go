package crashpoint

import (
	"os"
	"os/exec"
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

func TestHit_KillsTheProcessWhenArmed(t *testing.T) {
	if os.Getenv("CRASHPOINT_CHILD") == "1" {
		Hit("other")
		Hit("here")
		os.Exit(0) // not reached when armed
	}
	cmd := exec.Command(os.Args[0], "-test.run=TestHit_KillsTheProcessWhenArmed")
	cmd.Env = append(os.Environ(), "CRASHPOINT_CHILD=1", Env+"=here")
	err := cmd.Run()
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if err == nil || !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child ended with %v, want SIGKILL", err)
	}
}
