package executor

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cairn-run/cairn/internal/crilog"
)

// The shim holds the stdio of every process of its container: the init's
// and each exec session's. Output is read by one copier per stream (stdout
// and stderr, or a terminal's master), which hands it to the log, if the
// process has one (the init), and to every attached client. An attached
// client gets everything, in order, and can hold the process up (a pipe
// does the same); the log never can (see shimlog.go). Input from attached
// clients goes to the process's stdin: a pipe, or the terminal.

// copyBuffer is the size of one read of a process's output.
const copyBuffer = 32 << 10

// hubStream is one output stream of a process.
type hubStream struct {
	name  string // crilog.Stdout or crilog.Stderr
	frame byte   // frameStdout or frameStderr
	f     *os.File
}

// stdioHub is the shim's end of one process's stdio.
type stdioHub struct {
	tty     bool
	master  *os.File // tty: the terminal's master, output and input
	streams []hubStream
	// stdin is where attached input goes: the write end of the stdin pipe,
	// or the master; nil when the process's stdin is not open.
	stdin     *os.File
	stdinOnce bool // the first client to end its input ends the process's
	log       *logSink
	fan       fanout

	stdinMu     sync.Mutex
	stdinClosed bool

	copiers sync.WaitGroup
	mu      sync.Mutex
	started bool
	ended   int           // streams that reached their end
	done    chan struct{} // closed once every stream reached its end
}

func newStdioHub() *stdioHub { return &stdioHub{done: make(chan struct{})} }

// pollable makes f non-blocking, so that reads honour deadlines (the
// copiers are stopped that way before the shim re-executes itself).
func pollable(f *os.File, name string) (*os.File, error) {
	fd, err := unix.Dup(int(f.Fd()))
	if err != nil {
		return nil, fmt.Errorf("dup %s: %w", name, err)
	}
	unix.CloseOnExec(fd)
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	_ = f.Close()
	return os.NewFile(uintptr(fd), name), nil
}

// start starts the copiers (once).
func (h *stdioHub) start() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.started {
		return
	}
	h.started = true
	if len(h.streams) == 0 {
		h.finishLocked()
		return
	}
	for _, s := range h.streams {
		h.copiers.Add(1)
		go h.copy(s)
	}
}

func (h *stdioHub) copy(s hubStream) {
	defer h.copiers.Done()
	buf := make([]byte, copyBuffer)
	for {
		n, err := s.f.Read(buf)
		if n > 0 {
			if h.log != nil {
				h.log.add(s.name, time.Now(), buf[:n])
			}
			h.fan.write(s.frame, buf[:n])
		}
		if err == nil {
			continue
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return // paused (see pause); the stream goes on elsewhere
		}
		// EOF of a pipe, EIO of a terminal whose last user went: the
		// stream is over.
		h.mu.Lock()
		h.ended++
		if h.ended == len(h.streams) {
			h.finishLocked()
		}
		h.mu.Unlock()
		return
	}
}

func (h *stdioHub) finishLocked() {
	select {
	case <-h.done:
		return
	default:
	}
	close(h.done)
	h.fan.end()
}

// outputDone is closed once the process's output is over (every attached
// client has been sent everything and the end).
func (h *stdioHub) outputDone() <-chan struct{} { return h.done }

// writeStdin passes input on to the process.
func (h *stdioHub) writeStdin(p []byte) error {
	h.stdinMu.Lock()
	defer h.stdinMu.Unlock()
	if h.stdin == nil || h.stdinClosed {
		return errStdinClosed
	}
	_, err := h.stdin.Write(p)
	return err
}

var errStdinClosed = errors.New("stdin is not open")

// endInput is a client's end of input. Only with stdinOnce does it end the
// process's input: the pipe is closed, a terminal gets an end-of-file
// character (its master is the output too).
func (h *stdioHub) endInput() {
	h.stdinMu.Lock()
	defer h.stdinMu.Unlock()
	if !h.stdinOnce || h.stdin == nil || h.stdinClosed {
		return
	}
	if h.tty {
		_, _ = h.stdin.Write([]byte{4}) // VEOF, ^D
		return
	}
	_ = h.stdin.Close()
	h.stdinClosed = true
}

