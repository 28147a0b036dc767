package main_test

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/cairn-run/cairn/internal/testenv"
	"github.com/cairn-run/cairn/internal/testenv/scratch"
)

// ptySession is the cairn binary run on a pseudo-terminal, as a user's
// shell runs it: its own session, the terminal its controlling one.
type ptySession struct {
	t      *testing.T
	master *os.File
	tty    *os.File // kept open by the test, to read the terminal's modes
	cmd    *exec.Cmd
	mu     sync.Mutex
	out    bytes.Buffer
	done   chan struct{}
}

func startOnPTY(t *testing.T, e *scratch.Env, rows, cols uint16, args ...string) *ptySession {
	t.Helper()
	_, cairn := testenv.Binaries(t)
	master, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	if err := pty.Setsize(master, &pty.Winsize{Rows: rows, Cols: cols}); err != nil {
		t.Fatal(err)
	}
	s := &ptySession{t: t, master: master, tty: tty, done: make(chan struct{})}
	s.cmd = exec.Command(cairn, args...)
	s.cmd.Env = append(os.Environ(), "CAIRN_SOCKET="+e.Socket)
	s.cmd.Stdin, s.cmd.Stdout, s.cmd.Stderr = tty, tty, tty
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.cmd.Process.Kill()
		_ = master.Close()
		_ = tty.Close()
	})
	go func() {
		defer close(s.done)
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			s.mu.Lock()
			s.out.Write(buf[:n])
			s.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return s
}

func (s *ptySession) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String()
}

func (s *ptySession) typeKeys(keys string) {
	s.t.Helper()
	if _, err := s.master.WriteString(keys); err != nil {
		s.t.Fatal(err)
	}
}

// expect waits until the output has want (after the output's offset from).
func (s *ptySession) expect(from int, want string) int {
	s.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		out := s.output()
		if i := strings.Index(out[min(from, len(out)):], want); i >= 0 {
			return from + i + len(want)
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("no %q in the terminal's output: %q", want, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *ptySession) modes() unix.Termios {
	s.t.Helper()
	tio, err := unix.IoctlGetTermios(int(s.tty.Fd()), unix.TCGETS)
	if err != nil {
		s.t.Fatal(err)
	}
	return *tio
}

// exit waits for cairn to end and returns its exit code.
func (s *ptySession) exit() int {
	s.t.Helper()
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case err := <-done:
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		if err != nil {
			s.t.Fatal(err)
		}
		return 0
	case <-time.After(20 * time.Second):
		s.t.Fatalf("cairn did not exit; terminal: %q", s.output())
		return -1
	}
}

func TestCLI_RunITHasATerminalThatFollowsResizesDetachesAndRestoresRawMode(t *testing.T) {
	testenv.RequireRoot(t)
	e := scratch.NewDaemon(t)
	s := startOnPTY(t, e, 40, 100, "run", "-it", "--name", "tt", "busybox", "sh")
	cooked := s.modes()
	if cooked.Lflag&unix.ICANON == 0 {
		t.Fatal("the test's terminal starts in raw mode")
	}
	at := s.expect(0, "# ")
	s.typeKeys("tty; stty size\r")
	at = s.expect(at, "/dev/pts/")
	at = s.expect(at, "40 100")
	if m := s.modes(); m.Lflag&(unix.ICANON|unix.ECHO) != 0 {
		t.Errorf("cairn run -it left the terminal cooked: lflag %#x", m.Lflag)
	}
	// A resize of the user's terminal reaches the container's.
	if err := pty.Setsize(s.master, &pty.Winsize{Rows: 33, Cols: 77}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.typeKeys("stty size\r")
		time.Sleep(200 * time.Millisecond)
		if strings.Contains(s.output()[at:], "33 77") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the container's terminal did not follow the resize: %q", s.output()[at:])
		}
	}
	// ctrl-p ctrl-q detaches: cairn exits 0, the container runs on, the
	// terminal is as it was.
	s.typeKeys("\x10\x11")
	if code := s.exit(); code != 0 {
		t.Fatalf("detach: cairn exited %d; terminal %q", code, s.output())
	}
	if got := s.modes(); got != cooked {
		t.Errorf("terminal modes after the detach:\n%+v\nwant\n%+v", got, cooked)
	}
	if out, _, _ := cli(t, e, "ps", "--format", "json"); !strings.Contains(out, `"tt"`) || !strings.Contains(out, "running") {
		t.Fatalf("after the detach: %s", out)
	}
	// exec -it into it, with its own terminal and exit code.
	x := startOnPTY(t, e, 24, 80, "exec", "-it", "tt", "sh", "-c", "tty; stty size; exit 4")
	x.expect(x.expect(0, "/dev/pts/"), "24 80")
	if code := x.exit(); code != 4 {
		t.Fatalf("exec -it: exit %d; terminal %q", code, x.output())
	}
	// attach again; the shell's exit is cairn's.
	a := startOnPTY(t, e, 40, 100, "attach", "tt")
	a.typeKeys("echo back\r")
	a.expect(0, "back")
	a.typeKeys("exit 3\r")
	if code := a.exit(); code != 3 {
		t.Fatalf("attach: exit %d; terminal %q", code, a.output())
	}
	if got := a.modes(); got.Lflag&unix.ICANON == 0 {
		t.Errorf("attach left the terminal raw: lflag %#x", got.Lflag)
	}
}

