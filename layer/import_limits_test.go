package layer

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/cairn-run/cairn/internal/errdefs"
	"github.com/cairn-run/cairn/internal/testenv"
)

func TestImport_TruncatedTarIsRefusedWhereverItStops(t *testing.T) {
	s := newTestStore(t)
	whole := tarOf(t, dir("./"), file("a", strings.Repeat("x", 700)), file("b", ""), symlink("c", "a"), file("d", strings.Repeat("y", 1024)))
	// `head -c 4096 busybox.tar`: a cut at a header boundary, which
	// archive/tar alone takes for the end.
	cuts := []int{4096 % len(whole), len(whole) - 1024, len(whole) - 1023, len(whole) - 1}
	for cut := 512; cut < len(whole)-1024; cut += 64 {
		cuts = append(cuts, cut)
	}
	for _, cut := range cuts {
		_, err := s.Import(t.Context(), "cut", bytes.NewReader(whole[:cut]), ImportOptions{})
		if !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Fatalf("cut at %d of %d: got %v, want ErrInvalidArgument", cut, len(whole), err)
		}
	}
	bb := busyboxTar(t)
	if _, err := s.Import(t.Context(), "head", bytes.NewReader(bb[:4096]), ImportOptions{}); !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("head -c 4096: %v", err)
	}
	assertNothingImported(t, s)
	// One zero block is an end-of-archive marker, as GNU tar accepts.
	mustImport(t, s, "one-zero-block", whole[:len(whole)-512])
	mustImport(t, s, "whole", whole)
}

func TestImport_MetaHeaderFollowedByTheEndIsTruncation(t *testing.T) {
	s := newTestStore(t)
	// A PAX header, or a GNU long name whose data is all NULs, then the
	// stream stops: Next returns io.EOF after reading non-zero headers.
	var pax bytes.Buffer
	tw := tar.NewWriter(&pax)
	if err := tw.WriteHeader(&tar.Header{Name: "p", Typeflag: tar.TypeReg, PAXRecords: map[string]string{"comment": "x"}, Format: tar.FormatPAX}); err != nil {
		t.Fatal(err)
	}
	paxHeaderOnly := pax.Bytes()[:1024] // the x header and its data, without the file's header
	longName := gnuLongNameOfNULs(t)
	for what, data := range map[string][]byte{"pax": paxHeaderOnly, "gnu long name": longName[:1024]} {
		if _, err := s.Import(t.Context(), "meta", bytes.NewReader(data), ImportOptions{}); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: got %v, want ErrInvalidArgument", what, err)
		}
	}
	assertNothingImported(t, s)
}

// gnuLongNameOfNULs is a GNU long-name header whose one byte of data is a
// NUL, and its padding: 1024 bytes whose second block is all zeros.
func gnuLongNameOfNULs(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "././@LongLink", Typeflag: tar.TypeReg, Size: 1, Format: tar.FormatGNU}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write([]byte{0}); err != nil {
		t.Fatal(err)
	}
	_ = tw.Flush()
	b := buf.Bytes()[:1024]
	b[156] = tar.TypeGNULongName
	copy(b[148:156], "        ")
	sum := 0
	for _, c := range b[:512] {
		sum += int(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

// storeOnTmpfs opens a store on a fresh tmpfs of size bytes.
func storeOnTmpfs(t *testing.T, size int64) *Store {
	t.Helper()
	testenv.RequireRoot(t)
	dir := t.TempDir()
	mnt := filepath.Join(dir, "fs")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size="+strconv.FormatInt(size, 10)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(mnt, unix.MNT_DETACH) })
	return openStore(t, filepath.Join(dir, "cairn.db"), filepath.Join(mnt, "layer"))
}

func TestImport_LimitsAreResourceExhausted(t *testing.T) {
	big := tarOf(t, file("big", strings.Repeat("x", 10000)))
	tests := []struct {
		name   string
		input  []byte
		opts   ImportOptions
		reason string
	}{
		{"too many bytes", big, ImportOptions{MaxBytes: 4096}, "exceeds 4096 bytes"},
		{"too many bytes gzip", gzipOf(t, big), ImportOptions{MaxBytes: 4096}, "exceeds 4096 bytes"},
		{"too many entries", tarOf(t, dir("a/"), file("a/1", ""), file("a/2", "")), ImportOptions{MaxEntries: 2}, "more than 2 entries"},
	}
	for _, tt := range tests {
		s := newTestStore(t)
		_, err := s.Import(t.Context(), "img", bytes.NewReader(tt.input), tt.opts)
		if !errors.Is(err, errdefs.ErrResourceExhausted) || !strings.Contains(err.Error(), tt.reason) {
			t.Errorf("%s: got %v, want ErrResourceExhausted saying %q", tt.name, err, tt.reason)
		}
		assertNothingImported(t, s)
	}
}

func TestImport_RefusesToFillTheDisk(t *testing.T) {
	s := storeOnTmpfs(t, 48<<20)
	// Up front: the reserve is larger than the whole file system.
	_, err := s.Import(t.Context(), "img", bytes.NewReader(busyboxTar(t)), ImportOptions{ReserveBytes: 64 << 20})
	if !errors.Is(err, errdefs.ErrResourceExhausted) {
		t.Fatalf("up front: got %v, want ErrResourceExhausted", err)
	}
	assertNothingImported(t, s)
	// While extracting: 64 MiB of files into 48 MiB, keeping 8 MiB free.
	var entries []entry
	for i := range 16 {
		entries = append(entries, file("f"+strconv.Itoa(i), strings.Repeat("z", 4<<20)))
	}
	_, err = s.Import(t.Context(), "img", bytes.NewReader(tarOf(t, entries...)), ImportOptions{ReserveBytes: 8 << 20})
	if !errors.Is(err, errdefs.ErrResourceExhausted) {
		t.Fatalf("while extracting: got %v, want ErrResourceExhausted", err)
	}
	assertNothingImported(t, s)
	if free, err := freeBytes(s.tmpDir); err != nil || free < 40<<20 {
		t.Fatalf("free after the refusal: %d %v", free, err)
	}
}
