package drill

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"connectrpc.com/grpchealth"

	"github.com/cairn-run/cairn/internal/apiclient"
)

// daemonProc is the drill's own cairnd: started, killed and restarted on
// the same root, socket and cgroup parent.
type daemonProc struct {
	bin          string
	root, socket string
	// net is the daemon's own networking: the default network is a bridge
	// of the drill's (a run directory, a bridge name and a /24 of its own).
	net          drillNet
	cgroupParent string
	logPath      string
	clients      apiclient.Clients
	health       *grpchealth.Client

	cmd     *exec.Cmd
	done    chan struct{} // closed once the process is reaped
	waitErr error
}

func newDaemonProc(bin, root, socket, cgroupParent, logPath string) *daemonProc {
	clients := apiclient.New(socket)
	return &daemonProc{
		bin: bin, root: root, socket: socket, cgroupParent: cgroupParent, logPath: logPath,
		clients: clients, health: grpchealth.NewClient(clients.HTTP, apiclient.BaseURL),
	}
}

// serveTimeout is how long a start may take before the drill gives up on
// the daemon.
const serveTimeout = 30 * time.Second

// start runs cairnd and waits until its health check says SERVING, which
// it does only once recovery is done; it returns the time from the start of
// the process until then.
func (d *daemonProc) start(ctx context.Context) (time.Duration, error) {
	logFile, err := os.OpenFile(d.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, fmt.Errorf("daemon log: %w", err)
	}
	defer logFile.Close()
	// --config=: the machine's cairnd.json is for its own daemon, not the
	// drill's scratch one (its listeners would clash, for one).
	args := []string{"--config=", "--root", d.root, "--socket", d.socket, "--cgroup-parent", d.cgroupParent, "--metrics-addr", ""}
	if d.net.runDir != "" {
		args = append(args, "--default-network", "bridge", "--net-run-dir", d.net.runDir, "--bridge", d.net.bridge, "--bridge-subnet", d.net.subnet)
	}
	cmd := exec.Command(d.bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own process group: a Ctrl-C meant for the drill must not reach
	// the daemon, the drill stops it during its cleanup.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	begin := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start %s: %w", d.bin, err)
	}
	d.cmd, d.done, d.waitErr = cmd, make(chan struct{}), nil
	go func() {
		d.waitErr = cmd.Wait()
		close(d.done)
	}()
	deadline := time.After(serveTimeout)
	for {
		checkCtx, cancel := context.WithTimeout(ctx, time.Second)
		res, err := d.health.Check(checkCtx, &grpchealth.CheckRequest{})
		cancel()
		if err == nil && res.Status == grpchealth.StatusServing {
			return time.Since(begin), nil
		}
		select {
		case <-d.done:
			return 0, fmt.Errorf("cairnd exited before serving: %v\n%s", d.waitErr, d.logTail(20))
		case <-deadline:
			return 0, fmt.Errorf("cairnd not SERVING after %s (last check: %v)\n%s", serveTimeout, describeHealth(res, err), d.logTail(20))
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// serving reports whether the daemon says SERVING now.
func (d *daemonProc) serving() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	res, err := d.health.Check(ctx, &grpchealth.CheckRequest{})
	return err == nil && res.Status == grpchealth.StatusServing
}

func describeHealth(res *grpchealth.CheckResponse, err error) string {
	if err != nil {
		return err.Error()
	}
	return res.Status.String()
}

// running reports whether the daemon process is alive.
func (d *daemonProc) running() bool {
	if d.cmd == nil {
		return false
	}
	select {
	case <-d.done:
		return false
	default:
		return true
	}
}

func (d *daemonProc) pid() int {
	if !d.running() {
		return 0
	}
	return d.cmd.Process.Pid
}

// errExitedEarly says the daemon was already dead when the drill meant to
// kill it.
var errExitedEarly = errors.New("cairnd exited on its own")

// kill crashes the daemon with SIGKILL and reaps it.
func (d *daemonProc) kill() error {
	if !d.running() {
		if d.cmd == nil {
			return nil
		}
		return fmt.Errorf("%w: %v", errExitedEarly, d.waitErr)
	}
	_ = d.cmd.Process.Signal(syscall.SIGKILL)
	<-d.done
	return nil
}

// stop shuts the daemon down with SIGTERM, then SIGKILL after the grace.
func (d *daemonProc) stop(grace time.Duration) {
	if !d.running() {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(grace):
		_ = d.kill()
	}
}

// logTail returns the last lines of the daemon's log.
func (d *daemonProc) logTail(lines int) string {
	data, err := os.ReadFile(d.logPath)
	if err != nil {
		return "(no daemon log: " + err.Error() + ")"
	}
	all := strings.Split(string(bytes.TrimRight(data, "\n")), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return "--- tail of " + d.logPath + "\n" + strings.Join(all, "\n")
}
