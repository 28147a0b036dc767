package drill

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"connectrpc.com/connect"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/internal/apiclient"
)

// registryProc is the drill's own registry: Debian's docker-registry on
// 127.0.0.1 with a config and storage in the drill's scratch directory,
// which the drill's images are pushed to once and pulled from among the
// other operations (so that some crashes find a pull in flight). Without
// docker-registry installed the drill runs without pulls.
type registryProc struct {
	host string
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

// startRegistry starts the registry, or returns nil when docker-registry
// is not installed.
func (r *run) startRegistry(ctx context.Context) (*registryProc, error) {
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		return nil, nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	host := l.Addr().String()
	l.Close()
	// Outside the drill's scratch directory: every process naming that
	// one is the daemon's, and the leak checks count it.
	dir, err := os.MkdirTemp("", "cairn-drill-registry-")
	if err != nil {
		return nil, err
	}
	config := fmt.Sprintf("version: 0.1\nlog: {level: error, accesslog: {disabled: true}}\nstorage: {filesystem: {rootdirectory: %s}}\nhttp: {addr: %s}\n",
		filepath.Join(dir, "data"), host)
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(config), 0o600); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "serve", filepath.Join(dir, "config.yml"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	p := &registryProc{host: host, dir: dir, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	for deadline := time.Now().Add(15 * time.Second); ; {
		if resp, err := http.Get("http://" + host + "/v2/"); err == nil {
			resp.Body.Close()
			return p, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			p.stop()
			return nil, fmt.Errorf("drill: docker-registry did not answer on %s", host)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *registryProc) stop() {
	if p == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	os.RemoveAll(p.dir)
}

// remoteName is the name of drill image name in the registry.
func (p *registryProc) remoteName(name string) string { return p.host + "/" + name }

// pushImages pushes the drill's images to its registry once, under their
// registry names, which are then removed from the store again: a pull
// gives them back.
func (r *run) pushImages(ctx context.Context) error {
	if r.registry == nil {
		return nil
	}
	images := r.daemon.clients.Images
	for _, img := range r.ops.archives {
		remote := r.registry.remoteName(img.name)
		if _, err := images.Tag(ctx, connect.NewRequest(&cairnv1.ImageServiceTagRequest{Source: img.name, Target: remote})); err != nil {
			return fmt.Errorf("drill: tag for the registry: %w", err)
		}
		if _, err := apiclient.PushImage(ctx, images, &cairnv1.ImageServicePushRequest{Ref: remote, Auth: &cairnv1.RegistryAuth{Insecure: true}}, nil); err != nil {
			return fmt.Errorf("drill: push: %w", err)
		}
		if _, err := images.Remove(ctx, connect.NewRequest(&cairnv1.ImageServiceRemoveRequest{Name: remote})); err != nil {
			return fmt.Errorf("drill: untag: %w", err)
		}
	}
	r.ops.registry = r.registry
	return nil
}
