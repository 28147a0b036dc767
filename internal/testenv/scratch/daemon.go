// Package scratch gives integration tests a scratch Cairn: a daemon,
// in-process or as the cairnd binary, on a fresh root, socket and cgroup
// parent with the busybox image imported, and a teardown that leaves no
// mount, cgroup, process or shim behind even when the test fails.
package scratch

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/internal/apiclient"
	"github.com/cairn-run/cairn/internal/daemon"
	"github.com/cairn-run/cairn/internal/testenv"
)

// Env is a scratch daemon for one test, in-process (Daemon) or a cairnd
// binary (Process).
type Env struct {
	apiclient.Clients
	Root, Socket, CgroupParent string
	Config                     daemon.Config
	Daemon                     *daemon.Daemon
	// Cairnd is the cairnd binary a binary daemon runs; "" is this tree's
	// (Binaries). Changing it between a Stop or Kill and the next Start
	// upgrades or downgrades the daemon on the same root.
	Cairnd      string
	Process     *os.Process
	processDone chan error
	binary      bool
	t           testing.TB
}

// Option changes the daemon's configuration before it starts.
type Option func(*daemon.Config)

// NewDaemon starts an in-process daemon on a fresh root, socket and cgroup
// parent, with the busybox image imported as "busybox". Teardown removes
// every container, stops the daemon and cleans the machine.
func NewDaemon(t testing.TB, opts ...Option) *Env {
	return newEnv(t, false, "", opts)
}

// NewBinaryDaemon is NewDaemon with the cairnd binary in a process of its
// own, for tests that signal or kill the daemon.
func NewBinaryDaemon(t testing.TB, opts ...Option) *Env {
	return newEnv(t, true, "", opts)
}

// NewBinaryDaemonOf is NewBinaryDaemon with the given cairnd binary, e.g.
// one built from an earlier commit; pass an Option setting ShimBinary to
// run that version's shims too.
func NewBinaryDaemonOf(t testing.TB, cairnd string, opts ...Option) *Env {
	return newEnv(t, true, cairnd, opts)
}

