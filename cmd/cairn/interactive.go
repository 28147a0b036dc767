package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"golang.org/x/term"
	"google.golang.org/protobuf/reflect/protoreflect"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
)

// defaultDetachKeys detach a client from a container or exec session and
// leave it running, as in Docker.
const defaultDetachKeys = "ctrl-p,ctrl-q"

// stdioFlags are run's and create's -i, -t and log rotation flags.
type stdioFlags struct {
	interactive, tty bool
	detachKeys       string
	logMaxSize       byteSize
	logMaxFiles      int32
}

func (f *stdioFlags) register(cmd *cobra.Command) {
	cmd.Flags().BoolVarP(&f.interactive, "interactive", "i", false, "keep stdin open and pass this terminal's input to the container")
	cmd.Flags().BoolVarP(&f.tty, "tty", "t", false, "give the container a pseudo-terminal")
	cmd.Flags().StringVar(&f.detachKeys, "detach-keys", defaultDetachKeys, "keys that detach from the container, leaving it running (\"\": none)")
	cmd.Flags().Var(&f.logMaxSize, "log-max-size", "rotate the log when a file reaches this size (e.g. 10m; -1: never; default: the daemon's)")
	cmd.Flags().Int32Var(&f.logMaxFiles, "log-max-files", 0, "log files kept, the current one included (default: the daemon's)")
}

func (f *stdioFlags) apply(req *cairnv1.CreateRequest) {
	req.Tty, req.OpenStdin = f.tty, f.interactive
	req.LogMaxSize, req.LogMaxFiles = int64(f.logMaxSize), f.logMaxFiles
}

// byteSize is a size flag: bytes, or with a k, m or g suffix (powers of
// 1024); -1 means no limit.
type byteSize int64

func (b *byteSize) String() string { return strconv.FormatInt(int64(*b), 10) }
func (b *byteSize) Type() string   { return "size" }
func (b *byteSize) Set(s string) error {
	v, err := parseByteSize(s)
	if err != nil {
		return err
	}
	*b = byteSize(v)
	return nil
}

func parseByteSize(s string) (int64, error) {
	if s == "-1" {
		return -1, nil
	}
	mult := int64(1)
	t := strings.ToLower(strings.TrimSuffix(strings.ToLower(s), "b"))
	switch {
	case strings.HasSuffix(t, "k"):
		mult, t = 1<<10, strings.TrimSuffix(t, "k")
	case strings.HasSuffix(t, "m"):
		mult, t = 1<<20, strings.TrimSuffix(t, "m")
	case strings.HasSuffix(t, "g"):
		mult, t = 1<<30, strings.TrimSuffix(t, "g")
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("size %q: want a positive number of bytes, optionally with k, m or g, or -1", s)
	}
	return n * mult, nil
}

// terminal is this process's terminal while a client runs: raw mode when
// asked and stdin is one, restored on every way out.
type terminal struct {
	fd    int
	state *term.State
	once  sync.Once
}

// openTerminal puts stdin in raw mode when raw and stdin is a terminal.
func openTerminal(raw bool) (*terminal, error) {
	t := &terminal{fd: int(os.Stdin.Fd())}
	if !raw || !term.IsTerminal(t.fd) {
		return t, nil
	}
	st, err := term.MakeRaw(t.fd)
	if err != nil {
		return nil, fmt.Errorf("raw mode: %w", err)
	}
	t.state = st
	return t, nil
}

func (t *terminal) restore() {
	t.once.Do(func() {
		if t.state != nil {
			_ = term.Restore(t.fd, t.state)
		}
	})
}

// size is the terminal's size, nil when stdout and stdin are no terminal.
func (t *terminal) size() *cairnv1.TerminalSize {
	for _, fd := range []int{int(os.Stdout.Fd()), t.fd} {
		if w, h, err := term.GetSize(fd); err == nil && w > 0 && h > 0 {
			return &cairnv1.TerminalSize{Rows: uint32(h), Cols: uint32(w)}
		}
	}
	return nil
}

