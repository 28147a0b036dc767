package layer

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cairn-run/cairn/internal/errdefs"
)

// extractor writes tar entries under one layer root. Every file system call
// is made relative to a parent directory fd opened with RESOLVE_BENEATH and
// RESOLVE_NO_SYMLINKS, on a last component that is either not followed
// (O_NOFOLLOW, AT_SYMLINK_NOFOLLOW, mkdirat, symlinkat, linkat) or known to
// be a directory or fifo this extractor just made (fchmodat, whose no-follow
// flag needs Linux 6.6). So even a mistake in the lexical checks of
// tarsafe.go cannot make it write outside the root.
type extractor struct {
	rootFD int  // O_PATH fd of the layer root
	owner  bool // apply uid/gid and file capabilities (running as root)
	// whiteouts: OCI whiteout entries (an image layer's) become overlay
	// whiteouts; otherwise (a flat rootfs) they are the files they are.
	whiteouts bool
	tree      map[string]entryKind

	dirs   []dirMeta      // metadata applied in finish, after all children exist
	dirIdx map[string]int // name -> index in dirs

	// One cached parent fd: tars list a directory's entries together, so
	// this saves an openat2 for almost every entry.
	cacheDir string
	cacheFD  int

	buf []byte
}

type dirMeta struct {
	name     string
	implicit bool // created as a missing parent: 0755, no tar metadata
	mode     uint32
	uid, gid int
	atime    time.Time
	mtime    time.Time
}

func newExtractor(root string, owner bool) (*extractor, error) {
	fd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open layer root: %w", err)
	}
	x := &extractor{
		rootFD:  fd,
		owner:   owner,
		tree:    map[string]entryKind{".": kindDir},
		dirIdx:  map[string]int{},
		cacheFD: -1,
		buf:     make([]byte, 256<<10),
	}
	// The root gets 0755 unless the tar says otherwise ("./" entry).
	x.setDirMeta(dirMeta{name: ".", implicit: true})
	return x, nil
}

func (x *extractor) close() {
	if x.cacheFD >= 0 {
		unix.Close(x.cacheFD)
		x.cacheFD = -1
	}
	unix.Close(x.rootFD)
}

// dirFD returns an fd for the layer-relative directory rel, owned by the
// extractor (do not close it).
func (x *extractor) dirFD(rel string) (int, error) {
	if rel == "." {
		return x.rootFD, nil
	}
	if x.cacheFD >= 0 && x.cacheDir == rel {
		return x.cacheFD, nil
	}
	fd, err := openBeneath(x.rootFD, rel)
	if err != nil {
		return -1, err
	}
	if x.cacheFD >= 0 {
		unix.Close(x.cacheFD)
	}
	x.cacheDir, x.cacheFD = rel, fd
	return fd, nil
}

var openat2Missing atomic.Bool

