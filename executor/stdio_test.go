package executor

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cairn-run/cairn/internal/crilog"
	"github.com/cairn-run/cairn/internal/errdefs"
)

func (env *testEnv) startSpec(spec Spec) Process {
	env.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := env.ex.Start(ctx, spec)
	if err != nil {
		env.t.Fatalf("Start(%s): %v", spec.ID, err)
	}
	return p
}

// collect reads a stream until its end, keeping stdout and stderr apart.
func collect(t testing.TB, s *Stream) (stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	for {
		stream, data, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return out.String(), errOut.String()
		}
		if err != nil {
			t.Fatalf("recv: %v (so far %q %q)", err, out.String(), errOut.String())
		}
		if stream == StreamStderr {
			errOut.Write(data)
		} else {
			out.Write(data)
		}
	}
}

// readUntil reads a stream's stdout until it holds want.
func readUntil(t testing.TB, s *Stream, want string) string {
	t.Helper()
	var out bytes.Buffer
	deadline := time.AfterFunc(20*time.Second, func() { _ = s.Close() })
	defer deadline.Stop()
	for !strings.Contains(out.String(), want) {
		_, data, err := s.Recv()
		if err != nil {
			t.Fatalf("waiting for %q: %v (got %q)", want, err, out.String())
		}
		out.Write(data)
	}
	return out.String()
}

