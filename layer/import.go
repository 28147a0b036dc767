package layer

import (
	"archive/tar"
	"bufio"
	"bytes"

	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"github.com/cairn-run/cairn/internal/errdefs"
	"github.com/cairn-run/cairn/internal/imageref"
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

// resolved fills in the defaults and refuses negative limits.
func (o ImportOptions) resolved() (ImportOptions, error) {
	if o.MaxBytes < 0 || o.MaxEntries < 0 || o.ReserveBytes < -1 {
		return o, fmt.Errorf("negative import limits: %w", errdefs.ErrInvalidArgument)
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = defaultMaxBytes
	}
	if o.MaxEntries == 0 {
		o.MaxEntries = defaultMaxEntries
	}
	if o.ReserveBytes == 0 {
		o.ReserveBytes = defaultReserveBytes
	}
	return o, nil
}

var cacheIDPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

// isZstdError reports a format error of the zstd decoder (its errors are
// plain values of its package).
func isZstdError(err error) bool {
	for _, e := range []error{zstd.ErrMagicMismatch, zstd.ErrWindowSizeExceeded, zstd.ErrWindowSizeTooSmall, zstd.ErrBlockTooSmall,
		zstd.ErrDecoderSizeExceeded, zstd.ErrReservedBlockType, zstd.ErrCompressedSizeTooBig, zstd.ErrUnknownDictionary,
		zstd.ErrFrameSizeExceeded, zstd.ErrFrameSizeMismatch, zstd.ErrCRCMismatch} {
		if errors.Is(err, e) {
			return true
		}
	}
	return err != nil && strings.HasPrefix(err.Error(), "zstd") || err != nil && strings.Contains(err.Error(), "invalid input:")
}

const (
	defaultMaxBytes     = 8 << 30
	defaultMaxEntries   = 1_000_000
	defaultReserveBytes = 512 << 20
	// spaceCheckEvery is how many bytes an import writes (extracted and
	// kept blobs) between two looks at the free space.
	spaceCheckEvery = 16 << 20
)

// Import reads a rootfs tar (plain or gzip, told apart by magic bytes) and
// registers it, outside the journal, as the single-layer image name (any
// spelling internal/imageref normalizes), its config the flat config of
// the layer (FlatConfig). It stages the layer (StageLayer: hashing while
// extracting into tmp/), installs it into layers/ and registers layer and
// image in one bbolt transaction. If the chainID is already registered the
// existing layer is shared (refcount+1) and the new directory discarded.
// cairnd imports through the journaled image driver instead, which runs
// the same three phases with an intent before the install.
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
	canonical, err := imageref.NormalizeTag(name)
	if err != nil {
		return Image{}, err
	}
	// Fail fast before reading gigabytes; the commit checks again.
	if err := s.db.View(func(tx *bolt.Tx) error { return nameFree(tx, canonical) }); err != nil {
		return Image{}, err
	}
	st, err := s.NewStaging(opts)
	if err != nil {
		return Image{}, err
	}
	// Whatever happens below, the staging directory must not outlive this call.
	defer st.Close()
	l, err := st.Flat(ctx, r)
	if err != nil {
		return Image{}, err
	}
	config := FlatConfig([]string{l.DiffID})
	img := NewImage{ID: ConfigID(config), Config: config, DiffIDs: []string{l.DiffID}, Names: []string{canonical}, Staged: []StagedLayer{l}, Exclusive: true}
	if err := s.InstallLayers(img.Staged); err != nil {
		return Image{}, err
	}
	var reg Registration
	register := s.RegisterImage(img, &reg)
	err = s.update(func(tx *bolt.Tx) error {
		// A client that gave up (a cancelled stream) gets nothing
		// registered, however far its bytes got.
		if err := ctx.Err(); err != nil {
			return err
		}
		return register(tx)
	})
	if err != nil {
		// Not registered: nothing points to the installed directory.
		s.RemoveFreedLayers([]string{l.CacheID})
		return Image{}, fmt.Errorf("register: %w", err)
	}
	s.RemoveFreedLayers(reg.Unused)
	return s.Image(canonical)
}

func nameFree(tx *bolt.Tx, name string) error {
	if imagesBucket(tx).Get([]byte(name)) != nil {
		return fmt.Errorf("image %s: %w", errdefs.Quote(name), errdefs.ErrAlreadyExists)
	}
	return nil
}

