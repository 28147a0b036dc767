package imagearchive

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/klauspost/compress/zstd"

	"github.com/cairn-run/cairn/internal/errdefs"
)

// Limits of what an archive may hold.
const (
	// MaxMetadataBytes bounds a manifest, an index, a config and
	// manifest.json: they are read into memory.
	MaxMetadataBytes = 4 << 20
	// MaxLayers is the most layers an image may have: overlayfs stacks at
	// most 500 lower directories, and a container's init layer is one.
	MaxLayers = 499
	// MaxImages bounds the images of one archive.
	MaxImages = 256
	// MaxEntries bounds the entries of the archive tar itself.
	MaxEntries = 100_000
	// maxIndexDepth bounds indexes within indexes.
	maxIndexDepth = 4
	// maxLinks bounds the links followed to find one file.
	maxLinks = 16
)

// entry is one file of the archive tar, where its data lies in the spool.
type entry struct {
	typ    byte
	offset int64
	size   int64
	link   string
}

// Archive is an indexed archive tar, read by offset.
type Archive struct {
	r       io.ReaderAt
	size    int64
	entries map[string]entry
}

// refuse builds the error of a refused archive.
func refuse(format string, args ...any) error {
	return fmt.Errorf("image archive: "+format+": %w", append(args, errdefs.ErrInvalidArgument)...)
}

// SpoolOptions bound a spool.
type SpoolOptions struct {
	// MaxBytes is the most uncompressed tar taken (ErrResourceExhausted
	// beyond).
	MaxBytes int64
	// CheckSpace, if set, is called every spaceCheckEvery bytes; its error
	// (the disk running short) ends the spool.
	CheckSpace func() error
}

// spaceCheckEvery is how many bytes a spool writes between two looks at
// the free space.
const spaceCheckEvery = 16 << 20

// Spool copies the archive stream r (a tar, plain or compressed with gzip
// or zstd as a whole) into a new file at path, indexing the tar's entries
// as they pass, and returns the archive read from that file. The caller
// removes the file (it is under the layer store's tmp/, which the store
// also wipes at start).
func Spool(ctx context.Context, r io.Reader, path string, opts SpoolOptions) (*Archive, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	a, err := spool(ctx, r, f, opts)
	if err != nil {
		f.Close()
		return nil, err
	}
	return a, nil
}

// Close closes the spool file, if the archive reads from one.
func (a *Archive) Close() error {
	if c, ok := a.r.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// ReadBytes indexes an archive held in memory (tests, fuzzing).
func ReadBytes(data []byte) (*Archive, error) {
	var buf writerAtBuffer
	a, err := index(context.Background(), bytes.NewReader(data), &buf, SpoolOptions{MaxBytes: int64(len(data)) + 1<<20})
	if err != nil {
		return nil, err
	}
	a.r, a.size = bytes.NewReader(buf.b), int64(len(buf.b))
	return a, nil
}

type writerAtBuffer struct{ b []byte }

func (w *writerAtBuffer) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }

func spool(ctx context.Context, r io.Reader, f *os.File, opts SpoolOptions) (*Archive, error) {
	bw := bufio.NewWriterSize(f, 1<<20)
	a, err := index(ctx, r, bw, opts)
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	a.r, a.size = f, st.Size()
	return a, nil
}

// countingReader counts what passes and copies it to w.
type countingReader struct {
	ctx       context.Context
	r         io.Reader
	w         io.Writer
	n         int64
	max       int64
	check     func() error
	checkedAt int64
	err       error // a write, limit or space error, which is not the archive's fault
}

var errTooBig = errors.New("too big")

func (c *countingReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		c.err = err
		return 0, err
	}
	n, err := c.r.Read(p)
	if n > 0 {
		if _, werr := c.w.Write(p[:n]); werr != nil {
			c.err = werr
			return 0, werr
		}
		c.n += int64(n)
		if c.n > c.max {
			c.err = fmt.Errorf("image archive over %d bytes: %w", c.max, errdefs.ErrResourceExhausted)
			return n, errTooBig
		}
		if c.check != nil && c.n-c.checkedAt >= spaceCheckEvery {
			c.checkedAt = c.n
			if err := c.check(); err != nil {
				c.err = err
				return n, err
			}
		}
	}
	return n, err
}

// sourceReader keeps the client stream's own read error apart from format
// errors.
type sourceReader struct {
	r   io.Reader
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// index reads the archive tar from r, writing it (decompressed) to w, and
// records where each entry's data lies in what was written.
func index(ctx context.Context, r io.Reader, w io.Writer, opts SpoolOptions) (*Archive, error) {
	src := &sourceReader{r: r}
	br := bufio.NewReaderSize(src, 64<<10)
	var plain io.Reader = br
	head, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(head, gzipMagic):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, streamError(err, src, nil)
		}
		defer zr.Close()
		plain = zr
	case bytes.HasPrefix(head, zstdMagic):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(128<<20), zstd.WithDecoderLowmem(true))
		if err != nil {
			return nil, streamError(err, src, nil)
		}
		defer zr.Close()
		plain = zr
	}
	cr := &countingReader{ctx: ctx, r: plain, w: w, max: opts.MaxBytes, check: opts.CheckSpace}
	tr := tar.NewReader(cr)
	a := &Archive{entries: map[string]entry{}}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, streamError(err, src, cr)
		}
		if len(a.entries) >= MaxEntries {
			return nil, fmt.Errorf("image archive: more than %d entries: %w", MaxEntries, errdefs.ErrResourceExhausted)
		}
		if err := a.add(hdr, cr.n); err != nil {
			return nil, err
		}
	}
	// The rest of the stream (the end-of-archive blocks) is read too, so
	// a compressed stream is checked to its end.
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return nil, streamError(err, src, cr)
	}
	if len(a.entries) == 0 {
		return nil, refuse("empty, or not a tar")
	}
	return a, nil
}