// openBeneath opens the directory rel below rootFD without following any
// symlink, on any component.
func openBeneath(rootFD int, rel string) (int, error) {
	if !openat2Missing.Load() {
		fd, err := unix.Openat2(rootFD, rel, &unix.OpenHow{
			Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
		})
		if err == nil {
			return fd, nil
		}
		if !errors.Is(err, unix.ENOSYS) {
			return -1, fmt.Errorf("open %s in layer: %w", errdefs.Quote(rel), err)
		}
		openat2Missing.Store(true) // kernel < 5.6: walk instead
	}
	fd := rootFD
	for _, c := range splitPath(rel) {
		next, err := unix.Openat(fd, c, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if fd != rootFD {
			unix.Close(fd)
		}
		if err != nil {
			return -1, fmt.Errorf("open %s in layer: %w", errdefs.Quote(rel), err)
		}
		fd = next
	}
	return fd, nil
}

func splitPath(rel string) []string {
	var out []string
	for len(rel) > 0 {
		i := 0
		for i < len(rel) && rel[i] != '/' {
			i++
		}
		out = append(out, rel[:i])
		if i == len(rel) {
			break
		}
		rel = rel[i+1:]
	}
	return out
}

func (x *extractor) setDirMeta(m dirMeta) {
	if i, ok := x.dirIdx[m.name]; ok {
		x.dirs[i] = m
		return
	}
	x.dirIdx[m.name] = len(x.dirs)
	x.dirs = append(x.dirs, m)
}

// entry extracts one tar entry; r yields its content. All refusals happen
// before the entry's first side effect.
func (x *extractor) entry(hdr *tar.Header, r io.Reader) error {
	name, err := cleanEntryName(hdr.Name)
	if err != nil {
		return err
	}
	if x.whiteouts && hdr.Typeflag != tar.TypeXGlobalHeader {
		if handled, err := x.whiteout(name, hdr); handled || err != nil {
			return err
		}
	}
	kind, skip, err := kindOf(hdr)
	if err != nil || skip {
		return err
	}
	if err := checkOwner(hdr); err != nil {
		return err
	}
	if name == "." {
		if kind != kindDir {
			return refuse(hdr.Name, "only a directory may be the layer root")
		}
		x.setDirMeta(metaOf(".", hdr))
		return nil
	}
	missing, err := checkParents(x.tree, name)
	if err != nil {
		return err
	}
	var linkTarget string
	switch hdr.Typeflag {
	case tar.TypeSymlink:
		err = checkSymlink(name, hdr.Linkname)
	case tar.TypeLink:
		linkTarget, err = checkHardlink(x.tree, name, hdr.Linkname)
	}
	if err != nil {
		return err
	}
	unlinkFirst, err := checkReplace(x.tree[name], kind, name)
	if err != nil {
		return err
	}

	for _, m := range missing {
		pfd, err := x.dirFD(path.Dir(m))
		if err != nil {
			return err
		}
		if err := unix.Mkdirat(pfd, path.Base(m), 0o755); err != nil {
			return fmt.Errorf("extract %s: mkdir %s: %w", errdefs.Quote(hdr.Name), errdefs.Quote(m), err)
		}
		x.tree[m] = kindDir
		x.setDirMeta(dirMeta{name: m, implicit: true})
	}
	pfd, err := x.dirFD(path.Dir(name))
	if err != nil {
		return err
	}
	base := path.Base(name)
	if unlinkFirst {
		if err := unix.Unlinkat(pfd, base, 0); err != nil {
			return fmt.Errorf("extract %s: replace: %w", errdefs.Quote(hdr.Name), err)
		}
		delete(x.tree, name)
	}

	switch hdr.Typeflag {
	case tar.TypeDir:
		if x.tree[name] == kindNone {
			// 0700 until finish applies the real mode, so a read-only
			// directory cannot block its own children.
			if err := unix.Mkdirat(pfd, base, 0o700); err != nil {
				return fmt.Errorf("extract %s: mkdir: %w", errdefs.Quote(hdr.Name), err)
			}
		}
		x.setDirMeta(metaOf(name, hdr))
	case tar.TypeReg:
		err = x.regular(pfd, base, hdr, r)
	case tar.TypeSymlink:
		if err = unix.Symlinkat(hdr.Linkname, pfd, base); err == nil {
			err = x.lmeta(pfd, base, hdr)
		}
	case tar.TypeLink:
		err = x.hardlink(pfd, base, linkTarget, name)
	case tar.TypeFifo:
		if err = unix.Mknodat(pfd, base, unix.S_IFIFO|0o600, 0); err == nil {
			err = x.fmeta(pfd, base, hdr)
		}
	}
	if err != nil {
		return fmt.Errorf("extract %s: %w", errdefs.Quote(hdr.Name), err)
	}
	x.tree[name] = kind
	return nil
}

// OCI whiteouts (image-spec layer.md): ".wh.<name>" deletes <name> of the
// layers below, ".wh..wh..opq" hides everything below in its directory.
// Overlayfs says the same with a character device 0/0 at <name> and the
// xattr trusted.overlay.opaque=y on the directory, so that is what they
// become. Other ".wh..wh." names are aufs bookkeeping and are skipped, as
// Docker and containerd do.
const (
	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh."
	whiteoutOpaque = ".wh..wh..opq"
	opaqueXattr    = "trusted.overlay.opaque"
)

// whiteout handles name if it is a whiteout entry. Like every entry, a
// whiteout refuses before its first side effect: a whiteout of something
// this same layer adds, a name that is no name (".wh.", ".wh.."), a
// directory called .wh.<x>, a parent that is not a directory.
func (x *extractor) whiteout(name string, hdr *tar.Header) (bool, error) {
	base := path.Base(name)
	if !strings.HasPrefix(base, whiteoutPrefix) {
		return false, nil
	}
	if hdr.Typeflag == tar.TypeDir {
		return true, refuse(hdr.Name, "a whiteout cannot be a directory")
	}
	if !x.owner {
		return true, refuse(hdr.Name, "overlay whiteouts can only be made as root")
	}
	parent := path.Dir(name)
	if base == whiteoutOpaque {
		if err := x.makeParents(hdr, name); err != nil {
			return true, err
		}
		fd, err := x.openDirRDONLY(parent)
		if err != nil {
			return true, fmt.Errorf("extract %s: %w", errdefs.Quote(hdr.Name), err)
		}
		defer unix.Close(fd)
		if err := unix.Fsetxattr(fd, opaqueXattr, []byte("y"), 0); err != nil {
			return true, fmt.Errorf("extract %s: mark %s opaque: %w", errdefs.Quote(hdr.Name), errdefs.Quote(parent), err)
		}
		return true, nil
	}
	if strings.HasPrefix(base, whiteoutMeta) {
		return true, nil
	}
	hidden := base[len(whiteoutPrefix):]
	if hidden == "" || hidden == "." || hidden == ".." {
		return true, refuse(hdr.Name, "a whiteout must name a file")
	}
	target := path.Join(parent, hidden)
	if x.tree[target] != kindNone {
		return true, refuse(hdr.Name, "whiteout of %s, which this same layer adds", errdefs.Quote(target))
	}
	if err := x.makeParents(hdr, target); err != nil {
		return true, err
	}
	pfd, err := x.dirFD(parent)
	if err != nil {
		return true, err
	}
	if err := unix.Mknodat(pfd, hidden, unix.S_IFCHR, 0); err != nil {
		return true, fmt.Errorf("extract %s: whiteout: %w", errdefs.Quote(hdr.Name), err)
	}
	x.tree[target] = kindWhiteout
	return true, nil
}

// makeParents creates the missing directories above name, refusing a
// parent that is not a directory.
func (x *extractor) makeParents(hdr *tar.Header, name string) error {
	missing, err := checkParents(x.tree, name)
	if err != nil {
		return err
	}
	for _, m := range missing {
		pfd, err := x.dirFD(path.Dir(m))
		if err != nil {
			return err
		}
		if err := unix.Mkdirat(pfd, path.Base(m), 0o755); err != nil {
			return fmt.Errorf("extract %s: mkdir %s: %w", errdefs.Quote(hdr.Name), errdefs.Quote(m), err)
		}
		x.tree[m] = kindDir
		x.setDirMeta(dirMeta{name: m, implicit: true})
	}
	return nil
}

// openDirRDONLY opens the layer directory rel for reading (an O_PATH fd
// cannot carry xattrs), without following a symlink on any component.
func (x *extractor) openDirRDONLY(rel string) (int, error) {
	pfd, err := x.dirFD(rel)
	if err != nil {
		return -1, err
	}
	return unix.Openat(pfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
}

// writerOnly hides *os.File's ReadFrom so io.CopyBuffer uses our buffer.
type writerOnly struct{ io.Writer }

func (x *extractor) regular(pfd int, base string, hdr *tar.Header, r io.Reader) error {
	fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	f := os.NewFile(uintptr(fd), base)
	err = x.fillRegular(f, fd, hdr, r)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close: %w", cerr)
	}
	if err != nil {
		return err
	}
	return utimes(pfd, base, hdr)
}

func (x *extractor) fillRegular(f *os.File, fd int, hdr *tar.Header, r io.Reader) error {
	if _, err := io.CopyBuffer(writerOnly{f}, r, x.buf); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	// chown before chmod: chown clears setuid/setgid.
	if x.owner {
		if err := unix.Fchown(fd, hdr.Uid, hdr.Gid); err != nil {
			return fmt.Errorf("chown: %w", err)
		}
	}
	if err := unix.Fchmod(fd, perm(hdr)); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	// File capabilities (e.g. ping's cap_net_raw) are part of a rootfs; no
	// other xattr is applied — trusted.overlay.* in particular would let a
	// tar forge overlay metadata. Set last: chown clears it.
	if cap, ok := hdr.PAXRecords["SCHILY.xattr.security.capability"]; ok && x.owner {
		if err := unix.Fsetxattr(fd, "security.capability", []byte(cap), 0); err != nil {
			if errors.Is(err, unix.EINVAL) {
				return refuse(hdr.Name, "invalid security.capability xattr")
			}
			return fmt.Errorf("set file capabilities: %w", err)
		}
	}
	return nil
}

func (x *extractor) hardlink(pfd int, base, target, name string) error {
	tdir := path.Dir(target)
	tfd := pfd
	if tdir != path.Dir(name) {
		if tdir == "." {
			tfd = x.rootFD
		} else {
			fd, err := openBeneath(x.rootFD, tdir)
			if err != nil {
				return err
			}
			defer unix.Close(fd)
			tfd = fd
		}
	}
	// flags 0: never follow a symlink target; a link to a symlink links the
	// symlink itself.
	if err := unix.Linkat(tfd, path.Base(target), pfd, base, 0); err != nil {
		return fmt.Errorf("link to %s: %w", errdefs.Quote(target), err)
	}
	return nil
}

// lmeta applies ownership and times to a symlink (no mode on Linux).
func (x *extractor) lmeta(pfd int, base string, hdr *tar.Header) error {
	if x.owner {
		if err := unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("chown: %w", err)
		}
	}
	return utimes(pfd, base, hdr)
}