// Staging is a scratch directory under tmp/ where the layers of one load or
// import are extracted and verified before anything is recorded. Nothing in
// it is ever registered; InstallLayers moves its layers into layers/, and
// Close (or, after a crash, Open) removes what is left. Its limits
// (ImportOptions) bound the sum of the layers it extracts.
type Staging struct {
	s     *Store
	dir   string
	opts  ImportOptions
	space *spaceGuard

	mu      sync.Mutex // guards bytes and entries: layers may be staged in parallel
	bytes   int64      // uncompressed bytes extracted so far
	entries int
}

// NewStaging makes a staging directory with the limits of opts.
func (s *Store) NewStaging(opts ImportOptions) (*Staging, error) {
	opts, err := opts.resolved()
	if err != nil {
		return nil, err
	}
	space := &spaceGuard{dir: s.tmpDir, reserve: opts.ReserveBytes}
	if err := space.check(); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(s.tmpDir, "stage-")
	if err != nil {
		return nil, err
	}
	return &Staging{s: s, dir: dir, opts: opts, space: space}, nil
}

// Dir is the staging directory: the caller may keep scratch files there
// (a spooled archive), removed with it.
func (st *Staging) Dir() string { return st.dir }

// MaxBytes is the staging's bound on what it unpacks, which also bounds a
// spool kept in it.
func (st *Staging) MaxBytes() int64 { return st.opts.MaxBytes }

// CheckSpace refuses (ErrResourceExhausted) when writing more would eat
// into the layer store's free-space reserve, for what the caller writes
// into Dir.
func (st *Staging) CheckSpace() error { return st.space.check() }

// Close removes the staging directory and whatever is still in it.
func (st *Staging) Close() error { return os.RemoveAll(st.dir) }

// StagedLayer is a layer extracted and verified in a staging directory,
// and after InstallLayers the directory layers/<CacheID>, not yet
// registered.
type StagedLayer struct {
	// ChainID is the chain position the layer is for (set by the caller
	// for image layers; a flat import's is its diffID).
	ChainID string
	DiffID  string
	Size    int64 // uncompressed tar bytes
	CacheID string
	// Blob is the layer blob as it was read (compressed or not), kept
	// beside the directory so that save and push send the very bytes the
	// image was made of.
	Blob     BlobInfo
	dir      string
	blobFile string // the staged blob: <staging>/<CacheID>.blob
	kept     string // verified/<CacheID> when the layer was kept (KeepVerified)
}

// LayerSource describes an image layer blob to stage.
type LayerSource struct {
	ChainID string
	// Digest and Size are the blob's as the manifest names it ("" and -1
	// when the archive format does not say, as old docker save archives):
	// the bytes read must match them.
	Digest string
	Size   int64
	// DiffID is what the config says the uncompressed tar hashes to.
	DiffID string
	// CacheID, when set (32 hex), is the directory the layer is staged
	// in, chosen by the caller so that an intent can name it before the
	// layer lands; otherwise a random one.
	CacheID string
}

// Flat stages a rootfs tar (plain or gzip) as the flat import reads it:
// device nodes refused, ".wh." names kept as the files they are.
func (st *Staging) Flat(ctx context.Context, r io.Reader) (StagedLayer, error) {
	l, err := st.extract(ctx, r, "", streamOptions{gzipOnly: true, blobSize: -1})
	if err == nil {
		l.ChainID = l.DiffID
	}
	return l, err
}

// Layer stages one image layer blob: plain, gzip or zstd (told apart by
// magic bytes), OCI whiteouts (".wh.<name>", ".wh..wh..opq") made overlay
// whiteouts, and checked against src: the blob's digest and size when
// known, and the diffID of the uncompressed tar. A mismatch is
// ErrInvalidArgument and leaves nothing.
func (st *Staging) Layer(ctx context.Context, r io.Reader, src LayerSource) (StagedLayer, error) {
	if src.DiffID == "" || src.ChainID == "" {
		return StagedLayer{}, fmt.Errorf("stage layer: diffID and chainID are required: %w", errdefs.ErrInvalidArgument)
	}
	l, err := st.extract(ctx, r, src.CacheID, streamOptions{whiteouts: true, blobDigest: src.Digest, blobSize: src.Size})
	if err != nil {
		return StagedLayer{}, err
	}
	if l.DiffID != src.DiffID {
		l.discard()
		return StagedLayer{}, fmt.Errorf("layer %s: the uncompressed tar hashes to %s, the config says %s: %w", src.Digest, l.DiffID, src.DiffID, errdefs.ErrInvalidArgument)
	}
	l.ChainID = src.ChainID
	return l, nil
}