// streamError says whose fault a read error is: the client's stream, a
// limit, or the archive's format.
func streamError(err error, src *sourceReader, cr *countingReader) error {
	switch {
	case src.err != nil:
		return fmt.Errorf("read image archive: %w", src.err)
	case cr != nil && cr.err != nil:
		return cr.err
	}
	return refuse("truncated or corrupt: %v", err)
}

// cleanName is the archive path of a tar entry name; a name that is
// absolute or climbs out with ".." is refused rather than cleaned.
func cleanName(name string) (string, error) {
	switch {
	case name == "":
		return "", refuse("an entry has an empty name")
	case strings.IndexByte(name, 0) >= 0:
		return "", refuse("an entry name holds a NUL byte")
	case strings.HasPrefix(name, "/"):
		return "", refuse("entry %.100q: absolute path", name)
	}
	for _, c := range strings.Split(name, "/") {
		if c == ".." {
			return "", refuse("entry %.100q: path escapes the archive", name)
		}
	}
	return path.Clean(name), nil
}

func (a *Archive) add(hdr *tar.Header, offset int64) error {
	name, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	e := entry{typ: hdr.Typeflag, offset: offset, size: hdr.Size}
	switch hdr.Typeflag {
	case tar.TypeReg:
		for k := range hdr.PAXRecords {
			if strings.HasPrefix(k, "GNU.sparse.") {
				return refuse("entry %.100q: sparse files are not supported", hdr.Name)
			}
		}
	case tar.TypeDir:
		e.size = 0
	case tar.TypeSymlink, tar.TypeLink:
		if hdr.Linkname == "" || strings.IndexByte(hdr.Linkname, 0) >= 0 {
			return refuse("entry %.100q: bad link target", hdr.Name)
		}
		e.link = hdr.Linkname
	case tar.TypeXGlobalHeader:
		return nil
	default:
		return refuse("entry %.100q: type %q is not allowed in an image archive", hdr.Name, hdr.Typeflag)
	}
	if name == "." {
		return nil
	}
	if prev, ok := a.entries[name]; ok {
		if prev.typ == tar.TypeDir && e.typ == tar.TypeDir {
			return nil
		}
		return refuse("entry %.100q appears twice", hdr.Name)
	}
	a.entries[name] = e
	return nil
}

// has reports whether the archive has a file (or link) at name.
func (a *Archive) has(name string) bool {
	e, ok := a.entries[name]
	return ok && e.typ != tar.TypeDir
}

// errMissing marks a file the archive lacks.
var errMissing = errors.New("missing from the archive")

// lookup finds the regular file at name. On the way, no directory may be
// a symlink or a file; the file itself may be a link only if links is set
// (a docker save archive shares layers with them), and the link is
// followed lexically inside the archive.
func (a *Archive) lookup(name string, links bool) (entry, error) {
	orig := name
	for range maxLinks {
		for i := 0; i < len(name); i++ {
			if name[i] != '/' {
				continue
			}
			if p, ok := a.entries[name[:i]]; ok && p.typ != tar.TypeDir {
				what := "a file"
				if p.typ == tar.TypeSymlink || p.typ == tar.TypeLink {
					what = "a symlink"
				}
				return entry{}, refuse("%.100q lies under %.100q, which is %s, not a directory", orig, name[:i], what)
			}
		}
		e, ok := a.entries[name]
		if !ok {
			return entry{}, fmt.Errorf("image archive: %.100q: %w: %w", orig, errMissing, errdefs.ErrInvalidArgument)
		}
		switch e.typ {
		case tar.TypeReg:
			return e, nil
		case tar.TypeDir:
			return entry{}, refuse("%.100q is a directory", orig)
		case tar.TypeSymlink, tar.TypeLink:
			if !links {
				return entry{}, refuse("%.100q is a link, which an OCI layout never holds", orig)
			}
			next := e.link
			if e.typ == tar.TypeSymlink {
				if path.IsAbs(next) {
					return entry{}, refuse("%.100q links to the absolute path %.100q", orig, next)
				}
				next = path.Join(path.Dir(name), next)
			}
			clean, err := cleanName(next)
			if err != nil || clean == "." {
				return entry{}, refuse("%.100q links outside the archive", orig)
			}
			name = clean
		}
	}
	return entry{}, refuse("%.100q: more than %d links", orig, maxLinks)
}

// open returns the content of the file at name.
func (a *Archive) open(name string, links bool) (*io.SectionReader, error) {
	e, err := a.lookup(name, links)
	if err != nil {
		return nil, err
	}
	if e.offset+e.size > a.size || e.offset < 0 || e.size < 0 {
		return nil, refuse("%.100q runs past the end of the archive", name)
	}
	return io.NewSectionReader(a.r, e.offset, e.size), nil
}

// readSmall reads a metadata file of at most MaxMetadataBytes.
func (a *Archive) readSmall(name string, links bool, what string) ([]byte, error) {
	sr, err := a.open(name, links)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if sr.Size() > MaxMetadataBytes {
		return nil, refuse("%s %.100q is %d bytes, more than %d", what, name, sr.Size(), MaxMetadataBytes)
	}
	data := make([]byte, sr.Size())
	if _, err := io.ReadFull(sr, data); err != nil {
		return nil, fmt.Errorf("read %s %.100q: %w", what, name, err)
	}
	return data, nil
}
