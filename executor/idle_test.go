package executor

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cairn-run/cairn/internal/procstat"
)

// hangUpShim listens like a shim and hangs up on the first hangUps
// connections after reading their request, then answers state requests. It
// returns the socket's directory and a count of the connections it took.
func hangUpShim(t *testing.T, hangUps int) (dir string, conns func() int) {
	t.Helper()
	dir = t.TempDir()
	ln, err := listenUnixIn(dir, socketName)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	taken := make(chan int, 100)
	go func() {
		for n := 1; ; n++ {
			c, err := ln.AcceptUnix()
			if err != nil {
				return
			}
			taken <- n
			if _, err := bufio.NewReader(c).ReadBytes('\n'); err == nil && n > hangUps {
				_, _ = c.Write([]byte(`{"version":2,"exec_id":"","pid":7,"start_time":8,"status":"running"}` + "\n"))
			}
			_ = c.Close()
		}
	}()
	return dir, func() int { return len(taken) }
}

func TestCallShim_AsksAgainWhenTheShimHangsUp(t *testing.T) {
	dir, conns := hangUpShim(t, 1)
	resp, err := callShim(context.Background(), dir, shimRequest{Op: opState})
	if err != nil || resp.PID != 7 || resp.Status != statusRunning {
		t.Fatalf("callShim = %+v, %v; want the answer of the second connection", resp, err)
	}
	if n := conns(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
}

func TestCallShim_GivesUpOnAShimThatKeepsHangingUp(t *testing.T) {
	dir, conns := hangUpShim(t, 1000)
	_, err := callShim(context.Background(), dir, shimRequest{Op: opState})
	if !errors.Is(err, errShimUnreachable) || !errors.Is(err, errShimHungUp) {
		t.Fatalf("callShim = %v, want a hang-up that is errShimUnreachable", err)
	}
	if n := conns(); n != hangUpAttempts {
		t.Fatalf("%d connections, want %d", n, hangUpAttempts)
	}
}

func TestCallShim_DoesNotRetryARefusedConnection(t *testing.T) {
	dir := t.TempDir()
	ln, err := listenUnixIn(dir, socketName)
	if err != nil {
		t.Fatal(err)
	}
	_ = ln.Close() // the socket file stays, nobody listens: a shim that is gone
	start := time.Now()
	if _, err := callShim(context.Background(), dir, shimRequest{Op: opState}); !errors.Is(err, errShimUnreachable) || errors.Is(err, errShimHungUp) {
		t.Fatalf("callShim = %v, want unreachable without a hang-up", err)
	}
	t.Logf("refused in %v", time.Since(start))
}

func TestWithEnv_ReplacesEverySetting(t *testing.T) {
	got := withEnv([]string{"A=1", "GOMAXPROCS=4", "B=2", "GOMAXPROCS=8", "GOMAXPROCSX=3"}, "GOMAXPROCS", "1")
	want := []string{"A=1", "B=2", "GOMAXPROCSX=3", "GOMAXPROCS=1"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("withEnv = %q, want %q", got, want)
	}
}

// reexecuted reports whether process pid runs a re-executed shim image: its
// environment (as execve(2) got it) carries the idle state.
func reexecuted(pid int) bool {
	env, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	return err == nil && bytes.Contains(env, []byte(idleStateEnv+"="))
}

func TestShim_ReexecutesWhileIdleAndKeepsServing(t *testing.T) {
	env := newTestEnv(t)
	p := env.start("idle", "sh", "-c", "trap 'exit 7' TERM; while true; do sleep 0.05; done")
	if reexecuted(p.ShimPID) {
		t.Fatal("the shim re-executed itself at once; it should wait for reexecDelay")
	}
	// A Wait that is connected to the shim before it re-executes must get
	// the exit anyway.
	waited := make(chan Exit, 1)
	go func() { waited <- env.wait(env.ex, "idle", p) }()
	deadline := time.Now().Add(reexecDelay + 10*time.Second)
	for !reexecuted(p.ShimPID) {
		if time.Now().After(deadline) {
			t.Fatalf("shim %d did not re-execute itself within %v", p.ShimPID, reexecDelay+10*time.Second)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !procstat.Alive(p.ShimPID, p.ShimStartTime) {
		t.Fatal("the re-executed shim is not the process the handle names")
	}
	if st, err := procstat.Read(p.PID); err != nil || st.PPID != p.ShimPID {
		t.Fatalf("container init %d: %+v, %v; want a child of shim %d", p.PID, st, err, p.ShimPID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := callShim(ctx, env.ex.containerDir("idle"), shimRequest{Op: opState})
	if err != nil || resp.Status != statusRunning || resp.PID != p.PID || resp.StartTime != p.StartTime {
		t.Fatalf("state after the re-exec = %+v, %v", resp, err)
	}
	if err := env.ex.Signal("idle", p, unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case x := <-waited:
		if x.Code == nil || *x.Code != 7 {
			t.Fatalf("Wait = %s, want 7", codeOf(x))
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Wait did not return")
	}
	if rec, ok, err := readExitFile(env.ex.containerDir("idle"), p); err != nil || !ok || rec.ExitCode != 7 {
		t.Fatalf("exit.json = %+v, %v, %v", rec, ok, err)
	}
	if err := env.ex.Cleanup("idle", p); err != nil {
		t.Fatal(err)
	}
	if env.ex.mounts.exists(env.ex.cgroupPath("idle")) {
		t.Error("cgroup left after Cleanup")
	}
}
