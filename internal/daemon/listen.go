package daemon

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"time"
)

// Access to the API. The unix socket is the main door: mode 0600 (root
// only), or 0660 with a group given (--group), and it has that mode and
// owner from the moment its name exists: it is bound under a temporary
// name, given its mode and group, then renamed into place, so no client
// ever finds it more open than configured. An optional TCP listener serves
// the same API only with mutual TLS; plain TCP is refused unless it is on
// loopback and asked for explicitly.

// Access configures who may reach the API.
type Access struct {
	// Group, if set, may use the socket (mode 0660); else only root (0600).
	Group string
	// TLSAddr, with TLSCert, TLSKey and TLSCA, serves the API on TCP with
	// mutual TLS: clients need a certificate signed by TLSCA.
	TLSAddr, TLSCert, TLSKey, TLSCA string
	// TCPAddr serves the API on plain TCP; refused unless it is a loopback
	// address and InsecureTCP is set.
	TCPAddr     string
	InsecureTCP bool
}

// socketOwner is the group and mode of the API socket.
func (a Access) socketOwner() (gid int, mode os.FileMode, err error) {
	if a.Group == "" {
		return 0, 0o600, nil
	}
	g, err := user.LookupGroup(a.Group)
	if err != nil {
		return 0, 0, fmt.Errorf("--group %s: %w", a.Group, err)
	}
	gid, err = strconv.Atoi(g.Gid)
	if err != nil {
		return 0, 0, fmt.Errorf("--group %s: gid %q: %w", a.Group, g.Gid, err)
	}
	return gid, 0o660, nil
}

// listenUnix binds the API socket with its final mode and group, replacing
// a stale file left by a crash but never the socket of a live daemon. The
// listener does not unlink the path when closed: removeSocket does, at
// shutdown.
func listenUnix(path string, a Access) (*net.UnixListener, error) {
	gid, mode, err := a.socketOwner()
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("socket directory: %w", err)
	}
	if conn, err := net.DialTimeout("unix", path, time.Second); err == nil {
		_ = conn.Close()
		return nil, fmt.Errorf("socket %s is in use by another daemon", path)
	}
	tmp := filepath.Join(dir, fmt.Sprintf(".%s.%d", filepath.Base(path), os.Getpid()))
	_ = os.Remove(tmp)
	// The temporary name is new and nobody knows it, but it is made
	// private at once all the same.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(false)
	fail := func(err error) (*net.UnixListener, error) {
		_ = ln.Close()
		_ = os.Remove(tmp)
		return nil, err
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return fail(err)
	}
	if err := os.Chown(tmp, 0, gid); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(fmt.Errorf("socket %s: %w", path, err))
	}
	return ln, nil
}

// removeSocket unlinks the API socket, if it is still ours.
func removeSocket(path string, ln *net.UnixListener) {
	fi, err := os.Stat(path)
	if err != nil {
		return
	}
	if f, ferr := ln.File(); ferr == nil {
		defer f.Close()
		if mine, err := f.Stat(); err == nil && os.SameFile(fi, mine) {
			_ = os.Remove(path)
		}
		return
	}
	_ = os.Remove(path)
}

// tcpListeners opens the TCP listeners a configures.
func (a Access) tcpListeners() ([]net.Listener, error) {
	var out []net.Listener
	closeAll := func() {
		for _, ln := range out {
			_ = ln.Close()
		}
	}
	if a.TCPAddr != "" {
		host, _, err := net.SplitHostPort(a.TCPAddr)
		if err != nil {
			return nil, fmt.Errorf("--tcp-addr %s: %w", a.TCPAddr, err)
		}
		ip := net.ParseIP(host)
		if !a.InsecureTCP || ip == nil || !ip.IsLoopback() {
			return nil, fmt.Errorf("--tcp-addr %s: plain TCP is served only on a loopback address and with --insecure-tcp; elsewhere use --tls-addr with client certificates", a.TCPAddr)
		}
		ln, err := net.Listen("tcp", a.TCPAddr)
		if err != nil {
			return nil, fmt.Errorf("--tcp-addr %s: %w", a.TCPAddr, err)
		}
		out = append(out, ln)
	}
	if a.TLSAddr != "" {
		cfg, err := a.tlsConfig()
		if err != nil {
			closeAll()
			return nil, err
		}
		ln, err := tls.Listen("tcp", a.TLSAddr, cfg)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("--tls-addr %s: %w", a.TLSAddr, err)
		}
		out = append(out, ln)
	}
	return out, nil
}

// tlsConfig requires and verifies a client certificate signed by TLSCA.
func (a Access) tlsConfig() (*tls.Config, error) {
	if a.TLSCert == "" || a.TLSKey == "" || a.TLSCA == "" {
		return nil, errors.New("--tls-addr needs --tls-cert, --tls-key and --tls-ca: the TCP listener serves only clients with a certificate")
	}
	cert, err := tls.LoadX509KeyPair(a.TLSCert, a.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
	}
	caPEM, err := os.ReadFile(a.TLSCA)
	if err != nil {
		return nil, fmt.Errorf("--tls-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("--tls-ca %s: no PEM certificate in it", a.TLSCA)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"h2", "http/1.1"},
	}, nil
}