func TestCLI_RunIStreamsStdinAndExecCodes(t *testing.T) {
	testenv.RequireRoot(t)
	e := scratch.NewDaemon(t)
	payload := bytes.Repeat([]byte("\x00\x01binary\x10\x11\xff\n"), 200_000) // ctrl-p ctrl-q too: no detach keys without a tty
	out, errOut, code := cliWithInput(t, e, bytes.NewReader(payload), "run", "-i", "--rm", "busybox", "cat")
	if code != 0 || out != string(payload) {
		t.Fatalf("run -i cat: code %d, %d bytes back of %d, stderr %q", code, len(out), len(payload), errOut)
	}
	id, _, _ := cli(t, e, "run", "-d", "--name", "x", "busybox", "sleep", "600")
	for _, c := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"true"}, 0, ""},
		{[]string{"sh", "-c", "exit 3"}, 3, ""},
		{[]string{"/etc/passwd"}, 126, ""},
		{[]string{"no-such-command"}, 127, ""},
		{[]string{"-u", "nobody", "id", "-un"}, 0, "nobody\n"},
		{[]string{"-w", "/tmp", "pwd"}, 0, "/tmp\n"},
		{[]string{"-e", "K=V", "sh", "-c", "echo $K"}, 0, "V\n"},
	} {
		var args []string
		if c.args[0] == "-u" || c.args[0] == "-w" || c.args[0] == "-e" {
			args = append([]string{"exec", c.args[0], c.args[1], "x"}, c.args[2:]...)
		} else {
			args = append([]string{"exec", "x"}, c.args...)
		}
		out, errOut, code := cli(t, e, args...)
		if code != c.code || out != c.out {
			t.Errorf("cairn %v: code %d, output %q, stderr %q; want %d %q", args, code, out, errOut, c.code, c.out)
		}
	}
	if _, errOut, code := cli(t, e, "exec", "-u", "no-such-user", "x", "id"); code != 125 || !strings.Contains(errOut, "invalid_argument") {
		t.Errorf("exec as an unknown user: %d %q", code, errOut)
	}
	xid, _, code := cli(t, e, "exec", "-d", "x", "sh", "-c", "exit 9")
	if code != 0 || len(strings.TrimSpace(xid)) != 64 {
		t.Fatalf("exec -d: %d %q", code, xid)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, _, _ := cli(t, e, "exec", "inspect", strings.TrimSpace(xid)[:12])
		if strings.Contains(out, `"exit_code": 9`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("exec inspect: %s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out, _, code := cli(t, e, "top", "x"); code != 0 || !strings.Contains(out, "sleep 600") {
		t.Errorf("top: %d %q", code, out)
	}
	cli(t, e, "rm", "-f", strings.TrimSpace(id))
}
