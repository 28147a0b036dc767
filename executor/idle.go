package executor

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/cairn-run/cairn/internal/crilog"

	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"
)

// A shim idles for as long as its container runs, one per container, so its
// memory is the cost of a container at rest. Creating the container leaves
// the shim's Go heap and runtime holding more than waiting needs
// (libcontainer's configuration, JSON buffers, spans that a few live objects
// keep, runtime metadata sized for that work), and FreeOSMemory gives little
// of it back. So once a container has run for reexecDelay, its shim
// re-executes itself (the same sealed binary, through /proc/self/exe) into
// a fresh process image that only waits, with about a third less private
// memory.
//
// execve(2) keeps what the wait needs: the PID and start time (the daemon's
// handle and shim.json stay valid), the container's init as an unreaped
// child (the shim waits for it without reaping until then), the
// child-subreaper flag, the OOM score, the session and the shim log on fd
// 2. The listening socket and the init's stdio (its output pipes or
// terminal master, its stdin) are handed over as inherited fds: clients
// that connect meanwhile wait in the backlog, and output waits in the pipes
// while the copiers are stopped (the log is flushed and closed first, and
// reopened by the new image); connections already accepted are closed by
// the execve, and their clients ask again (see callShim). The shim
// re-executes only while nothing is attached and no exec session exists
// (both live in this image's memory), and takes its busy lock first, so no
// request is half-way; otherwise it tries again reexecDelay later. The rest
// of what the new image needs comes in idleStateEnv. The execve is made
// from the main thread (see init.go).
//
// Between the execve and the new image's signal.Notify (a few
// milliseconds, once per container), SIGTERM would kill the shim and lose
// the exit code, as SIGKILL does at any time; SIGINT and SIGHUP stay
// ignored across the execve.

// idleStateEnv carries an idleState (JSON) to the re-executed shim. The shim
// execs only itself, so both sides are the same build and the state needs no
// versioning.
const idleStateEnv = "_CAIRN_SHIM_IDLE"

// idleState is what the re-executed shim takes over.
type idleState struct {
	ID            string `json:"id"`
	Dir           string `json:"dir"`
	Runtime       string `json:"runtime"`
	CgroupParent  string `json:"cgroup_parent"`
	PID           int    `json:"pid"`
	StartTime     uint64 `json:"start_time"`
	ShimStartTime uint64 `json:"shim_start_time"`
	// ListenFD is the inherited fd of the shim socket's listener.
	ListenFD int    `json:"listen_fd"`
	Rootfs   string `json:"rootfs"`
	// The init's stdio: the output streams still open (a terminal's
	// master is the stdout stream), stdin (-1: none; StdinIsMaster: the
	// master), and the log.
	TTY           bool           `json:"tty"`
	Streams       []handedStream `json:"streams"`
	StdinFD       int            `json:"stdin_fd"`
	StdinIsMaster bool           `json:"stdin_is_master"`
	StdinOnce     bool           `json:"stdin_once"`
	StdinClosed   bool           `json:"stdin_closed"`
	LogMaxSize    int64          `json:"log_max_size"`
	LogMaxFiles   int            `json:"log_max_files"`
	LogDropped    int64          `json:"log_dropped"`
}

// handedStream is an output stream's inherited fd.
type handedStream struct {
	Name string `json:"name"`
	FD   int    `json:"fd"`
}

// errShimBusy says the shim cannot re-execute now: something lives in its
// memory that the new image would not have.
var errShimBusy = errors.New("shim busy: an exec session or an attached client")

// shimGOMAXPROCS is the GOMAXPROCS of every shim (and so of libcontainer's
// init stub, which inherits it): a shim runs one container and mostly
// waits, and each extra P can mean another thread with its own stack.
const shimGOMAXPROCS = "1"

// shimEnv returns env for a shim: GOMAXPROCS as above, and no memory
// profiling, whose samples each touch a page of a large hash table.
func shimEnv(env []string) []string {
	env = withEnv(env, "GOMAXPROCS", shimGOMAXPROCS)
	godebug := "memprofilerate=0"
	if v := os.Getenv("GODEBUG"); v != "" {
		godebug = v + "," + godebug // a later setting wins
	}
	return withEnv(env, "GODEBUG", godebug)
}

// withEnv returns env with key set to value, replacing any earlier setting
// (a process reads the first one).
func withEnv(env []string, key, value string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, key+"=") {
			out = append(out, kv)
		}
	}
	return append(out, key+"="+value)
}