// client is what an attach or exec sends after its first message.
type client struct {
	mu     sync.Mutex
	stdin  func([]byte) error
	eof    func() error
	resize func(*cairnv1.TerminalSize) error
}

func (c *client) do(fn func() error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return fn()
}

// pumpStdin sends stdin to the stream until its end (then says so).
func (c *client) pumpStdin(in io.Reader) {
	go func() {
		buf := make([]byte, 256<<10)
		for {
			n, err := in.Read(buf)
			if n > 0 {
				data := append([]byte(nil), buf[:n]...)
				if c.do(func() error { return c.stdin(data) }) != nil {
					return
				}
			}
			if err != nil {
				_ = c.do(c.eof)
				return
			}
		}
	}()
}

// followSize sends the terminal's size whenever it changes, until stop.
func (c *client) followSize(t *terminal) (stop func()) {
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-winch:
				if sz := t.size(); sz != nil {
					_ = c.do(func() error { return c.resize(sz) })
				}
			}
		}
	}()
	return func() { signal.Stop(winch); close(done) }
}

// restoreOnSignal restores the terminal and ends ctx on SIGTERM or SIGHUP
// (in raw mode, ctrl-c reaches the container, not this process).
func restoreOnSignal(t *terminal, cancel context.CancelFunc) (stop func()) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		select {
		case <-sigs:
			t.restore()
			cancel()
		case <-done:
		}
	}()
	return func() { signal.Stop(sigs); close(done) }
}

// errDaemonGone is the end of a stream the daemon left before the process
// exited: it went away (was restarted); the process runs on.
func errDaemonGone(what string, err error) error {
	msg := fmt.Sprintf("the daemon ended the stream before %s exited (was cairnd restarted?); it runs on", what)
	if err != nil {
		// Not wrapped: the transport's error would be shown instead.
		msg += " (" + err.Error() + ")"
	}
	return errors.New(msg)
}

// runInteractive is run with -i or -t: create, start and attach in one
// call, the output from its first byte.
func runInteractive(cmd *cobra.Command, c *clients, req *cairnv1.CreateRequest, f *stdioFlags) error {
	req.StdinOnce = f.interactive
	return attachSession(cmd, c, &cairnv1.AttachStart{Run: req, Stdin: f.interactive, DetachKeys: f.detachKeys}, f.tty, f.interactive && req.AutoRemove)
}

func attachCmd(c *clients) *cobra.Command {
	var noStdin bool
	var keys string
	cmd := &cobra.Command{
		Use:   "attach [--no-stdin] [--detach-keys KEYS] ID|NAME",
		Short: "Attach this terminal to a running container's input and output",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := c.Containers.Get(cmd.Context(), connect.NewRequest(&cairnv1.GetRequest{Id: args[0]}))
			if err != nil {
				return err
			}
			ctr := res.Msg.Container
			stdin := !noStdin && ctr.OpenStdin
			return attachSession(cmd, c, &cairnv1.AttachStart{Id: ctr.Id, Stdin: stdin, DetachKeys: keys}, ctr.Tty, false)
		},
	}
	cmd.Flags().BoolVar(&noStdin, "no-stdin", false, "do not pass this terminal's input")
	cmd.Flags().StringVar(&keys, "detach-keys", defaultDetachKeys, "keys that detach, leaving the container running (\"\": none)")
	return cmd
}

