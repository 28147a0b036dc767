// Package busybox builds the smallest useful container image: a rootfs tar
// holding a static busybox, a symlink per applet and the few files and
// directories a shell expects. The demo (scripts/mkbusybox), the tests and
// cairn drill all build their image with it.
//
// It only writes a tar stream; importing it is the daemon's business.
package busybox

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"strconv"
	"strings"
	"time"
)

// DefaultPath is where Debian's busybox-static installs the binary.
const DefaultPath = "/bin/busybox"

// ErrNotStatic is returned for a dynamically linked busybox, which cannot
// run in an image without its libraries.
var ErrNotStatic = errors.New("busybox is dynamically linked; the image needs a static one (apt-get install busybox-static)")

var dirs = []struct {
	name string
	mode int64
}{
	{"bin", 0o755}, {"sbin", 0o755}, {"usr", 0o755}, {"usr/bin", 0o755}, {"usr/sbin", 0o755},
	{"etc", 0o755}, {"tmp", 0o1777}, {"proc", 0o555}, {"sys", 0o555}, {"dev", 0o755},
	{"root", 0o700}, {"var", 0o755}, {"run", 0o755},
}

var files = []struct{ name, content string }{
	{"etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"},
	{"etc/group", "root:x:0:\nnogroup:x:65534:\n"},
}

// WriteRootfsTar writes a rootfs tar to w: the directories, bin/busybox
// (read from busyboxPath, which must be statically linked), bin/<applet>
// symlinks for every applet `busybox --list` names, and etc/passwd and
// etc/group. Entries are owned by root and all dated Epoch (or
// $SOURCE_DATE_EPOCH), so the same busybox always gives the same tar, the
// same diffID and the same chain ID.
func WriteRootfsTar(w io.Writer, busyboxPath string) error {
	bin, err := os.ReadFile(busyboxPath)
	if err != nil {
		return fmt.Errorf("read busybox: %w", err)
	}
	if err := checkStatic(bin); err != nil {
		return fmt.Errorf("%s: %w", busyboxPath, err)
	}
	applets, err := listApplets(busyboxPath)
	if err != nil {
		return err
	}
	date, err := buildDate()
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	add := func(h *tar.Header, body []byte) error {
		h.ModTime, h.Format = date, tar.FormatPAX
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("tar %s: %w", h.Name, err)
		}
		if _, err := tw.Write(body); err != nil {
			return fmt.Errorf("tar %s: %w", h.Name, err)
		}
		return nil
	}
	for _, d := range dirs {
		if err := add(&tar.Header{Typeflag: tar.TypeDir, Name: d.name + "/", Mode: d.mode}, nil); err != nil {
			return err
		}
	}
	if err := add(&tar.Header{Typeflag: tar.TypeReg, Name: "bin/busybox", Mode: 0o755, Size: int64(len(bin))}, bin); err != nil {
		return err
	}
	for _, applet := range applets {
		if err := add(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + applet, Linkname: "busybox", Mode: 0o777}, nil); err != nil {
			return err
		}
	}
	for _, f := range files {
		if err := add(&tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: 0o644, Size: int64(len(f.content))}, []byte(f.content)); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("tar: %w", err)
	}
	return nil
}

// Epoch is the date of every entry of the image unless SOURCE_DATE_EPOCH
// (the reproducible-builds convention) says otherwise.
var Epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func buildDate() (time.Time, error) {
	v := os.Getenv("SOURCE_DATE_EPOCH")
	if v == "" {
		return Epoch, nil
	}
	secs, err := strconv.ParseInt(v, 10, 64)
	if err != nil || secs < 0 {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a count of seconds", v)
	}
	return time.Unix(secs, 0).UTC(), nil
}

// checkStatic rejects an ELF binary that asks for a program interpreter
// (the dynamic loader): that is what a dynamically linked one does.
func checkStatic(bin []byte) error {
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		return fmt.Errorf("not an ELF binary: %w", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return ErrNotStatic
		}
	}
	return nil
}

// listApplets asks the binary for its applets, keeping only plain names:
// the output becomes paths in the image.
func listApplets(busyboxPath string) ([]string, error) {
	out, err := exec.Command(busyboxPath, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list: %w", busyboxPath, err)
	}
	var applets []string
	for _, name := range strings.Fields(string(out)) {
		if name == "busybox" || name != path.Base(name) || name == "." || name == ".." {
			continue
		}
		applets = append(applets, name)
	}
	if len(applets) == 0 {
		return nil, fmt.Errorf("%s --list names no applet", busyboxPath)
	}
	return applets, nil
}

// WriteFile writes the rootfs tar to a new file at path; a failed write
// leaves no file behind.
func WriteFile(path, busyboxPath string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := WriteRootfsTar(f, busyboxPath); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return err
	}
	return f.Close()
}