// resize sets the terminal's size.
func (h *stdioHub) resize(rows, cols uint16) error {
	if !h.tty || h.master == nil {
		return errors.New("the process has no terminal")
	}
	raw, err := h.master.SyscallConn()
	if err != nil {
		return err
	}
	var ioErr error
	if err := raw.Control(func(fd uintptr) {
		ioErr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols})
	}); err != nil {
		return err
	}
	return ioErr
}

// pause stops the copiers where they are (output waits in the pipes or
// the terminal) and flushes the log; it returns once they have stopped.
// The shim then hands its fds to its re-executed self.
func (h *stdioHub) pause() {
	for _, s := range h.streams {
		_ = s.f.SetReadDeadline(time.Unix(1, 0))
	}
	h.copiers.Wait()
	if h.log != nil {
		h.log.close()
	}
}

// resume undoes a pause after a re-execution that did not happen.
func (h *stdioHub) resume(log *logSink) {
	h.log = log
	h.mu.Lock()
	h.started = false
	h.mu.Unlock()
	for _, s := range h.streams {
		_ = s.f.SetReadDeadline(time.Time{})
	}
	h.start()
}

// openStreams are the streams that have not reached their end, for the
// handover to a re-executed shim.
func (h *stdioHub) openStreams() []hubStream {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ended == len(h.streams) {
		return nil
	}
	return h.streams // a paused copier has not ended its stream
}

// close releases the hub's fds once the process is gone.
func (h *stdioHub) close() {
	for _, s := range h.streams {
		_ = s.f.Close()
	}
	h.stdinMu.Lock()
	if h.stdin != nil && !h.stdinClosed && h.stdin != h.master {
		_ = h.stdin.Close()
	}
	h.stdinClosed = true
	h.stdinMu.Unlock()
}

// fanout passes output to the attached clients. A client that cannot be
// written to any more (it hung up) is dropped; one that reads slowly slows
// the output down for everybody, as a pipe would.
type fanout struct {
	mu    sync.Mutex
	subs  map[*subscriber]struct{}
	ended bool
}

type subscriber struct {
	conn net.Conn
	mu   sync.Mutex // one frame at a time
	dead bool
}

func (s *subscriber) send(typ byte, p []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dead {
		return false
	}
	if err := writeFrame(s.conn, typ, p); err != nil {
		s.dead = true
		return false
	}
	return true
}

// add attaches conn. ended says the output is already over: conn has been
// sent the end.
func (f *fanout) add(conn net.Conn) (sub *subscriber, ended bool) {
	sub = &subscriber{conn: conn}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ended {
		sub.send(frameEnd, nil)
		return sub, true
	}
	if f.subs == nil {
		f.subs = map[*subscriber]struct{}{}
	}
	f.subs[sub] = struct{}{}
	return sub, false
}

func (f *fanout) remove(sub *subscriber) {
	f.mu.Lock()
	delete(f.subs, sub)
	f.mu.Unlock()
	sub.mu.Lock()
	sub.dead = true
	sub.mu.Unlock()
}

// count is the number of attached clients.
func (f *fanout) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs)
}

func (f *fanout) snapshot() []*subscriber {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]*subscriber, 0, len(f.subs))
	for s := range f.subs {
		out = append(out, s)
	}
	return out
}

func (f *fanout) write(typ byte, p []byte) {
	for _, s := range f.snapshot() {
		if !s.send(typ, p) {
			f.remove(s)
		}
	}
}

// end sends every client the end of the output.
func (f *fanout) end() {
	f.mu.Lock()
	f.ended = true
	subs := make([]*subscriber, 0, len(f.subs))
	for s := range f.subs {
		subs = append(subs, s)
	}
	f.mu.Unlock()
	for _, s := range subs {
		s.send(frameEnd, nil)
	}
}

