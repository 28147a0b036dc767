package busybox

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func staticBusybox(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(DefaultPath); err != nil {
		t.Skipf("needs %s (apt-get install busybox-static): %v", DefaultPath, err)
	}
	return DefaultPath
}

func readTar(t *testing.T, data []byte) map[string]*tar.Header {
	t.Helper()
	entries := map[string]*tar.Header{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return entries
		}
		if err != nil {
			t.Fatalf("reading the tar back: %v", err)
		}
		if _, dup := entries[h.Name]; dup {
			t.Errorf("entry %s written twice", h.Name)
		}
		entries[h.Name] = h
	}
}

func TestWriteRootfsTar_HoldsBusyboxAppletsAndBaseFiles(t *testing.T) {
	bb := staticBusybox(t)
	var buf bytes.Buffer
	if err := WriteRootfsTar(&buf, bb); err != nil {
		t.Fatal(err)
	}
	entries := readTar(t, buf.Bytes())
	fi, _ := os.Stat(bb)
	if h := entries["bin/busybox"]; h == nil || h.Typeflag != tar.TypeReg || h.Size != fi.Size() || h.Mode != 0o755 {
		t.Errorf("bin/busybox: %+v", h)
	}
	for _, applet := range []string{"sh", "sleep", "echo", "cat"} {
		if h := entries["bin/"+applet]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "busybox" {
			t.Errorf("bin/%s: %+v, want a symlink to busybox", applet, h)
		}
	}
	for _, dir := range []string{"tmp/", "proc/", "sys/", "dev/", "root/", "etc/"} {
		if h := entries[dir]; h == nil || h.Typeflag != tar.TypeDir {
			t.Errorf("%s: %+v, want a directory", dir, h)
		}
	}
	if h := entries["tmp/"]; h != nil && h.Mode != 0o1777 {
		t.Errorf("tmp mode %o, want 1777", h.Mode)
	}
	for _, f := range []string{"etc/passwd", "etc/group"} {
		if h := entries[f]; h == nil || h.Typeflag != tar.TypeReg || h.Size == 0 || h.Uid != 0 {
			t.Errorf("%s: %+v", f, h)
		}
	}
	for name := range entries {
		if filepath.IsAbs(name) || name != filepath.Clean(name) && name != filepath.Clean(name)+"/" {
			t.Errorf("entry name %q is not a clean relative path", name)
		}
	}
}

func TestWriteRootfsTar_RejectsADynamicBinary(t *testing.T) {
	staticBusybox(t)
	// /bin/sh on Debian is dash, dynamically linked.
	err := WriteRootfsTar(io.Discard, "/bin/sh")
	if !errors.Is(err, ErrNotStatic) {
		t.Fatalf("err = %v, want ErrNotStatic", err)
	}
}

func TestWriteRootfsTar_RejectsWhatIsNotABinary(t *testing.T) {
	notELF := filepath.Join(t.TempDir(), "busybox")
	if err := os.WriteFile(notELF, []byte("#!/bin/sh\necho hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, path := range map[string]string{"missing": filepath.Join(t.TempDir(), "nope"), "not ELF": notELF} {
		var buf bytes.Buffer
		if err := WriteRootfsTar(&buf, path); err == nil {
			t.Errorf("%s: no error", name)
		}
		if buf.Len() != 0 {
			t.Errorf("%s: wrote %d bytes before failing", name, buf.Len())
		}
	}
}

func TestWriteRootfsTar_IsReproducible(t *testing.T) {
	bin := staticBusybox(t)
	write := func() []byte {
		var buf bytes.Buffer
		if err := WriteRootfsTar(&buf, bin); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	first := write()
	time.Sleep(1100 * time.Millisecond) // a clock-dated tar would differ now
	if second := write(); !bytes.Equal(first, second) {
		t.Fatal("two tars of the same busybox differ")
	}
	for name, h := range readTar(t, first) {
		if !h.ModTime.Equal(Epoch) {
			t.Fatalf("%s dated %v, want %v", name, h.ModTime, Epoch)
		}
	}
	t.Setenv("SOURCE_DATE_EPOCH", "1000000000")
	for name, h := range readTar(t, write()) {
		if h.ModTime.Unix() != 1000000000 {
			t.Fatalf("%s dated %v, want SOURCE_DATE_EPOCH", name, h.ModTime)
		}
	}
	t.Setenv("SOURCE_DATE_EPOCH", "yesterday")
	if err := WriteRootfsTar(io.Discard, bin); err == nil {
		t.Fatal("a malformed SOURCE_DATE_EPOCH was accepted")
	}
}
