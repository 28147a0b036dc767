package executor

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	// Fields 3..22 of a real stat line, after the command name.
	const tail = " S 1 1 1 0 -1 4194560 1234 0 0 0 5 6 0 0 20 0 1 0 987654 10000 200"
	for _, tc := range []struct {
		name    string
		line    string
		want    procStat
		wantErr bool
	}{
		{"plain", "42 (sleep)" + tail, procStat{State: 'S', StartTime: 987654}, false},
		{"spaces and parens in comm", "42 (my (weird) cmd)" + tail, procStat{State: 'S', StartTime: 987654}, false},
		{"zombie", "42 (sh) Z 1 1 1 0 -1 4194560 1234 0 0 0 5 6 0 0 20 0 1 0 555 0 0", procStat{State: 'Z', StartTime: 555}, false},
		{"no comm", "42 sleep S 1", procStat{}, true},
		{"truncated", "42 (sleep) S 1 1 1", procStat{}, true},
		{"bad start time", "42 (sleep) S 1 1 1 0 -1 4194560 1234 0 0 0 5 6 0 0 20 0 1 0 x 0 0", procStat{}, true},
		{"empty", "", procStat{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseProcStat([]byte(tc.line))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestProcStatIdentifies(t *testing.T) {
	for _, tc := range []struct {
		st    procStat
		start uint64
		want  bool
	}{
		{procStat{State: 'S', StartTime: 10}, 10, true},
		{procStat{State: 'R', StartTime: 10}, 10, true},
		{procStat{State: 'D', StartTime: 10}, 10, true},
		{procStat{State: 'S', StartTime: 10}, 11, false}, // PID reused
		{procStat{State: 'Z', StartTime: 10}, 10, false}, // exited, not yet reaped
		{procStat{State: 'X', StartTime: 10}, 10, false},
	} {
		if got := tc.st.identifies(tc.start); got != tc.want {
			t.Errorf("%+v identifies(%d) = %v, want %v", tc.st, tc.start, got, tc.want)
		}
	}
}

func TestProcessAlive_SelfAndGone(t *testing.T) {
	self, err := readProcStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if !processAlive(os.Getpid(), self.StartTime) {
		t.Error("this process is not alive")
	}
	if processAlive(os.Getpid(), self.StartTime+1) {
		t.Error("wrong start time accepted")
	}
	if processAlive(0, 0) || processAlive(-1, 0) {
		t.Error("non-positive PID accepted")
	}
}

func TestWaitProcessGone(t *testing.T) {
	cmd := exec.Command("sleep", "0.2")
	if err := cmd.Start(); err != nil {
		t.Skip("no sleep binary:", err)
	}
	st, err := readProcStat(cmd.Process.Pid)
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
	self, _ := readProcStat(os.Getpid())
	short, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if err := waitProcessGone(short, os.Getpid(), self.StartTime); err != context.DeadlineExceeded {
		t.Fatalf("waiting on ourselves: %v, want deadline exceeded", err)
	}
}

func TestStartedAt_IsWhenThisProcessStarted(t *testing.T) {
	st, err := readProcStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	got := startedAt(st.StartTime)
	if since := time.Since(got); since < 0 || since > 10*time.Minute {
		t.Fatalf("startedAt = %v, %v ago; this test process started moments ago", got, since)
	}
}