// serveInput reads a client's frames until it hangs up or ends: input
// goes to the process, resizes to its terminal. It returns when the client
// is gone.
func (h *stdioHub) serveInput(r io.Reader, stdin bool) {
	buf := make([]byte, copyBuffer)
	for {
		typ, payload, err := readFrame(r, buf)
		if err != nil {
			return
		}
		switch typ {
		case frameStdin:
			if stdin {
				if err := h.writeStdin(payload); err != nil && !errors.Is(err, errStdinClosed) && !errors.Is(err, syscall.EPIPE) {
					return
				}
			}
		case frameCloseStdin:
			if stdin {
				h.endInput()
			}
		case frameResize:
			if rows, cols, ok := parseResize(payload); ok {
				_ = h.resize(rows, cols)
			}
		}
	}
}

// initStdio prepares the stdio of a container's init for libcontainer:
// what the process gets (child*, console) and what the shim keeps (the
// hub). Without a terminal its output goes to two pipes; with one the
// init allocates it and sends the master back over consoleSocket.
type initStdio struct {
	hub                         *stdioHub
	childIn, childOut, childErr *os.File
	consoleChild, consoleParent *os.File
	closeAfterStart             []*os.File
}

func newProcessStdio(tty, openStdin, stdinOnce bool) (_ *initStdio, retErr error) {
	st := &initStdio{hub: newStdioHub()}
	st.hub.tty, st.hub.stdinOnce = tty, stdinOnce
	defer func() {
		if retErr != nil {
			st.closeAll()
		}
	}()
	if tty {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("console socket: %w", err)
		}
		st.consoleParent, st.consoleChild = os.NewFile(uintptr(fds[0]), "console-parent"), os.NewFile(uintptr(fds[1]), "console-child")
		st.closeAfterStart = append(st.closeAfterStart, st.consoleChild)
		return st, nil
	}
	if openStdin {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		st.childIn = r
		st.closeAfterStart = append(st.closeAfterStart, r)
		if st.hub.stdin, err = pollable(w, "stdin"); err != nil {
			return nil, err
		}
	} else {
		devnull, err := os.Open(os.DevNull)
		if err != nil {
			return nil, err
		}
		st.childIn = devnull
		st.closeAfterStart = append(st.closeAfterStart, devnull)
	}
	for _, s := range []struct {
		name  string
		frame byte
		child **os.File
	}{{crilog.Stdout, frameStdout, &st.childOut}, {crilog.Stderr, frameStderr, &st.childErr}} {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		*s.child = w
		st.closeAfterStart = append(st.closeAfterStart, w)
		pr, err := pollable(r, s.name)
		if err != nil {
			return nil, err
		}
		st.hub.streams = append(st.hub.streams, hubStream{name: s.name, frame: s.frame, f: pr})
	}
	return st, nil
}

// afterStart closes the process's ends and, with a terminal, receives its
// master. openStdin says whether attached input may reach the terminal.
func (st *initStdio) afterStart(openStdin bool) error {
	for _, f := range st.closeAfterStart {
		_ = f.Close()
	}
	st.closeAfterStart = nil
	if st.consoleParent == nil {
		return nil
	}
	defer st.consoleParent.Close()
	master, err := recvMaster(st.consoleParent)
	if err != nil {
		return err
	}
	if master, err = pollable(master, "pty-master"); err != nil {
		return err
	}
	st.hub.master = master
	st.hub.streams = []hubStream{{name: crilog.Stdout, frame: frameStdout, f: master}}
	if openStdin {
		st.hub.stdin = master
	}
	return nil
}

// closeAll releases everything, for a start that failed.
func (st *initStdio) closeAll() {
	for _, f := range st.closeAfterStart {
		_ = f.Close()
	}
	if st.consoleParent != nil {
		_ = st.consoleParent.Close()
	}
	st.hub.close()
	if st.hub.master != nil {
		_ = st.hub.master.Close()
	}
}

// recvMaster receives the terminal master libcontainer's init sends over
// the console socket.
func recvMaster(sock *os.File) (*os.File, error) {
	name := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(int(sock.Fd()), name, oob, 0)
	if err != nil {
		return nil, fmt.Errorf("receive terminal: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, fmt.Errorf("receive terminal: no control message (%v)", err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return nil, fmt.Errorf("receive terminal: no fd (%v)", err)
	}
	unix.CloseOnExec(fds[0])
	return os.NewFile(uintptr(fds[0]), string(name[:n])), nil
}