func TestAttach_StdinPipeRoundTripsBinaryDataAndDeliversEOF(t *testing.T) {
	env := newTestEnv(t)
	spec := env.spec("cat", "cat")
	spec.OpenStdin, spec.StdinOnce, spec.AwaitAttach = true, true, true
	p := env.startSpec(spec)
	s, err := env.ex.Attach(context.Background(), "cat", AttachOptions{Stdin: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.TTY {
		t.Error("a container without a terminal attached as one")
	}
	data := make([]byte, 3<<20)
	_, _ = rand.Read(data)
	go func() {
		_, _ = s.Write(data)
		_ = s.CloseStdin()
	}()
	out, _ := collect(t, s)
	if out != string(data) {
		t.Fatalf("cat gave back %d bytes, want the %d sent, byte for byte", len(out), len(data))
	}
	if x := env.wait(env.ex, "cat", p); x.Code == nil || *x.Code != 0 {
		t.Fatalf("exit %s, want 0 after EOF", codeOf(x))
	}
}

func TestAttach_TerminalIsATTYAndFollowsResize(t *testing.T) {
	env := newTestEnv(t)
	spec := env.spec("tty", "sh")
	spec.Terminal, spec.OpenStdin = true, true
	p := env.startSpec(spec)
	ctx := context.Background()
	s, err := env.ex.Attach(ctx, "tty", AttachOptions{Stdin: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !s.TTY {
		t.Fatal("attach does not say the container has a terminal")
	}
	if err := env.ex.Resize(ctx, "tty", "", 33, 111); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write([]byte("tty; stty size; echo do''ne\n")); err != nil {
		t.Fatal(err)
	}
	out := readUntil(t, s, "done")
	if !strings.Contains(out, "/dev/pts/") || !strings.Contains(out, "33 111") {
		t.Fatalf("tty and stty size in the terminal: %q", out)
	}
	// A second client sees the same terminal.
	s2, err := env.ex.Attach(ctx, "tty", AttachOptions{Stdin: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if _, err := s.Write([]byte("echo two''clients\n")); err != nil {
		t.Fatal(err)
	}
	readUntil(t, s, "twoclients")
	readUntil(t, s2, "twoclients")
	// Detaching leaves it running; the log has the terminal's output.
	_ = s.Close()
	_ = s2.Close()
	if !procAlive(p) {
		t.Fatal("the container did not survive its clients detaching")
	}
	waitForLog(t, env.ex.LogPath("tty"), "twoclients")
	s3, err := env.ex.Attach(ctx, "tty", AttachOptions{Stdin: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s3.Write([]byte("exit 4\n")); err != nil {
		t.Fatal(err)
	}
	collect(t, s3)
	if x := env.wait(env.ex, "tty", p); x.Code == nil || *x.Code != 4 {
		t.Fatalf("exit %s, want 4", codeOf(x))
	}
}

func procAlive(p Process) bool { return unix.Kill(p.PID, 0) == nil }

func TestLog_SeparatesStreamsAndRotates(t *testing.T) {
	env := newTestEnv(t)
	// Two pipes are read side by side, so stdout still in its pipe when
	// the stderr line comes is logged after it (and could rotate it away):
	// the pause lets stdout drain first.
	spec := env.spec("rot", "sh", "-c", `i=0; while [ $i -lt 3000 ]; do echo "line $i out"; i=$((i+1)); done; sleep 0.3; echo "last err" >&2`)
	spec.LogMaxSize, spec.LogMaxFiles = 16<<10, 3
	p := env.startSpec(spec)
	if x := env.wait(env.ex, "rot", p); x.Code == nil || *x.Code != 0 {
		t.Fatalf("exit %s", codeOf(x))
	}
	files := crilog.Files(env.ex.LogPath("rot"))
	if len(files) != 3 {
		t.Fatalf("log files %v, want 3 (the limit)", files)
	}
	for _, f := range files {
		if fi, err := os.Stat(f); err != nil || fi.Size() > 16<<10 {
			t.Errorf("%s: %v bytes (limit 16 KiB), %v", f, fi.Size(), err)
		}
	}
	out, errOut := logOutput(t, env.ex.LogPath("rot"), crilog.Stdout), logOutput(t, env.ex.LogPath("rot"), crilog.Stderr)
	if !strings.HasSuffix(out, "line 2999 out\n") || errOut != "last err\n" || strings.Contains(out, "err") {
		t.Fatalf("streams not kept apart or the end lost: ...%q / ...%q", tail(out), tail(errOut))
	}
	if _, err := os.Stat(env.ex.LogPath("rot") + ".3"); err == nil {
		t.Error("a fourth file was kept")
	}
}

func tail(s string) string { return s[max(0, len(s)-40):] }

func TestLog_KeepsWritingAfterTheShimReexecutes(t *testing.T) {
	env := newTestEnv(t)
	spec := env.spec("late", "sh", "-c", `echo early; sleep 1.5; printf 'late partial'; sleep 0.2; echo ' line'; echo err >&2; exit 6`)
	p := env.startSpec(spec)
	if x := env.wait(env.ex, "late", p); x.Code == nil || *x.Code != 6 {
		t.Fatalf("exit %s", codeOf(x))
	}
	if !reexecutedSinceStart(env, "late") {
		t.Log("the shim did not re-execute (slow machine?); the handover is not exercised")
	}
	if out := logOutput(t, env.ex.LogPath("late"), crilog.Stdout); out != "early\nlate partial line\n" {
		t.Fatalf("stdout across the re-execution: %q", out)
	}
	if errOut := logOutput(t, env.ex.LogPath("late"), crilog.Stderr); errOut != "err\n" {
		t.Fatalf("stderr across the re-execution: %q", errOut)
	}
}

// reexecutedSinceStart reads the shim log for the idle state's mark.
func reexecutedSinceStart(env *testEnv, id string) bool {
	data, _ := os.ReadFile(filepath.Join(env.ex.containerDir(id), shimLogName))
	return !strings.Contains(string(data), "could not re-execute")
}

func TestLog_AContainerThatNobodyReadsNeverStalls(t *testing.T) {
	env := newTestEnv(t)
	// 100 MB of output, nobody attached.
	spec := env.spec("flood", "sh", "-c", `dd if=/dev/zero bs=1M count=100 2>/dev/null | tr '\0' 'x' | fold -w 100; echo done`)
	spec.LogMaxSize, spec.LogMaxFiles = 8<<20, 2
	p := env.startSpec(spec)
	x := env.wait(env.ex, "flood", p)
	if x.Code == nil || *x.Code != 0 {
		t.Fatalf("exit %s", codeOf(x))
	}
	files := crilog.Files(env.ex.LogPath("flood"))
	if len(files) > 2 {
		t.Fatalf("%d log files, limit 2", len(files))
	}
	if out := logOutput(t, env.ex.LogPath("flood"), crilog.Stdout); !strings.HasSuffix(out, "done\n") {
		t.Fatalf("the log lost its end: ...%q", tail(out))
	}
}

func TestExec_ExitCodesUsersAndWorkdirs(t *testing.T) {
	env := newTestEnv(t)
	p := env.start("box", "sleep", "1000")
	ctx := context.Background()
	run := func(id string, spec ExecSpec) (Exit, string, string, error) {
		t.Helper()
		spec.ID, spec.Attach = id, true
		xp, s, err := env.ex.Exec(ctx, "box", spec)
		if err != nil {
			return Exit{}, "", "", err
		}
		out, errOut := collect(t, s)
		_ = s.Close()
		x, err := env.ex.WaitExec(ctx, "box", p, id, xp)
		if err != nil {
			t.Fatal(err)
		}
		return x, out, errOut, nil
	}
	for _, tc := range []struct {
		name      string
		spec      ExecSpec
		code      int
		out, err  string
		sentinels error
	}{
		{name: "true", spec: ExecSpec{Args: []string{"true"}}},
		{name: "exit3", spec: ExecSpec{Args: []string{"sh", "-c", "echo o; echo e >&2; exit 3"}}, code: 3, out: "o\n", err: "e\n"},
		{name: "nobody", spec: ExecSpec{Args: []string{"id"}, User: mustUser(t, env, "nobody")}, out: "uid=65534(nobody) gid=65534(nogroup)\n"},
		{name: "workdir", spec: ExecSpec{Args: []string{"pwd"}, Cwd: "/tmp"}, out: "/tmp\n"},
		{name: "env", spec: ExecSpec{Args: []string{"sh", "-c", "echo $FOO"}, Env: []string{"FOO=bar"}}, out: "bar\n"},
		{name: "missing", spec: ExecSpec{Args: []string{"nosuchcommand"}}, sentinels: errdefs.ErrCommandNotFound},
		{name: "notexec", spec: ExecSpec{Args: []string{"/etc/passwd"}}, sentinels: errdefs.ErrCommandNotExecutable},
	} {
		x, out, errOut, err := run("exec-"+tc.name, tc.spec)
		if tc.sentinels != nil {
			if !errors.Is(err, tc.sentinels) {
				t.Errorf("%s: %v, want %v", tc.name, err, tc.sentinels)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if x.Code == nil || *x.Code != tc.code || out != tc.out || errOut != tc.err {
			t.Errorf("%s: exit %s, stdout %q, stderr %q; want %d %q %q", tc.name, codeOf(x), out, errOut, tc.code, tc.out, tc.err)
		}
		if err := env.ex.ReleaseExec(ctx, "box", "exec-"+tc.name); err != nil {
			t.Error(err)
		}
	}
	if _, err := env.ex.ResolveUser(ctx, "box", "nosuchuser"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("unknown user: %v, want ErrInvalidArgument", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(env.ex.containerDir("box"), execsDirName)); len(entries) != 0 {
		t.Errorf("released sessions left exit records: %v", entries)
	}
	_ = env.ex.Signal("box", p, unix.SIGKILL)
	env.wait(env.ex, "box", p)
}

func mustUser(t *testing.T, env *testEnv, spec string) User {
	t.Helper()
	u, err := resolveUser(env.rootfs, spec)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestExec_TerminalAndConcurrentSessions(t *testing.T) {
	env := newTestEnv(t)
	p := env.start("many", "sleep", "1000")
	ctx := context.Background()
	xp, s, err := env.ex.Exec(ctx, "many", ExecSpec{ID: "tty1", Args: []string{"sh", "-c", "tty; stty size"}, Terminal: true, Attach: true, Rows: 20, Cols: 70})
	if err != nil {
		t.Fatal(err)
	}
	out, _ := collect(t, s)
	s.Close()
	if !s.TTY || !strings.Contains(out, "/dev/pts/") || !strings.Contains(out, "20 70") {
		t.Fatalf("exec with a terminal: tty=%v %q", s.TTY, out)
	}
	if x, err := env.ex.WaitExec(ctx, "many", p, "tty1", xp); err != nil || x.Code == nil || *x.Code != 0 {
		t.Fatalf("%s %v", codeOf(x), err)
	}
	const n = 50
	errs := make(chan error, n)
	for i := range n {
		go func() {
			id := fmt.Sprintf("c%d", i)
			xp, s, err := env.ex.Exec(ctx, "many", ExecSpec{ID: id, Args: []string{"sh", "-c", fmt.Sprintf("echo %d; exit %d", i, i%7)}, Attach: true})
			if err != nil {
				errs <- err
				return
			}
			out, _ := collect(t, s)
			s.Close()
			x, err := env.ex.WaitExec(ctx, "many", p, id, xp)
			switch {
			case err != nil:
				errs <- err
			case x.Code == nil || *x.Code != i%7 || out != fmt.Sprintf("%d\n", i):
				errs <- fmt.Errorf("%s: exit %s output %q", id, codeOf(x), out)
			default:
				errs <- env.ex.ReleaseExec(ctx, "many", id)
			}
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	_ = env.ex.Signal("many", p, unix.SIGKILL)
	env.wait(env.ex, "many", p)
}

// A detached session outlives the executor that started it (a daemon
// restart), and the container's end records its exit before the init's.
func TestExec_DetachedSessionOutlivesTheDaemonAndTheContainersEnd(t *testing.T) {
	env := newTestEnv(t)
	p := env.start("keep", "sh", "-c", "sleep 1000")
	ctx := context.Background()
	xp, s, err := env.ex.Exec(ctx, "keep", ExecSpec{ID: "bg", Args: []string{"sh", "-c", "sleep 0.3; exit 9"}})
	if err != nil || s != nil {
		t.Fatalf("detached exec: %v, stream %v", err, s)
	}
	fresh := env.freshExecutor()
	x, err := fresh.WaitExec(ctx, "keep", p, "bg", xp)
	if err != nil || x.Code == nil || *x.Code != 9 {
		t.Fatalf("after a restart the session's exit is %s, %v; want 9", codeOf(x), err)
	}
	st, err := fresh.InspectExec(ctx, "keep", p, "bg")
	if err != nil || !st.Known || st.Exit == nil || *st.Exit.Code != 9 {
		t.Fatalf("inspect: %+v %v", st, err)
	}
	// One that is still running when the container ends.
	xp, _, err = fresh.Exec(ctx, "keep", ExecSpec{ID: "long", Args: []string{"sleep", "1000"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := fresh.Signal("keep", p, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	env.wait(fresh, "keep", p)
	// The shim is gone now: the record on disk says it.
	x, err = fresh.WaitExec(ctx, "keep", p, "long", xp)
	if err != nil || x.Code == nil || *x.Code != 137 {
		t.Fatalf("exec killed with its container: %s %v, want 137", codeOf(x), err)
	}
	// The shim (still answering, or gone and its record left) says how it
	// ended.
	if st, err := fresh.InspectExec(ctx, "keep", p, "long"); err != nil || st.Exit == nil || st.Exit.Code == nil || *st.Exit.Code != 137 {
		t.Fatalf("inspect after the container's end: %+v %v", st, err)
	}
	if _, _, err := fresh.Exec(ctx, "keep", ExecSpec{ID: "late", Args: []string{"true"}}); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("exec into an exited container: %v, want ErrFailedPrecondition", err)
	}
	for _, id := range []string{"bg", "long"} {
		if err := fresh.ReleaseExec(ctx, "keep", id); err != nil {
			t.Fatal(err)
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(fresh.containerDir("keep"), execsDirName)); len(entries) != 0 {
		t.Errorf("released sessions left exit records: %v", entries)
	}
}
