package executor

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/cairn-run/cairn/internal/procstat"
)

func TestWaitProcessGone(t *testing.T) {
	cmd := exec.Command("sleep", "0.2")
	if err := cmd.Start(); err != nil {
		t.Skip("no sleep binary:", err)
	}
	st, err := procstat.Read(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	// Nobody reaps it while we wait: a zombie must count as gone.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := waitProcessGone(ctx, cmd.Process.Pid, st.StartTime); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	// A wrong start time means "not that process", so nothing to wait for.
	if err := waitProcessGone(ctx, os.Getpid(), 1); err != nil {
		t.Fatal(err)
	}

	// Cancellation wakes the wait.
	self, _ := procstat.Read(os.Getpid())
	short, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if err := waitProcessGone(short, os.Getpid(), self.StartTime); err != context.DeadlineExceeded {
		t.Fatalf("waiting on ourselves: %v, want deadline exceeded", err)
	}
}

func TestStartedAt_IsWhenThisProcessStarted(t *testing.T) {
	st, err := procstat.Read(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	got := startedAt(st.StartTime)
	if since := time.Since(got); since < 0 || since > 10*time.Minute {
		t.Fatalf("startedAt = %v, %v ago; this test process started moments ago", got, since)
	}
}