// reexec replaces this process with a fresh image of the same binary that
// serves s until the container exits. It returns only if it could not, with
// this process serving as before; errShimBusy when it should try later.
func (s *shim) reexec() error {
	if s.ln == nil {
		return errors.New("no listener to hand over")
	}
	if !s.busy.TryLock() {
		return errShimBusy
	}
	defer s.busy.Unlock()
	s.mu.Lock()
	sessions := len(s.execs)
	s.mu.Unlock()
	awaiting := false
	if s.firstAttach != nil {
		select {
		case <-s.firstAttach:
		default:
			awaiting = true
		}
	}
	if sessions > 0 || awaiting || s.io.fan.count() > 0 {
		return errShimBusy
	}
	lnFD, err := dupListener(s.ln)
	if err != nil {
		return err
	}
	defer unix.Close(lnFD)
	st := idleState{
		ID: s.o.id, Dir: s.o.dir, Runtime: s.o.runtime, CgroupParent: s.o.cgroupParent,
		PID: s.pid, StartTime: s.startTime, ShimStartTime: s.shimStartTime, ListenFD: lnFD,
		Rootfs: s.o.rootfs, TTY: s.io.tty, StdinFD: -1, StdinOnce: s.o.stdinOnce,
		LogMaxSize: s.o.logMaxSize, LogMaxFiles: s.o.logMaxFiles,
	}
	dropped := int64(0)
	if s.io.log != nil {
		dropped = s.io.log.droppedBytes()
	}
	st.LogDropped = dropped
	s.io.pause()
	var handed []int
	defer func() {
		for _, fd := range handed {
			unix.Close(fd)
		}
	}()
	handOver := func(f *os.File) (int, error) {
		fd, err := dupInheritable(f)
		if err == nil {
			handed = append(handed, fd)
		}
		return fd, err
	}
	err = func() error {
		for _, hs := range s.io.openStreams() {
			fd, err := handOver(hs.f)
			if err != nil {
				return err
			}
			st.Streams = append(st.Streams, handedStream{Name: hs.name, FD: fd})
		}
		s.io.stdinMu.Lock()
		defer s.io.stdinMu.Unlock()
		st.StdinClosed = s.io.stdinClosed
		switch {
		case s.io.stdin == nil || s.io.stdinClosed:
		case s.io.stdin == s.io.master:
			st.StdinIsMaster = true
		default:
			fd, err := handOver(s.io.stdin)
			if err != nil {
				return err
			}
			st.StdinFD = fd
		}
		data, err := json.Marshal(st)
		if err != nil {
			return err
		}
		// An inherited SIG_IGN is kept by the new image's runtime until it
		// asks for these signals itself; a caught signal would revert to
		// the default, which kills.
		signal.Ignore(unix.SIGINT, unix.SIGHUP)
		defer signal.Notify(make(chan os.Signal, 1), unix.SIGINT, unix.SIGHUP)
		err = syscall.Exec("/proc/self/exe", os.Args, withEnv(os.Environ(), idleStateEnv, string(data)))
		return fmt.Errorf("exec /proc/self/exe: %w", err)
	}()
	// Still this image: the container's output goes on here.
	logs, lerr := newLogSink(filepath.Join(s.o.dir, logFileName), s.o.logMaxSize, s.o.logMaxFiles, dropped, s.log)
	if lerr != nil {
		s.log.Error("reopen the container log", "err", lerr)
		logs = nil
	}
	s.io.resume(logs)
	return err
}

// dupInheritable returns a duplicate of f's fd that stays open across exec.
func dupInheritable(f *os.File) (int, error) {
	raw, err := f.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd, dupErr := -1, error(nil)
	if err := raw.Control(func(ffd uintptr) {
		fd, dupErr = unix.FcntlInt(ffd, unix.F_DUPFD, 3)
	}); err != nil {
		return -1, err
	}
	if dupErr != nil {
		return -1, fmt.Errorf("dup %s: %w", f.Name(), dupErr)
	}
	return fd, nil
}

// dupListener returns a duplicate of ln's fd that stays open across exec.
func dupListener(ln *net.UnixListener) (int, error) {
	raw, err := ln.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd, dupErr := -1, error(nil)
	if err := raw.Control(func(lfd uintptr) {
		// F_DUPFD, unlike dup3 or F_DUPFD_CLOEXEC, leaves close-on-exec off.
		fd, dupErr = unix.FcntlInt(lfd, unix.F_DUPFD, 3)
	}); err != nil {
		return -1, err
	}
	if dupErr != nil {
		return -1, fmt.Errorf("dup listener: %w", dupErr)
	}
	return fd, nil
}