// attachSession runs an Attach stream to its end: the exit code of the
// container, or nothing after a detach.
func attachSession(cmd *cobra.Command, c *clients, start *cairnv1.AttachStart, tty, _ bool) error {
	ctx, cancel := context.WithCancel(cmd.Context())
	defer cancel()
	t, err := openTerminal(tty && start.Stdin)
	if err != nil {
		return err
	}
	defer t.restore()
	defer restoreOnSignal(t, cancel)()
	if tty {
		start.Size = t.size()
	}
	stream := c.Containers.Attach(ctx)
	defer func() { _ = stream.CloseResponse() }()
	if err := stream.Send(&cairnv1.AttachRequest{Start: start}); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	cl := &client{
		stdin:  func(b []byte) error { return stream.Send(&cairnv1.AttachRequest{Stdin: b}) },
		eof:    func() error { return stream.Send(&cairnv1.AttachRequest{CloseStdin: true}) },
		resize: func(sz *cairnv1.TerminalSize) error { return stream.Send(&cairnv1.AttachRequest{Resize: sz}) },
	}
	out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
	started := false
	for {
		msg, err := stream.Receive()
		if err != nil {
			if !started {
				if errors.Is(err, io.EOF) {
					err = errDaemonGone("the container", nil)
				}
				return err
			}
			return errDaemonGone("the container", err)
		}
		switch {
		case msg.Container != nil && !started:
			started = true
			if start.Stdin {
				cl.pumpStdin(os.Stdin)
			}
			if tty {
				defer cl.followSize(t)()
			} else if start.Run != nil {
				defer forwardSignals(ctx, c, msg.Container.Id)()
			}
		case msg.Detached:
			t.restore()
			return nil
		case msg.Exit != nil:
			t.restore()
			return exitStatus(cmd, msg.Exit)
		}
		if len(msg.Stdout) > 0 {
			if _, err := out.Write(msg.Stdout); err != nil {
				return err
			}
		}
		if len(msg.Stderr) > 0 {
			if _, err := errOut.Write(msg.Stderr); err != nil {
				return err
			}
		}
	}
}

func execCmd(c *clients) *cobra.Command {
	var interactive, tty, detach bool
	var user, workdir, keys string
	var env []string
	cmd := &cobra.Command{
		Use:   "exec [-i] [-t] [-d] [-u USER] [-w DIR] [-e K=V] ID|NAME CMD [ARG...]",
		Short: "Run a command in a running container and exit with its code (126: not executable, 127: not found)",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			start := &cairnv1.ExecStart{Container: args[0], Command: args[1:], Env: env, User: user, Workdir: workdir,
				Tty: tty, Stdin: interactive && !detach, Detach: detach, DetachKeys: keys}
			return execSession(cmd, c, start)
		},
	}
	cmd.Flags().BoolVarP(&interactive, "interactive", "i", false, "pass this terminal's input to the command")
	cmd.Flags().BoolVarP(&tty, "tty", "t", false, "give the command a pseudo-terminal")
	cmd.Flags().BoolVarP(&detach, "detach", "d", false, "start it in the background and print the exec session's id")
	cmd.Flags().StringVarP(&user, "user", "u", "", "user to run as: name, uid, uid:gid or name:group, looked up in the container")
	cmd.Flags().StringVarP(&workdir, "workdir", "w", "", "working directory inside the container (absolute)")
	cmd.Flags().StringArrayVarP(&env, "env", "e", nil, "set an environment variable (KEY=VALUE)")
	cmd.Flags().StringVar(&keys, "detach-keys", defaultDetachKeys, "keys that detach, leaving the command running (\"\": none)")
	cmd.Flags().SetInterspersed(false)
	cmd.AddCommand(execInspectCmd(c))
	return cmd
}

func execInspectCmd(c *clients) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [--format json|TEMPLATE] EXEC_ID...",
		Short: "Show exec sessions as the journal has them (a JSON array)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return inspectEach(cmd, args, format, func(id string) (protoreflect.ProtoMessage, error) {
				res, err := c.Containers.ExecInspect(cmd.Context(), connect.NewRequest(&cairnv1.ExecInspectRequest{Id: id}))
				if err != nil {
					return nil, err
				}
				return res.Msg.Session, nil
			})
		},
	}
	cmd.Flags().StringVar(&format, "format", "json", "json (an indented array) or a Go template for each session")
	return cmd
}