func (st *Staging) extract(ctx context.Context, r io.Reader, cacheID string, so streamOptions) (StagedLayer, error) {
	if cacheID == "" {
		var err error
		if cacheID, err = newCacheID(); err != nil {
			return StagedLayer{}, err
		}
	} else if !cacheIDPattern.MatchString(cacheID) {
		return StagedLayer{}, fmt.Errorf("cache id %s: %w", errdefs.Quote(cacheID), errdefs.ErrInvalidArgument)
	}
	dir := filepath.Join(st.dir, cacheID)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return StagedLayer{}, err
	}
	l := StagedLayer{CacheID: cacheID, dir: dir, blobFile: dir + ".blob"}
	f, err := os.OpenFile(l.blobFile, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		l.discard()
		return StagedLayer{}, err
	}
	blob := &spaceWriter{f: f, space: st.space}
	// Layers staged in parallel share the limits: each may use what the
	// others had not used when it started, and the sum is checked after.
	st.mu.Lock()
	opts := st.opts
	opts.MaxBytes -= st.bytes
	opts.MaxEntries -= st.entries
	st.mu.Unlock()
	// The blob is kept as it was read: extractStream reads every byte of
	// it (it checks the blob digest over all of them).
	res, err := extractStream(ctx, dir, io.TeeReader(r, blob), opts, st.s.root, st.space, so)
	st.mu.Lock()
	st.bytes += res.size
	st.entries += res.entries
	if err == nil && st.bytes > st.opts.MaxBytes {
		err = fmt.Errorf("uncompressed size exceeds %d bytes: %w", st.opts.MaxBytes, errdefs.ErrResourceExhausted)
	}
	st.mu.Unlock()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		// One syncfs makes the files and the blob durable.
		err = syncDir(dir, true)
	}
	if err != nil {
		l.discard()
		return StagedLayer{}, err
	}
	l.DiffID, l.Size = res.diffID, res.size
	l.Blob = BlobInfo{Digest: res.blobDigest, Size: res.blobSize, MediaType: res.compression.mediaType()}
	return l, nil
}

// discard removes a staged layer's directory and blob.
func (l StagedLayer) discard() {
	os.RemoveAll(l.dir)
	if l.blobFile != "" {
		os.Remove(l.blobFile)
	}
}

// InstallLayers moves staged layers into layers/<cacheID> and makes the
// renames durable. They are not registered: until a record names them,
// Open deletes them as orphans (and RemoveFreedLayers may delete them).
// A layer already installed is skipped, so it may run again.
func (s *Store) InstallLayers(layers []StagedLayer) error {
	for _, l := range layers {
		if l.blobFile != "" {
			if err := os.Rename(l.blobFile, s.blobPath(l.CacheID)); err != nil {
				if _, serr := os.Lstat(s.blobPath(l.CacheID)); serr != nil {
					return fmt.Errorf("move layer blob into place: %w", err)
				}
			}
		}
		final := s.layerDir(l.CacheID)
		if err := os.Rename(l.dir, final); err != nil {
			if _, serr := os.Lstat(final); serr == nil {
				continue
			}
			return fmt.Errorf("move layer into place: %w", err)
		}
	}
	if err := syncDir(s.blobsDir, false); err != nil {
		return err
	}
	if err := syncDir(s.layersDir, false); err != nil {
		return err
	}
	// A kept layer's marker goes once its layer is in place (a crash
	// before leaves a marker without a layer: incomplete, swept by Open).
	var kept []string
	for _, l := range layers {
		if l.kept != "" {
			if err := os.RemoveAll(l.kept); err != nil {
				return fmt.Errorf("remove verified layer marker: %w", err)
			}
			kept = append(kept, l.CacheID)
		}
	}
	s.ReleaseVerified(kept)
	return nil
}

