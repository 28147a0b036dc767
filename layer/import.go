package layer

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"github.com/opencontainers/go-digest"

	"github.com/cairn-run/cairn/internal/errdefs"
)

// ImportOptions bounds what one import may consume.
type ImportOptions struct {
	MaxBytes   int64 // uncompressed tar bytes; default 8 GiB
	MaxEntries int   // tar headers; default 1_000_000
	// ReserveBytes is the free space an import leaves on the layer store's
	// file system: it is refused up front, and aborted while extracting,
	// when less is free (ErrResourceExhausted). Default 512 MiB; -1 for
	// none.
	ReserveBytes int64
}

const (
	defaultMaxBytes     = 8 << 30
	defaultMaxEntries   = 1_000_000
	defaultReserveBytes = 512 << 20
	// spaceCheckEvery is how many uncompressed bytes an import extracts
	// between two looks at the free space.
	spaceCheckEvery = 16 << 20
)

// Import reads a rootfs tar (plain or gzip, told apart by magic bytes) and
// registers it as the single-layer image name. It hashes while extracting
// into a tmp dir, then renames the directory into layers/ and registers layer
// and image in one bbolt transaction. If the chainID is already registered the
// existing layer is shared (refcount+1) and the new directory discarded.
//
// Refusals are ErrInvalidArgument naming the entry and the reason; a taken
// name is ErrAlreadyExists; a tar over opts' limits, or one that would eat
// into the free-space reserve, is ErrResourceExhausted. On any error nothing is registered and nothing
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
	if opts.MaxBytes < 0 || opts.MaxEntries < 0 || opts.ReserveBytes < -1 {
		return Image{}, fmt.Errorf("negative import limits: %w", errdefs.ErrInvalidArgument)
	}
	if opts.MaxBytes == 0 {
		opts.MaxBytes = defaultMaxBytes
	}
	if opts.MaxEntries == 0 {
		opts.MaxEntries = defaultMaxEntries
	}
	if opts.ReserveBytes == 0 {
		opts.ReserveBytes = defaultReserveBytes
	}
	space := &spaceGuard{dir: s.tmpDir, reserve: opts.ReserveBytes}
	if err := space.check(); err != nil {
		return Image{}, err
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

	diffID, size, err := extractStream(ctx, tmp, r, opts, s.root, space)
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
	err = s.update(func(tx *bolt.Tx) error {
		// A client that gave up (a cancelled stream) gets nothing
		// registered, however far its bytes got.
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := nameFree(tx, name); err != nil {
			return err
		}
		lb := layersBucket(tx)
		var rec layerRecord
		ok, err := getJSON(lb, chainID, &rec)
		if err != nil {
			return err
		}
		if shared = ok; ok {
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
func extractStream(ctx context.Context, root string, r io.Reader, opts ImportOptions, owner bool, space *spaceGuard) (string, int64, error) {
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
	lim := &limitReader{r: plain, h: h, max: opts.MaxBytes, space: space}

	x, err := newExtractor(root, owner)
	if err != nil {
		return "", 0, err
	}
	defer x.close()

	tr := tar.NewReader(lim)
	entries := 0
	for {
		start := lim.n
		hdr, err := tr.Next()
		if err == io.EOF {
			if lim.n == 0 {
				return "", 0, fmt.Errorf("empty input, not a tar: %w", errdefs.ErrInvalidArgument)
			}
			if !lim.endOfArchive(start) {
				return "", 0, fmt.Errorf("truncated tar: the stream ends after %d bytes without an end-of-archive marker: %w", lim.n, errdefs.ErrInvalidArgument)
			}
			break
		}
		if err != nil {
			return "", 0, classify(err, src, lim)
		}
		entries++
		if entries > opts.MaxEntries {
			return "", 0, fmt.Errorf("more than %d entries: %w", opts.MaxEntries, errdefs.ErrResourceExhausted)
		}
		if err := x.entry(hdr, tr); err != nil {
			return "", 0, classify(err, src, lim)
		}
		// Read what the entry did not, so the next Next reads only the
		// padding and headers that endOfArchive accounts for.
		if _, err := io.Copy(io.Discard, tr); err != nil {
			return "", 0, classify(err, src, lim)
		}
	}
	// diffID covers the whole uncompressed stream, including the zero
	// padding after the end-of-archive marker that tar.Reader leaves unread.
	if _, err := io.Copy(io.Discard, lim); err != nil {
		return "", 0, classify(err, src, lim)
	}
	if err := x.finish(); err != nil {
		return "", 0, err
	}
	return digest.NewDigestFromBytes(digest.SHA256, h.Sum(nil)).String(), lim.n, nil
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
// cancellation and I/O errors of the source as they are, the size cap and
// the free-space reserve as ErrResourceExhausted, any format error of the
// stream as ErrInvalidArgument.
func classify(err error, src *sourceReader, lim *limitReader) error {
	switch {
	case src.err != nil:
		return fmt.Errorf("read image stream: %w", src.err)
	case lim != nil && lim.exceeded:
		return fmt.Errorf("uncompressed size exceeds %d bytes: %w", lim.max, errdefs.ErrResourceExhausted)
	case lim != nil && lim.spaceErr != nil:
		return lim.spaceErr
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

// limitReader counts and hashes the uncompressed stream, fails once it
// passes max bytes or the file system runs short of space, and keeps the
// trail of 512-byte blocks that endOfArchive needs.
type limitReader struct {
	r        io.Reader
	h        hash.Hash
	n, max   int64
	exceeded bool

	space     *spaceGuard
	checkedAt int64
	spaceErr  error

	trail blockTrail
}

var errTooBig = errors.New("size limit exceeded")

func (l *limitReader) Read(p []byte) (int, error) {
	if l.exceeded {
		return 0, errTooBig
	}
	if l.spaceErr != nil {
		return 0, l.spaceErr
	}
	n, err := l.r.Read(p)
	l.n += int64(n)
	l.h.Write(p[:n])
	l.trail.add(p[:n])
	if l.n > l.max {
		l.exceeded = true
		return n, errTooBig
	}
	if l.space != nil && l.n-l.checkedAt >= spaceCheckEvery {
		l.checkedAt = l.n
		if l.spaceErr = l.space.check(); l.spaceErr != nil {
			return n, l.spaceErr
		}
	}
	return n, err
}

// endOfArchive reports whether the tar.Reader.Next that started at offset
// start and returned io.EOF read a real end-of-archive marker. archive/tar
// also returns io.EOF when the stream simply stops at a header boundary or
// inside an entry's padding, which is how a truncated tar looks. Next reads
// exactly the previous entry's padding (the entry itself was drained) and
// then one zero block, or two; any header it read instead would not be all
// zeros.
func (l *limitReader) endOfArchive(start int64) bool {
	const block = 512
	pad := (block - start%block) % block
	switch l.n - start - pad {
	case block:
		return l.n%block == 0 && l.trail.zero[1]
	case 2 * block:
		return l.n%block == 0 && l.trail.zero[0] && l.trail.zero[1]
	}
	return false
}

// blockTrail remembers whether the last two complete 512-byte blocks of a
// stream were all zeros.
type blockTrail struct {
	pos     int64
	nonZero bool    // the block being filled has a non-zero byte
	zero    [2]bool // the block before last, the last block
}

var zeroBlock [512]byte

func (b *blockTrail) add(p []byte) {
	for len(p) > 0 {
		k := min(512-int(b.pos%512), len(p))
		if !b.nonZero && !bytes.Equal(p[:k], zeroBlock[:k]) {
			b.nonZero = true
		}
		b.pos += int64(k)
		p = p[k:]
		if b.pos%512 == 0 {
			b.zero[0], b.zero[1] = b.zero[1], !b.nonZero
			b.nonZero = false
		}
	}
}

// spaceGuard refuses to let an import eat into the reserve of free space
// on the layer store's file system.
type spaceGuard struct {
	dir     string
	reserve int64 // -1: no reserve
}

func (g *spaceGuard) check() error {
	if g.reserve < 0 {
		return nil
	}
	avail, err := freeBytes(g.dir)
	if err != nil {
		return err
	}
	if avail < g.reserve {
		return fmt.Errorf("only %d bytes are free on the layer store and an import keeps %d in reserve: %w", avail, g.reserve, errdefs.ErrResourceExhausted)
	}
	return nil
}

func freeBytes(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return int64(st.Bavail) * st.Bsize, nil
}