func newEnv(t testing.TB, binary bool, cairnd string, opts []Option) *Env {
	t.Helper()
	testenv.RequireRoot(t)
	_, cairn := testenv.Binaries(t)
	root, err := os.MkdirTemp("", "cairn-")
	if err != nil {
		t.Fatal(err)
	}
	e := &Env{Root: root, Socket: filepath.Join(root, "cairn.sock"), CgroupParent: "cairn-test-" + testenv.RandomHex(6), binary: binary, Cairnd: cairnd, t: t}
	e.Config = daemon.Config{
		Root: filepath.Join(root, "root"), Socket: e.Socket, ShimBinary: cairn, CgroupParent: e.CgroupParent,
		LiveRestore: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if testing.Verbose() {
		e.Config.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	for _, opt := range opts {
		opt(&e.Config)
	}
	e.Socket = e.Config.Socket // an option may move it
	t.Cleanup(e.teardown)
	e.Start()
	e.Clients = apiclient.New(e.Socket)
	e.ImportImage(testenv.BusyboxTar(t), "busybox")
	return e
}

// Start starts the daemon on the environment's root.
func (e *Env) Start() {
	e.t.Helper()
	if e.binary {
		e.startBinary()
		return
	}
	d, err := daemon.Start(e.Config)
	if err != nil {
		e.t.Fatal(err)
	}
	e.Daemon = d
}

// Stop stops the daemon: in-process as SIGTERM would, a binary with SIGTERM.
func (e *Env) Stop() {
	if e.Daemon != nil {
		e.Daemon.Stop(context.Background())
		e.Daemon = nil
	}
	e.signalBinary(syscall.SIGTERM)
}

// Kill kills a binary daemon with SIGKILL: a crash.
func (e *Env) Kill() {
	e.signalBinary(syscall.SIGKILL)
}

// Running reports whether a daemon is up.
func (e *Env) Running() bool { return e.Daemon != nil || e.Process != nil }

// StartWith starts the binary daemon with extra environment, e.g. a crash
// point (CAIRN_CRASH_AT=...). It does not wait for the daemon to serve:
// armed with a crash point, it may die before it does (see WaitServing).
func (e *Env) StartWith(env ...string) {
	e.t.Helper()
	e.launchBinary(env)
}

// WaitServing waits until the binary daemon answers, i.e. has recovered.
func (e *Env) WaitServing() {
	e.t.Helper()
	e.waitServing()
}

// WaitCrash waits until the binary daemon has died on its own (a crash
// point), and fails the test if it has not within timeout.
func (e *Env) WaitCrash(timeout time.Duration) {
	e.t.Helper()
	if e.Process == nil {
		e.t.Fatal("no daemon process to wait for")
	}
	select {
	case <-e.processDone:
		e.Process = nil
	case <-time.After(timeout):
		e.t.Fatalf("cairnd did not crash within %v", timeout)
	}
}

// Crashed reports whether the binary daemon has died on its own.
func (e *Env) Crashed() bool {
	if e.Process == nil {
		return false
	}
	select {
	case <-e.processDone:
		e.Process = nil
		return true
	default:
		return false
	}
}

func (e *Env) startBinary() {
	e.launchBinary(nil)
	e.waitServing()
}

func (e *Env) launchBinary(env []string) {
	cairnd := e.Cairnd
	args := []string{"--root", e.Config.Root, "--socket", e.Config.Socket, "--shim", e.Config.ShimBinary,
		"--cgroup-parent", e.Config.CgroupParent, "--metrics-addr", e.Config.MetricsAddr,
		fmt.Sprintf("--live-restore=%v", e.Config.LiveRestore)}
	if cairnd == "" {
		cairnd, _ = testenv.Binaries(e.t)
		// This tree's cairnd: not the machine's config file, and the
		// access settings of the test (older binaries know neither).
		a := e.Config.Access
		args = append(args, "--config=", "--group", a.Group, "--tls-addr", a.TLSAddr, "--tls-cert", a.TLSCert,
			"--tls-key", a.TLSKey, "--tls-ca", a.TLSCA, "--tcp-addr", a.TCPAddr, fmt.Sprintf("--insecure-tcp=%v", a.InsecureTCP))
	}
	cmd := exec.Command(cairnd, args...)
	cmd.Env = append(os.Environ(), env...)
	logFile, err := os.OpenFile(filepath.Join(e.Root, "cairnd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		e.t.Fatal(err)
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.Process = cmd.Process
	e.processDone = make(chan error, 1)
	go func() { e.processDone <- cmd.Wait() }()
}

// waitServing waits until the binary daemon answers, i.e. has recovered.
func (e *Env) waitServing() {
	clients := apiclient.New(e.Socket)
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := clients.Images.List(context.Background(), connect.NewRequest(&cairnv1.ImageServiceListRequest{}))
		if err == nil {
			return
		}
		select {
		case werr := <-e.processDone:
			e.Process = nil
			log, _ := os.ReadFile(filepath.Join(e.Root, "cairnd.log"))
			e.t.Fatalf("cairnd exited: %v\n%s", werr, log)
		default:
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("cairnd did not serve within 30s: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (e *Env) signalBinary(sig syscall.Signal) {
	if e.Process == nil {
		return
	}
	_ = e.Process.Signal(sig)
	select {
	case <-e.processDone:
	case <-time.After(30 * time.Second):
		_ = e.Process.Kill()
		<-e.processDone
	}
	e.Process = nil
}

// Restart stops and starts the daemon on the same root.
func (e *Env) Restart() {
	e.Stop()
	e.Start()
}

// ImportImage imports a tar through the API.
func (e *Env) ImportImage(tarPath, name string) {
	e.t.Helper()
	f, err := os.Open(tarPath)
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	if _, err := apiclient.ImportImage(context.Background(), e.Images, name, f); err != nil {
		e.t.Fatalf("import %s: %v", tarPath, err)
	}
}

// teardown removes what the test left: containers through the API, then
// anything still on the machine, so one failing test cannot break the next.
func (e *Env) teardown() {
	if e.Running() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if res, err := e.Containers.List(ctx, connect.NewRequest(&cairnv1.ListRequest{All: true})); err == nil {
			for _, c := range res.Msg.Containers {
				_, _ = e.Containers.Remove(ctx, connect.NewRequest(&cairnv1.RemoveRequest{Id: c.Id, Force: true}))
			}
		}
		cancel()
		e.Stop()
	}
	// After every container was removed and the daemon stopped, anything
	// left is a leak of the code under test.
	for _, leak := range testenv.Scrub(e.Root, e.CgroupParent) {
		e.t.Errorf("leak after teardown: %s", leak)
	}
	_ = os.RemoveAll(e.Root)
}

// Log returns what the binary daemon wrote to its log so far.
func (e *Env) Log() string {
	data, _ := os.ReadFile(filepath.Join(e.Root, "cairnd.log"))
	return string(data)
}