// LayerDirExists reports whether layers/<cacheID> is on disk.
func (s *Store) LayerDirExists(cacheID string) (bool, error) {
	if !cacheIDPattern.MatchString(cacheID) {
		return false, fmt.Errorf("cache id %s: %w", errdefs.Quote(cacheID), errdefs.ErrInvalidArgument)
	}
	_, err := os.Lstat(s.layerDir(cacheID))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// RemoveUnregisteredLayers deletes the directories layers/<cacheID> of
// those cacheIDs no layer record names: what an interrupted load or
// import installed. A registered one is left alone.
func (s *Store) RemoveUnregisteredLayers(cacheIDs []string) error {
	referenced := map[string]bool{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return layersBucket(tx).ForEach(func(_, v []byte) error {
			var rec layerRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return err
			}
			referenced[rec.CacheID] = true
			return nil
		})
	})
	if err != nil {
		return err
	}
	for _, id := range cacheIDs {
		if !cacheIDPattern.MatchString(id) {
			return fmt.Errorf("cache id %s: %w", errdefs.Quote(id), errdefs.ErrInvalidArgument)
		}
		if referenced[id] {
			continue
		}
		if err := s.removeLayerFiles(id); err != nil {
			return err
		}
		if err := os.RemoveAll(s.verifiedDir(id)); err != nil {
			return err
		}
	}
	s.ReleaseVerified(cacheIDs)
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

// streamOptions say how one layer stream is read.
type streamOptions struct {
	// gzipOnly: a flat import, which reads plain or gzip tars and nothing
	// else; otherwise zstd too.
	gzipOnly bool
	// whiteouts: OCI whiteouts become overlay whiteouts (image layers).
	whiteouts bool
	// blobDigest and blobSize, when set ("" / -1: unknown), are checked
	// against the raw bytes read.
	blobDigest string
	blobSize   int64
}

// streamResult is what one layer stream held.
type streamResult struct {
	diffID  string
	size    int64 // uncompressed
	entries int
	// The blob as read: its digest, size and compression.
	blobDigest  string
	blobSize    int64
	compression compression
}

// zstdMaxWindow bounds the window a zstd frame may ask for, and with it
// the memory a hostile layer can make the decoder take.
const zstdMaxWindow = 128 << 20

// extractStream decompresses if needed, hashes the uncompressed stream and
// extracts it into root. It returns the diffID and the uncompressed size.
func extractStream(ctx context.Context, root string, r io.Reader, opts ImportOptions, owner bool, space *spaceGuard, so streamOptions) (streamResult, error) {
	var res streamResult
	src := &sourceReader{ctx: ctx, r: r}
	blob := &blobReader{r: src, h: sha256.New()}
	br := bufio.NewReaderSize(blob, 64<<10)
	var plain io.Reader = br
	compression, err := detectCompression(br, so.gzipOnly)
	if err != nil {
		return res, classify(err, src, nil)
	}
	res.compression = compression
	switch compression {
	case compressionGzip:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return res, classify(err, src, nil)
		}
		defer zr.Close()
		plain = zr
	case compressionZstd:
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(zstdMaxWindow), zstd.WithDecoderLowmem(true))
		if err != nil {
			return res, classify(err, src, nil)
		}
		defer zr.Close()
		plain = zr
	}
	h := sha256.New()
	lim := &limitReader{r: plain, h: h, max: opts.MaxBytes, space: space}

	x, err := newExtractor(root, owner)
	if err != nil {
		return res, err
	}
	defer x.close()
	x.whiteouts = so.whiteouts

	tr := tar.NewReader(lim)
	for {
		start := lim.n
		hdr, err := tr.Next()
		if err == io.EOF {
			if lim.n == 0 {
				return res, fmt.Errorf("empty input, not a tar: %w", errdefs.ErrInvalidArgument)
			}
			if !lim.endOfArchive(start) {
				return res, fmt.Errorf("truncated tar: the stream ends after %d bytes without an end-of-archive marker: %w", lim.n, errdefs.ErrInvalidArgument)
			}
			break
		}
		if err != nil {
			return res, classify(err, src, lim)
		}
		res.entries++
		if res.entries > opts.MaxEntries {
			return res, fmt.Errorf("more than %d entries: %w", opts.MaxEntries, errdefs.ErrResourceExhausted)
		}
		if err := x.entry(hdr, tr); err != nil {
			return res, classify(err, src, lim)
		}
		// Read what the entry did not, so the next Next reads only the
		// padding and headers that endOfArchive accounts for.
		if _, err := io.Copy(io.Discard, tr); err != nil {
			return res, classify(err, src, lim)
		}
	}
	// diffID covers the whole uncompressed stream, including the zero
	// padding after the end-of-archive marker that tar.Reader leaves unread.
	if _, err := io.Copy(io.Discard, lim); err != nil {
		return res, classify(err, src, lim)
	}
	// And the blob digest covers every byte of the blob, whatever the
	// decompressor left unread.
	if _, err := io.Copy(io.Discard, br); err != nil {
		return res, classify(err, src, lim)
	}
	if err := x.finish(); err != nil {
		return res, err
	}
	res.size = lim.n
	if err := blob.check(so.blobDigest, so.blobSize); err != nil {
		return res, err
	}
	res.blobDigest = digest.NewDigestFromBytes(digest.SHA256, blob.h.Sum(nil)).String()
	res.blobSize = blob.n
	res.diffID = digest.NewDigestFromBytes(digest.SHA256, h.Sum(nil)).String()
	return res, nil
}

