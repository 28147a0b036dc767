package layer

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/cairn-run/cairn/internal/errdefs"
)

// InitConfig is what a container's init layer is made from.
type InitConfig struct {
	Hostname string // required; an RFC 1123 host name of at most 64 bytes
}

// validateHostname accepts RFC 1123 names (dot-separated labels of letters,
// digits and inner hyphens) up to HOST_NAME_MAX (64) bytes: the name is
// written into /etc/hosts, so a newline or space must never get through.
func validateHostname(h string) error {
	bad := func(why string) error {
		return fmt.Errorf("hostname %q: %s: %w", h, why, errdefs.ErrInvalidArgument)
	}
	if h == "" {
		return bad("required")
	}
	if len(h) > 64 {
		return bad("longer than 64 bytes")
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 {
			return bad("empty or over-long label")
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return bad("label starts or ends with '-'")
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return bad("only letters, digits, '-' and '.' are allowed")
			}
		}
	}
	return nil
}

// hostsFile is the container's /etc/hosts.
func hostsFile(hostname string) []byte {
	return []byte("127.0.0.1\tlocalhost\n" +
		"::1\tlocalhost ip6-localhost ip6-loopback\n" +
		"127.0.1.1\t" + hostname + "\n")
}

// filterResolvConf drops nameserver lines pointing at loopback (127.0.0.0/8,
// ::1): a resolver on the host's loopback is unreachable from the container's
// network namespace. Everything else is kept as is. If no directive is left
// (only comments or blank lines), the result is empty.
func filterResolvConf(in []byte) []byte {
	var out bytes.Buffer
	directives := 0
	sc := bufio.NewScanner(bytes.NewReader(in))
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) >= 2 && fields[0] == "nameserver" && isLoopback(fields[1]) {
			continue
		}
		if len(fields) > 0 && fields[0][0] != '#' && fields[0][0] != ';' {
			directives++
		}
		out.WriteString(line)
		out.WriteByte('\n')
	}
	if directives == 0 {
		return nil
	}
	return out.Bytes()
}

func isLoopback(addr string) bool {
	if i := strings.IndexByte(addr, '%'); i >= 0 {
		addr = addr[:i] // zone, e.g. fe80::1%eth0
	}
	ip, err := netip.ParseAddr(addr)
	return err == nil && ip.Unmap().IsLoopback()
}

// writeInitLayer fills dir (which exists) with the init layer. It overwrites
// whatever a crashed earlier attempt left, so it can simply run again.
func writeInitLayer(dir, hostname string, resolvConf []byte) error {
	for _, d := range []string{"etc", "dev"} {
		if err := mkdirMode(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	files := []struct {
		name string
		data []byte
	}{
		{"etc/hosts", hostsFile(hostname)},
		{"etc/hostname", []byte(hostname + "\n")},
		{"etc/resolv.conf", resolvConf},
		{"dev/console", nil}, // bind-mount target for the runtime's console
	}
	for _, f := range files {
		if err := writeFileMode(filepath.Join(dir, f.name), f.data, 0o644); err != nil {
			return err
		}
	}
	mtab := filepath.Join(dir, "etc/mtab")
	if err := os.Symlink("/proc/mounts", mtab); err != nil {
		if !errors.Is(err, fs.ErrExist) {
			return err
		}
		if err := os.Remove(mtab); err != nil {
			return err
		}
		if err := os.Symlink("/proc/mounts", mtab); err != nil {
			return err
		}
	}
	return nil
}

// mkdirMode creates a directory (or accepts an existing one) with exactly
// mode, whatever the process umask.
func mkdirMode(path string, mode os.FileMode) error {
	if err := os.Mkdir(path, mode); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return os.Chmod(path, mode)
}

// writeFileMode writes a file with exactly mode, whatever the umask. No
// fsync: the init layer is derived data and CreateMount rebuilds it after a
// crash (merged/, created last, marks it complete).
func writeFileMode(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|unix.O_NOFOLLOW, mode)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(mode)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
