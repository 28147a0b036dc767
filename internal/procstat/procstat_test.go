package procstat

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	// Fields 3..22 of a real stat line, after the command name.
	const tail = " S 17 1 1 0 -1 4194560 1234 0 0 0 5 6 0 0 20 0 1 0 987654 10000 200"
	for _, tc := range []struct {
		name    string
		line    string
		want    Stat
		wantErr bool
	}{
		{"plain", "42 (sleep)" + tail, Stat{State: 'S', PPID: 17, StartTime: 987654}, false},
		{"spaces and parens in comm", "42 (a) b (c))" + tail, Stat{State: 'S', PPID: 17, StartTime: 987654}, false},
		{"zombie", "42 (sh) Z 1 1 1 0 -1 4194560 1234 0 0 0 5 6 0 0 20 0 1 0 555 0 0", Stat{State: 'Z', PPID: 1, StartTime: 555}, false},
		{"no comm", "42 sleep S 1", Stat{}, true},
		{"unterminated comm", "1 (x", Stat{}, true},
		{"truncated", "42 (sleep) S 1 1 1", Stat{}, true},
		{"bad ppid", "1 (x) S p 1 1 0 -1 0 0 0 0 0 0 0 0 0 0 0 1 0 5", Stat{}, true},
		{"bad start time", "42 (sleep) S 1 1 1 0 -1 4194560 1234 0 0 0 5 6 0 0 20 0 1 0 x 0 0", Stat{}, true},
		{"empty", "", Stat{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse([]byte(tc.line))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestIs(t *testing.T) {
	for _, tc := range []struct {
		st    Stat
		start uint64
		want  bool
	}{
		{Stat{State: 'S', StartTime: 10}, 10, true},
		{Stat{State: 'R', StartTime: 10}, 10, true},
		{Stat{State: 'D', StartTime: 10}, 10, true},  // e.g. frozen
		{Stat{State: 'S', StartTime: 10}, 11, false}, // PID reused
		{Stat{State: 'Z', StartTime: 10}, 10, false}, // exited, not yet reaped
		{Stat{State: 'X', StartTime: 10}, 10, false},
	} {
		if got := tc.st.Is(tc.start); got != tc.want {
			t.Errorf("%+v Is(%d) = %v, want %v", tc.st, tc.start, got, tc.want)
		}
	}
}

func TestRead_ARealProcessWithAnOddName(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep binary")
	}
	// The kernel takes the command name from the executable's file name.
	weird := filepath.Join(t.TempDir(), "a) b (c) d")
	if err := os.Symlink(sleep, weird); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(weird, "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	if comm, _ := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/comm"); string(comm) != "a) b (c) d\n" {
		t.Fatalf("comm = %q; the test needs the odd name", comm)
	}
	st, err := Read(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	self, err := Read(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if st.Dead() || st.PPID != os.Getpid() || st.StartTime < self.StartTime {
		t.Fatalf("stat of our child = %+v; we started at %d", st, self.StartTime)
	}
	if !Alive(cmd.Process.Pid, st.StartTime) || Alive(cmd.Process.Pid, st.StartTime+1) {
		t.Fatal("the process is not told apart from a PID reuse")
	}
}

func TestRead_AZombieIsNotAlive(t *testing.T) {
	cmd := exec.Command("/bin/sh", "-c", "exit 0")
	if err := cmd.Start(); err != nil {
		t.Skip("no /bin/sh:", err)
	}
	pid := cmd.Process.Pid
	defer func() { _ = cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := Read(pid) // not reaped yet: its stat still reads
		if err != nil {
			t.Fatal(err)
		}
		if st.State == 'Z' {
			if !st.Dead() || Alive(pid, st.StartTime) {
				t.Fatal("a zombie counts as alive")
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("child never became a zombie: %+v", st)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRead_NoSuchProcess(t *testing.T) {
	for _, pid := range []int{0, -1, 1 << 30} {
		if _, err := Read(pid); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Read(%d) = %v, want ErrNotExist", pid, err)
		}
		if Alive(pid, 0) {
			t.Errorf("Alive(%d)", pid)
		}
	}
}
