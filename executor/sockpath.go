package executor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// A unix socket path may hold at most 107 bytes, and
// <Dir>/containers/<64 hex id>/shim.sock can be longer. Both sides therefore
// reach the socket through /proc/self/fd/<fd of its directory>/<name>, which
// is always short; the kernel resolves the directory through the fd.

// inDir opens dir (O_PATH: no read permission needed) and calls fn with a
// short path that names dir/name while the directory fd stays open.
func inDir(dir, name string, fn func(path string) error) error {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(fd)
	return fn("/proc/self/fd/" + strconv.Itoa(fd) + "/" + name)
}

// listenUnixIn listens on dir/name, replacing a socket file left by a crashed
// predecessor. The listener does not unlink the file on Close (its own path
// is only valid while the directory fd was open); callers remove it with
// os.Remove(dir/name).
func listenUnixIn(dir, name string) (*net.UnixListener, error) {
	var ln *net.UnixListener
	err := inDir(dir, name, func(path string) error {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
		if err != nil {
			return err
		}
		l.SetUnlinkOnClose(false)
		ln = l
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listen on %s/%s: %w", dir, name, err)
	}
	return ln, nil
}

// dialUnixIn connects to the socket dir/name.
func dialUnixIn(ctx context.Context, dir, name string) (*net.UnixConn, error) {
	var conn *net.UnixConn
	err := inDir(dir, name, func(path string) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "unix", path)
		if err != nil {
			return err
		}
		conn = c.(*net.UnixConn)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("connect to %s/%s: %w", dir, name, err)
	}
	return conn, nil
}

// peerAllowed reports whether the process at the other end of conn may talk
// to the shim: root, or the user the shim runs as.
func peerAllowed(conn *net.UnixConn) bool {
	raw, err := conn.SyscallConn()
	if err != nil {
		return false
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil || credErr != nil {
		return false
	}
	return cred.Uid == 0 || int(cred.Uid) == os.Geteuid()
}
