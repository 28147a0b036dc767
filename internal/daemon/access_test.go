package daemon_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/api/cairn/v1/cairnv1connect"
	"github.com/cairn-run/cairn/internal/daemon"
	"github.com/cairn-run/cairn/internal/testenv"
	"github.com/cairn-run/cairn/internal/testenv/scratch"
)

// openDir is a new directory others may enter: a socket or a binary for a
// non-root user must be reachable.
func openDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "cairn-open-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// testGroup creates a group of its own for the test and returns its name
// and gid.
func testGroup(t *testing.T) (string, int) {
	t.Helper()
	name := "cairn-t" + testenv.RandomHex(4)
	if out, err := exec.Command("groupadd", name).CombinedOutput(); err != nil {
		t.Fatalf("groupadd: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("groupdel", name).Run() })
	out, err := exec.Command("getent", "group", name).Output()
	if err != nil {
		t.Fatal(err)
	}
	gid, err := strconv.Atoi(strings.Split(strings.TrimSpace(string(out)), ":")[2])
	if err != nil {
		t.Fatal(err)
	}
	return name, gid
}

// cliAs runs the cairn CLI as uid 4242 with the given supplementary groups.
func cliAs(t *testing.T, cairn, socket string, groups []uint32, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(cairn, append([]string{"--socket", socket}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 4242, Gid: 4242, Groups: groups}}
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestAccess_TheSocketIsRootsOrAGroupsFromTheStart(t *testing.T) {
	group, gid := testGroup(t)
	sockDir := openDir(t)
	e := scratch.NewBinaryDaemon(t, func(c *daemon.Config) {
		c.Socket = filepath.Join(sockDir, "cairn.sock")
		c.Access.Group = group
	})
	fi, err := os.Stat(e.Socket)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode().Perm() != 0o660 || int(st.Gid) != gid || st.Uid != 0 {
		t.Fatalf("socket mode %v uid %d gid %d, want 0660 root:%d", fi.Mode().Perm(), st.Uid, st.Gid, gid)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(sockDir, ".*")); len(leftovers) != 0 {
		t.Fatalf("temporary sockets left: %v", leftovers)
	}
	_, built := testenv.Binaries(t)
	cairn := filepath.Join(openDir(t), "cairn")
	data, err := os.ReadFile(built)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cairn, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := cliAs(t, cairn, e.Socket, []uint32{uint32(gid)}, "image", "ls"); err != nil || !strings.Contains(out, "busybox") {
		t.Fatalf("a member of %s was refused: %v\n%s", group, err, out)
	}
	out, err := cliAs(t, cairn, e.Socket, nil, "image", "ls")
	if err == nil || !strings.Contains(out, "permission denied") {
		t.Fatalf("a user outside %s was served: %v\n%s", group, err, out)
	}

	// Without a group only root may connect.
	e.Stop()
	e.Config.Access.Group = ""
	e.Start()
	if fi, err := os.Stat(e.Socket); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket without --group: %v %v, want 0600", fi.Mode().Perm(), err)
	}
	if out, err := cliAs(t, cairn, e.Socket, []uint32{uint32(gid)}, "image", "ls"); err == nil {
		t.Fatalf("a non-root user was served by a root-only socket:\n%s", out)
	}
}

// pki is a CA and certificates it signs, written as PEM files.
type pki struct {
	dir    string
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	serial int64
}

func newPKI(t *testing.T, name string) *pki {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	p := &pki{dir: t.TempDir(), ca: ca, caKey: key, serial: 1}
	p.write(t, "ca.pem", "CERTIFICATE", der)
	return p
}

func (p *pki) write(t *testing.T, name, kind string, der []byte) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// issue signs a certificate for name (a server one when server is set)
// and returns the paths of the certificate and its key.
func (p *pki) issue(t *testing.T, name string, server bool) (certPath, keyPath string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p.serial++
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(p.serial), Subject: pkix.Name{CommonName: name}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return p.write(t, name+".pem", "CERTIFICATE", der), p.write(t, name+"-key.pem", "EC PRIVATE KEY", keyDER)
}

// tlsVersion calls SystemService.Version over TLS with the client
// certificate given (none when certPath is "").
func tlsVersion(t *testing.T, addr string, ca *x509.Certificate, certPath, keyPath string) error {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if certPath != "" {
		cert, err := tls.LoadX509KeyPair(certPath, keyPath)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	protocols := new(http.Protocols)
	protocols.SetHTTP2(true)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, Protocols: protocols}, Timeout: 10 * time.Second}
	_, err := cairnv1connect.NewSystemServiceClient(hc, "https://"+addr).Version(bg, connect.NewRequest(&cairnv1.VersionRequest{}))
	return err
}

func TestAccess_TCPNeedsAClientCertificate(t *testing.T) {
	good, other := newPKI(t, "cairn test CA"), newPKI(t, "someone else's CA")
	serverCert, serverKey := good.issue(t, "cairnd", true)
	clientCert, clientKey := good.issue(t, "operator", false)
	strangerCert, strangerKey := other.issue(t, "stranger", false)
	addr := freeAddr(t)
	e := scratch.NewBinaryDaemon(t, func(c *daemon.Config) {
		c.Access.TLSAddr, c.Access.TLSCert, c.Access.TLSKey = addr, serverCert, serverKey
		c.Access.TLSCA = filepath.Join(good.dir, "ca.pem")
	})
	if err := tlsVersion(t, addr, good.ca, clientCert, clientKey); err != nil {
		t.Fatalf("a client with a certificate of the CA was refused: %v", err)
	}
	if err := tlsVersion(t, addr, good.ca, "", ""); err == nil {
		t.Fatal("a client without a certificate was served")
	}
	if err := tlsVersion(t, addr, good.ca, strangerCert, strangerKey); err == nil {
		t.Fatal("a client with another CA's certificate was served")
	}
	res, err := http.Get("http://" + addr + "/cairn.v1.SystemService/Version")
	if err == nil {
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode == http.StatusOK {
			t.Fatalf("plain HTTP on the TLS port was served: %s", body)
		}
	}
	e.Stop()
}

func TestAccess_PlainTCPOnlyOnLoopbackAndOnlyWhenAsked(t *testing.T) {
	e := scratch.NewBinaryDaemon(t)
	e.Stop()
	for _, tc := range []struct {
		addr     string
		insecure bool
	}{{"0.0.0.0:" + strings.Split(freeAddr(t), ":")[1], true}, {freeAddr(t), false}} {
		e.Config.Access.TCPAddr, e.Config.Access.InsecureTCP = tc.addr, tc.insecure
		e.StartWith()
		e.WaitCrash(30 * time.Second)
		if !strings.Contains(e.Log(), "plain TCP is served only on a loopback address and with --insecure-tcp") {
			t.Fatalf("--tcp-addr %s --insecure-tcp=%v was not refused; log:\n%s", tc.addr, tc.insecure, e.Log())
		}
	}
	addr := freeAddr(t)
	e.Config.Access.TCPAddr, e.Config.Access.InsecureTCP = addr, true
	e.Start()
	protocols := new(http.Protocols)
	protocols.SetUnencryptedHTTP2(true)
	hc := &http.Client{Transport: &http.Transport{Protocols: protocols}, Timeout: 10 * time.Second}
	if _, err := cairnv1connect.NewSystemServiceClient(hc, "http://"+addr).Version(bg, connect.NewRequest(&cairnv1.VersionRequest{})); err != nil {
		t.Fatalf("plain TCP on loopback with --insecure-tcp: %v", err)
	}
}

// READY=1 reaches the service manager only once recovery is done and the
// API serves.
func TestSystemd_ReadyOnlyAfterRecovery(t *testing.T) {
	e := scratch.NewBinaryDaemon(t)
	c := runDetached(t, e, "sleep", "1000")
	e.Stop()
	notify := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notify, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	e.StartWith("NOTIFY_SOCKET=" + notify)
	buf := make([]byte, 256)
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	n, err := conn.Read(buf)
	if err != nil || string(buf[:n]) != "READY=1" {
		t.Fatalf("notify: %q %v", buf[:n], err)
	}
	// At READY the recovered container is served at once.
	if got := get(t, e, c.Id); got.State != cairnv1.ContainerState_CONTAINER_STATE_RUNNING {
		t.Fatalf("at READY the container is %v", got.State)
	}
	e.Stop()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err = conn.Read(buf); err != nil || string(buf[:n]) != "STOPPING=1" {
		t.Fatalf("notify at stop: %q %v", buf[:n], err)
	}
	e.Start()
	remove(t, e, c.Id, true)
}