// fmeta applies ownership, mode and times to a fifo we just created.
func (x *extractor) fmeta(pfd int, base string, hdr *tar.Header) error {
	if x.owner {
		if err := unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("chown: %w", err)
		}
	}
	if err := unix.Fchmodat(pfd, base, perm(hdr), 0); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	return utimes(pfd, base, hdr)
}

// finish applies directory metadata once every child exists, so creating
// children cannot disturb the mtimes and a read-only mode cannot block them.
func (x *extractor) finish() error {
	for _, d := range x.dirs {
		pfd, base := x.rootFD, "."
		if d.name != "." {
			var err error
			if pfd, err = x.dirFD(path.Dir(d.name)); err != nil {
				return err
			}
			base = path.Base(d.name)
		}
		if d.implicit {
			if err := unix.Fchmodat(pfd, base, 0o755, 0); err != nil {
				return fmt.Errorf("chmod %s: %w", errdefs.Quote(d.name), err)
			}
			continue
		}
		if x.owner {
			if err := unix.Fchownat(pfd, base, d.uid, d.gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return fmt.Errorf("chown %s: %w", errdefs.Quote(d.name), err)
			}
		}
		if err := unix.Fchmodat(pfd, base, d.mode, 0); err != nil {
			return fmt.Errorf("chmod %s: %w", errdefs.Quote(d.name), err)
		}
		ts := []unix.Timespec{timespec(d.atime), timespec(d.mtime)}
		if err := unix.UtimesNanoAt(pfd, base, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("set times of %s: %w", errdefs.Quote(d.name), err)
		}
	}
	return nil
}

func metaOf(name string, hdr *tar.Header) dirMeta {
	return dirMeta{name: name, mode: perm(hdr), uid: hdr.Uid, gid: hdr.Gid, atime: atimeOf(hdr), mtime: hdr.ModTime}
}

// perm keeps the permission bits including setuid, setgid and sticky.
func perm(hdr *tar.Header) uint32 { return uint32(hdr.Mode) & 0o7777 }

func atimeOf(hdr *tar.Header) time.Time {
	if hdr.AccessTime.IsZero() {
		return hdr.ModTime
	}
	return hdr.AccessTime
}

func utimes(pfd int, base string, hdr *tar.Header) error {
	ts := []unix.Timespec{timespec(atimeOf(hdr)), timespec(hdr.ModTime)}
	if err := unix.UtimesNanoAt(pfd, base, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

// timespec avoids UnixNano, which overflows outside 1678..2262.
func timespec(t time.Time) unix.Timespec {
	return unix.Timespec{Sec: t.Unix(), Nsec: int64(t.Nanosecond())}
}
