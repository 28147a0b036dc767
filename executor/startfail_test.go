package executor

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cairn-run/cairn/internal/errdefs"
)

// The messages are what libcontainer's Run returned here for these commands.
func TestClassifyStartError(t *testing.T) {
	const pre = "run container: unable to start container process: error during container init: "
	for _, tc := range []struct {
		name, err, kind, msg string
	}{
		{"nosuchcmd", pre + `exec: "nosuchcmd": executable file not found in $PATH`,
			readyErrorCommandNotFound, `exec "nosuchcmd": executable file not found in $PATH`},
		{"/no/such/command", pre + `exec: "/no/such/command": stat /no/such/command: no such file or directory`,
			readyErrorCommandNotFound, `exec "/no/such/command": no such file or directory`},
		{"/etc/passwd/x", pre + `exec: "/etc/passwd/x": stat /etc/passwd/x: not a directory`,
			readyErrorCommandNotFound, `exec "/etc/passwd/x": not a directory`},
		{"/etc/passwd", pre + `exec: "/etc/passwd": permission denied`,
			readyErrorCommandNotExecutable, `exec "/etc/passwd": permission denied`},
		{"etc/passwd", pre + `exec: "etc/passwd": permission denied`,
			readyErrorCommandNotExecutable, `exec "etc/passwd": permission denied`},
		{"/bin", pre + `exec: "/bin": is a directory`,
			readyErrorCommandNotExecutable, `exec "/bin": is a directory`},
		{`we"ird cmd`, pre + `exec: "we\"ird cmd": executable file not found in $PATH`,
			readyErrorCommandNotFound, `exec "we\"ird cmd": executable file not found in $PATH`},
		// Not about the command: other failures keep their message and get no kind.
		{"sh", "create container: mkdir /sys/fs/cgroup/freezer/cairn/x: permission denied", "", ""},
		{"sh", pre + `exec: "bash": permission denied`, "", ""},
		{"sh", pre + `exec: "sh": exec format error`, "", ""},
		{"", pre + `exec: "": executable file not found in $PATH`, "", ""},
	} {
		kind, msg := classifyStartError(tc.name, errors.New(tc.err))
		want := tc.msg
		if tc.kind == "" {
			want = tc.err
		}
		if kind != tc.kind || msg != want {
			t.Errorf("classifyStartError(%q, %q) = %q, %q; want %q, %q", tc.name, tc.err, kind, msg, tc.kind, want)
		}
	}
	huge := strings.Repeat("x", 5000)
	if _, msg := classifyStartError(huge, errors.New(`exec: "`+huge+`": executable file not found in $PATH`)); len(msg) > 400 {
		t.Errorf("a 5000-byte command came back in a %d-byte message", len(msg))
	}
}

func TestStart_CommandFailuresAreClassifiedAndLeaveNothing(t *testing.T) {
	env := newTestEnv(t)
	for _, tc := range []struct {
		id, command string
		want        error
	}{
		{"cmd-missing", "nosuchcmd", errdefs.ErrCommandNotFound},
		{"cmd-missing-path", "/no/such/command", errdefs.ErrCommandNotFound},
		{"cmd-no-x-bit", "/etc/passwd", errdefs.ErrCommandNotExecutable},
		{"cmd-directory", "/bin", errdefs.ErrCommandNotExecutable},
	} {
		t.Run(tc.command, func(t *testing.T) {
			_, err := env.ex.Start(context.Background(), env.spec(tc.id, tc.command))
			if !errors.Is(err, tc.want) {
				t.Fatalf("Start(%s): %v, want %v", tc.command, err, tc.want)
			}
			other := map[error]error{errdefs.ErrCommandNotFound: errdefs.ErrCommandNotExecutable, errdefs.ErrCommandNotExecutable: errdefs.ErrCommandNotFound}[tc.want]
			if errors.Is(err, other) {
				t.Errorf("Start(%s) is both not found and not executable: %v", tc.command, err)
			}
			if !strings.Contains(err.Error(), tc.command) {
				t.Errorf("error does not name the command: %v", err)
			}
			assertNothingLeft(t, env, tc.id)
		})
	}
}