// runIdle is the re-executed shim: it serves the container described by the
// idleState in state until it has exited, and returns the process's exit
// status.
func runIdle(state string) int {
	signal.Notify(make(chan os.Signal, 1), unix.SIGTERM, unix.SIGINT, unix.SIGHUP)
	_ = os.Unsetenv(idleStateEnv)
	var st idleState
	if err := json.Unmarshal([]byte(state), &st); err != nil || st.PID <= 0 {
		// Written by this very binary, so this cannot happen; if it did,
		// there would be nothing to wait for, and the daemon would find the
		// init without a shim.
		fmt.Fprintf(os.Stderr, "shim: unusable idle state %q: %v\n", state, err)
		return 1
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("container", st.ID)
	ln, err := inheritedListener(st.ListenFD)
	if err != nil {
		// Waiters then fall back to exit.json, which is still written.
		log.Error("take over the shim socket", "err", err)
	}
	o := shimOptions{id: st.ID, dir: st.Dir, runtime: st.Runtime, cgroupParent: st.CgroupParent,
		rootfs: st.Rootfs, stdinOnce: st.StdinOnce, logMaxSize: st.LogMaxSize, logMaxFiles: st.LogMaxFiles}
	s := newShim(o, log, ln, st.PID, st.StartTime, st.ShimStartTime, startTimings{})
	s.io = inheritedStdio(st, log)
	logs, err := newLogSink(filepath.Join(o.dir, logFileName), o.logMaxSize, o.logMaxFiles, st.LogDropped, log)
	if err != nil {
		log.Error("reopen the container log", "err", err)
	} else {
		s.io.log = logs
	}
	s.io.start()
	return s.serve(log, true)
}

// inheritedStdio rebuilds the init's stdio hub from the fds handed over.
func inheritedStdio(st idleState, log *slog.Logger) *stdioHub {
	h := newStdioHub()
	h.tty, h.stdinOnce, h.stdinClosed = st.TTY, st.StdinOnce, st.StdinClosed
	file := func(fd int, name string) *os.File {
		unix.CloseOnExec(fd)
		if err := unix.SetNonblock(fd, true); err != nil {
			log.Warn("inherited fd", "name", name, "err", err)
		}
		return os.NewFile(uintptr(fd), name)
	}
	for _, hs := range st.Streams {
		frame := frameStdout
		if hs.Name == crilog.Stderr {
			frame = frameStderr
		}
		f := file(hs.FD, hs.Name)
		h.streams = append(h.streams, hubStream{name: hs.Name, frame: frame, f: f})
		if st.TTY {
			h.master = f
		}
	}
	switch {
	case st.StdinIsMaster:
		h.stdin = h.master
	case st.StdinFD >= 0:
		h.stdin = file(st.StdinFD, "stdin")
	}
	if len(st.Streams) == 0 {
		// Every stream had ended before the handover.
		h.mu.Lock()
		h.started = true
		h.finishLocked()
		h.mu.Unlock()
	}
	return h
}

// inheritedListener turns the inherited fd into the shim socket's listener.
func inheritedListener(fd int) (*net.UnixListener, error) {
	f := os.NewFile(uintptr(fd), "shim.sock")
	if f == nil {
		return nil, fmt.Errorf("listener fd %d is invalid", fd)
	}
	defer f.Close() // FileListener keeps a close-on-exec duplicate
	l, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("listener fd %d: %w", fd, err)
	}
	ul, ok := l.(*net.UnixListener)
	if !ok {
		_ = l.Close()
		return nil, fmt.Errorf("fd %d is a %T, not a unix listener", fd, l)
	}
	ul.SetUnlinkOnClose(false)
	return ul, nil
}

// waitExited blocks until child pid has exited, and leaves it to be reaped.
func waitExited(pid int) error {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// waitChild reaps child pid and returns its wait status.
func waitChild(pid int) (syscall.WaitStatus, error) {
	var ws syscall.WaitStatus
	for {
		_, err := syscall.Wait4(pid, &ws, 0, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return ws, fmt.Errorf("wait4 %d: %w", pid, err)
		}
		return ws, nil
	}
}

// destroyContainer removes the exited container's libcontainer state and
// cgroups, from the state on disk. Gone already is success.
func destroyContainer(o shimOptions) error {
	c, err := libcontainer.Load(o.runtime, o.id)
	if errors.Is(err, libcontainer.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return c.Destroy()
}