// blobReader counts and hashes the raw bytes of a layer blob.
type blobReader struct {
	r io.Reader
	h hash.Hash
	n int64
}

func (b *blobReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.n += int64(n)
	b.h.Write(p[:n])
	return n, err
}

// check compares what was read with the digest and size the manifest
// names (when it names them).
func (b *blobReader) check(want string, size int64) error {
	if size >= 0 && b.n != size {
		return fmt.Errorf("layer blob %s is %d bytes, the manifest says %d: %w", want, b.n, size, errdefs.ErrInvalidArgument)
	}
	if want == "" {
		return nil
	}
	d, err := digest.Parse(want)
	if err != nil || d.Algorithm() != digest.SHA256 {
		return fmt.Errorf("layer digest %s: want sha256:<64 hex>: %w", errdefs.Quote(want), errdefs.ErrInvalidArgument)
	}
	if got := digest.NewDigestFromBytes(digest.SHA256, b.h.Sum(nil)); got != d {
		return fmt.Errorf("layer blob hashes to %s, the manifest names %s: %w", got, d, errdefs.ErrInvalidArgument)
	}
	return nil
}

type compression int

const (
	compressionNone compression = iota
	compressionGzip
	compressionZstd
)

var (
	zstdMagic  = []byte{0x28, 0xb5, 0x2f, 0xfd}
	xzMagic    = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
	bzip2Magic = []byte("BZh")
)

// detectCompression tells gzip and zstd by their magic bytes and refuses
// the compressions we do not read (zstd too for a flat import), with a
// clearer message than "corrupt tar".
func detectCompression(br *bufio.Reader, gzipOnly bool) (compression, error) {
	head, err := br.Peek(6)
	if err != nil && err != io.EOF {
		return compressionNone, err
	}
	switch {
	case len(head) >= 2 && head[0] == 0x1f && head[1] == 0x8b:
		return compressionGzip, nil
	case bytes.HasPrefix(head, zstdMagic) && !gzipOnly:
		return compressionZstd, nil
	case bytes.HasPrefix(head, zstdMagic), bytes.HasPrefix(head, xzMagic), bytes.HasPrefix(head, bzip2Magic):
		if gzipOnly {
			return compressionNone, fmt.Errorf("only plain or gzip-compressed tars are supported: %w", errdefs.ErrInvalidArgument)
		}
		return compressionNone, fmt.Errorf("only plain, gzip or zstd layers are supported: %w", errdefs.ErrInvalidArgument)
	}
	return compressionNone, nil
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
	if isZstdError(err) {
		return fmt.Errorf("corrupt zstd stream: %v: %w", err, errdefs.ErrInvalidArgument)
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

	space    *spaceGuard
	spaceErr error

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
	if l.space != nil {
		if l.spaceErr = l.space.wrote(int64(n)); l.spaceErr != nil {
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
	// written counts the bytes written since the last look (extracted
	// files and kept blobs alike, of every layer staged at once).
	mu      sync.Mutex
	written int64
}

// wrote counts n bytes written and looks at the free space every
// spaceCheckEvery bytes.
func (g *spaceGuard) wrote(n int64) error {
	g.mu.Lock()
	g.written += n
	look := g.written >= spaceCheckEvery
	if look {
		g.written = 0
	}
	g.mu.Unlock()
	if !look {
		return nil
	}
	return g.check()
}

// spaceWriter writes a kept blob, counting its bytes against the reserve.
type spaceWriter struct {
	f     *os.File
	space *spaceGuard
}

func (w *spaceWriter) Write(p []byte) (int, error) {
	if err := w.space.wrote(int64(len(p))); err != nil {
		return 0, err
	}
	return w.f.Write(p)
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