// execSession runs an Exec stream to its end.
func execSession(cmd *cobra.Command, c *clients, start *cairnv1.ExecStart) error {
	ctx, cancel := context.WithCancel(cmd.Context())
	defer cancel()
	t, err := openTerminal(start.Tty && start.Stdin)
	if err != nil {
		return err
	}
	defer t.restore()
	defer restoreOnSignal(t, cancel)()
	if start.Tty {
		start.Size = t.size()
	}
	stream := c.Containers.Exec(ctx)
	defer func() { _ = stream.CloseResponse() }()
	if err := stream.Send(&cairnv1.ExecRequest{Start: start}); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	cl := &client{
		stdin:  func(b []byte) error { return stream.Send(&cairnv1.ExecRequest{Stdin: b}) },
		eof:    func() error { return stream.Send(&cairnv1.ExecRequest{CloseStdin: true}) },
		resize: func(sz *cairnv1.TerminalSize) error { return stream.Send(&cairnv1.ExecRequest{Resize: sz}) },
	}
	out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
	var session *cairnv1.ExecSession
	for {
		msg, err := stream.Receive()
		if err != nil {
			if session == nil {
				if errors.Is(err, io.EOF) {
					err = errDaemonGone("the exec session", nil)
				}
				return err
			}
			t.restore()
			return fmt.Errorf("%w (see: cairn exec inspect %s)", errDaemonGone("exec session "+session.Id[:12], err), session.Id[:12])
		}
		switch {
		case msg.Session != nil && session == nil:
			session = msg.Session
			if start.Detach {
				fmt.Fprintln(out, session.Id)
				return nil
			}
			if start.Stdin {
				cl.pumpStdin(os.Stdin)
			}
			if start.Tty {
				defer cl.followSize(t)()
			}
		case msg.Detached:
			t.restore()
			return nil
		case msg.Exit != nil:
			t.restore()
			if msg.Exit.ExitCode == nil {
				fmt.Fprintf(errOut, "exit code unknown: %s\n", msg.Exit.ExitReason)
				return exitError{code: unknownExitStatus}
			}
			if code := *msg.Exit.ExitCode; code != 0 {
				return exitError{code: int(code)}
			}
			return nil
		}
		if len(msg.Stdout) > 0 {
			if _, err := out.Write(msg.Stdout); err != nil {
				return err
			}
		}
		if len(msg.Stderr) > 0 {
			if _, err := errOut.Write(msg.Stderr); err != nil {
				return err
			}
		}
	}
}

func topCmd(c *clients) *cobra.Command {
	return &cobra.Command{
		Use:   "top ID|NAME",
		Short: "List a running container's processes",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := c.Containers.Top(cmd.Context(), connect.NewRequest(&cairnv1.TopRequest{Id: args[0]}))
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "PID\tPPID\tUID\tSTAT\tCMD")
			for _, p := range res.Msg.Processes {
				uid := strconv.FormatInt(p.Uid, 10)
				if p.Uid < 0 {
					uid = "?"
				}
				fmt.Fprintf(w, "%d\t%d\t%s\t%s\t%s\n", p.Pid, p.Ppid, uid, p.State, strings.Join(p.Args, " "))
			}
			return w.Flush()
		},
	}
}

// waitCondition reads wait's --condition.
func waitCondition(s string) (cairnv1.WaitCondition, error) {
	switch s {
	case "", "not-running":
		return cairnv1.WaitCondition_WAIT_CONDITION_NOT_RUNNING, nil
	case "next-exit":
		return cairnv1.WaitCondition_WAIT_CONDITION_NEXT_EXIT, nil
	case "removed":
		return cairnv1.WaitCondition_WAIT_CONDITION_REMOVED, nil
	}
	return 0, fmt.Errorf("--condition %q: want not-running, next-exit or removed", s)
}
