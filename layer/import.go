package layer

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"github.com/cairn-run/cairn/internal/errdefs"
)

// ImportOptions bounds what one import may consume.
type ImportOptions struct {
	MaxBytes   int64 // uncompressed tar bytes; default 8 GiB
	MaxEntries int   // tar headers; default 1_000_000
}

const (
	defaultMaxBytes   = 8 << 30
	defaultMaxEntries = 1_000_000
)

// Import reads a rootfs tar (plain or gzip, told apart by magic bytes) and
// registers it as the single-layer image name. It hashes while extracting
// into a tmp dir, then renames the directory into layers/ and registers layer
// and image in one bbolt transaction. If the chainID is already registered the
// existing layer is shared (refcount+1) and the new directory discarded.
//
// Refusals are ErrInvalidArgument naming the entry and the reason; a taken
// name is ErrAlreadyExists. On any error nothing is registered and nothing
// is left on disk.
func (s *Store) Import(ctx context.Context, name string, r io.Reader, opts ImportOptions) (Image, error) {
	img, err := s.importImage(ctx, name, r, opts)
	if err != nil {
		return Image{}, fmt.Errorf("import %s: %w", errdefs.Quote(name), err)
	}
	return img, nil
}

func (s *Store) importImage(ctx context.Context, name string, r io.Reader, opts ImportOptions) (Image, error) {
	if err := validateImageName(name); err != nil {
		return Image{}, err
	}
	if opts.MaxBytes < 0 || opts.MaxEntries < 0 {
		return Image{}, fmt.Errorf("negative import limits: %w", errdefs.ErrInvalidArgument)
	}
	if opts.MaxBytes == 0 {
		opts.MaxBytes = defaultMaxBytes
	}
	if opts.MaxEntries == 0 {
		opts.MaxEntries = defaultMaxEntries
	}
	// Fail fast before reading gigabytes; the commit checks again.
	if err := s.db.View(func(tx *bolt.Tx) error { return nameFree(tx, name) }); err != nil {
		return Image{}, err
	}

	tmp, err := os.MkdirTemp(s.tmpDir, "import-")
	if err != nil {
		return Image{}, err
	}
	// Whatever happens below, tmp must not outlive this call.
	defer os.RemoveAll(tmp)

	diffID, size, err := extractStream(ctx, tmp, r, opts, s.root)
	if err != nil {
		return Image{}, err
	}
	if err := syncDir(tmp, true); err != nil {
		return Image{}, err
	}

	cacheID, err := newCacheID()
	if err != nil {
		return Image{}, err
	}
	final := s.layerDir(cacheID)
	if err := os.Rename(tmp, final); err != nil {
		return Image{}, fmt.Errorf("move layer into place: %w", err)
	}
	// From here a crash leaves an unreferenced layers/<cacheID>, which Open
	// deletes; make the rename durable before the record can be.
	if err := syncDir(s.layersDir, false); err != nil {
		os.RemoveAll(final)
		return Image{}, err
	}

	chain := chainIDs([]string{diffID})
	chainID := chain[len(chain)-1]
	created := time.Now().UTC()
	shared := false
	err = s.db.Update(func(tx *bolt.Tx) error {
		if err := nameFree(tx, name); err != nil {
			return err
		}
		lb := layersBucket(tx)
		var rec layerRecord
		ok, err := getJSON(lb, chainID, &rec)
		if err != nil {
			return err
		}
		if ok {
			shared = true
			rec.Refcount++
		} else {
			rec = layerRecord{DiffID: diffID, CacheID: cacheID, Size: size, Refcount: 1}
		}
		if err := putJSON(lb, chainID, rec); err != nil {
			return err
		}
		return putJSON(imagesBucket(tx), name, imageRecord{
			DiffIDs: []string{diffID}, ChainID: chainID, Size: size, Created: created,
		})
	})
	if err != nil || shared {
		// Not registered (error) or not needed (an identical layer is).
		os.RemoveAll(final)
	}
	if err != nil {
		return Image{}, fmt.Errorf("register: %w", err)
	}
	return Image{Name: name, DiffIDs: []string{diffID}, ChainID: chainID, Size: size, CreatedAt: created}, nil
}

func nameFree(tx *bolt.Tx, name string) error {
	if imagesBucket(tx).Get([]byte(name)) != nil {
		return fmt.Errorf("image %s: %w", errdefs.Quote(name), errdefs.ErrAlreadyExists)
	}
	return nil
}

// syncDir fsyncs a directory, or with wholeFS the file system it is on: one
// syncfs flushes every file of the extracted layer instead of one fsync each.
func syncDir(dir string, wholeFS bool) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if wholeFS {
		err = unix.Syncfs(int(f.Fd()))
	} else {
		err = f.Sync()
	}
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// extractStream decompresses if needed, hashes the uncompressed stream and
// extracts it into root. It returns the diffID and the uncompressed size.
func extractStream(ctx context.Context, root string, r io.Reader, opts ImportOptions, owner bool) (string, int64, error) {
	src := &sourceReader{ctx: ctx, r: r}
	br := bufio.NewReaderSize(src, 64<<10)
	var plain io.Reader = br
	compressed, err := detectCompression(br)
	if err != nil {
		return "", 0, classify(err, src, nil)
	}
	if compressed {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return "", 0, classify(err, src, nil)
		}
		defer zr.Close()
		plain = zr
	}
	h := sha256.New()
	lim := &limitReader{r: plain, h: h, max: opts.MaxBytes}

	x, err := newExtractor(root, owner)
	if err != nil {
		return "", 0, err
	}
	defer x.close()

	tr := tar.NewReader(lim)
	entries := 0
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", 0, classify(err, src, lim)
		}
		entries++
		if entries > opts.MaxEntries {
			return "", 0, fmt.Errorf("more than %d entries: %w", opts.MaxEntries, errdefs.ErrInvalidArgument)
		}
		if err := x.entry(hdr, tr); err != nil {
			return "", 0, classify(err, src, lim)
		}
	}
	if lim.n == 0 {
		return "", 0, fmt.Errorf("empty input, not a tar: %w", errdefs.ErrInvalidArgument)
	}
	// diffID covers the whole uncompressed stream, including the zero
	// padding after the end-of-archive marker that tar.Reader leaves unread.
	if _, err := io.Copy(io.Discard, lim); err != nil {
		return "", 0, classify(err, src, lim)
	}
	if err := x.finish(); err != nil {
		return "", 0, err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), lim.n, nil
}

var (
	zstdMagic  = []byte{0x28, 0xb5, 0x2f, 0xfd}
	xzMagic    = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
	bzip2Magic = []byte("BZh")
)

// detectCompression reports gzip by its magic bytes and refuses the
// compressions we do not read, with a clearer message than "corrupt tar".
func detectCompression(br *bufio.Reader) (gzipped bool, err error) {
	head, err := br.Peek(6)
	if err != nil && err != io.EOF {
		return false, err
	}
	switch {
	case len(head) >= 2 && head[0] == 0x1f && head[1] == 0x8b:
		return true, nil
	case bytes.HasPrefix(head, zstdMagic), bytes.HasPrefix(head, xzMagic), bytes.HasPrefix(head, bzip2Magic):
		return false, fmt.Errorf("only plain or gzip-compressed tars are supported: %w", errdefs.ErrInvalidArgument)
	}
	return false, nil
}

// classify turns a read or extraction error into what the caller should see:
// cancellation and I/O errors of the source as they are, the size cap and any
// format error of the stream as ErrInvalidArgument.
func classify(err error, src *sourceReader, lim *limitReader) error {
	switch {
	case src.err != nil:
		return fmt.Errorf("read image stream: %w", src.err)
	case lim != nil && lim.exceeded:
		return fmt.Errorf("uncompressed size exceeds %d bytes: %w", lim.max, errdefs.ErrInvalidArgument)
	case errors.Is(err, errdefs.ErrInvalidArgument):
		return err
	case errors.Is(err, unix.ENAMETOOLONG):
		// A component over NAME_MAX or a symlink target over PATH_MAX: the
		// tar's fault, not the host's.
		return fmt.Errorf("%v: %w", err, errdefs.ErrInvalidArgument)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, tar.ErrHeader),
		errors.Is(err, tar.ErrInsecurePath), errors.Is(err, gzip.ErrHeader), errors.Is(err, gzip.ErrChecksum):
		return fmt.Errorf("truncated or corrupt tar: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	var corrupt flate.CorruptInputError
	if errors.As(err, &corrupt) {
		return fmt.Errorf("corrupt gzip stream: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	return err
}

// sourceReader remembers the caller's read error (distinct from a format
// error of what was read) and stops on cancellation.
type sourceReader struct {
	ctx context.Context
	r   io.Reader
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	if err := s.ctx.Err(); err != nil {
		s.err = err
		return 0, err
	}
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

// limitReader counts and hashes the uncompressed stream and fails once it
// passes max bytes.
type limitReader struct {
	r        io.Reader
	h        hash.Hash
	n, max   int64
	exceeded bool
}

var errTooBig = errors.New("size limit exceeded")

func (l *limitReader) Read(p []byte) (int, error) {
	if l.exceeded {
		return 0, errTooBig
	}
	n, err := l.r.Read(p)
	l.n += int64(n)
	l.h.Write(p[:n])
	if l.n > l.max {
		l.exceeded = true
		return n, errTooBig
	}
	return n, err
}
