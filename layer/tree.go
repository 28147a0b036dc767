package layer

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cairn-run/cairn/internal/errdefs"
)

// DiffTar writes the changes of container mount mountID — its RW layer,
// the overlay upper directory — as an image layer tar: files and
// directories as they are there, and overlay's whiteouts turned back into
// OCI ones (a character device 0/0 at <name> becomes ".wh.<name>", a
// directory marked trusted.overlay.opaque=y gets ".wh..wh..opq"). Overlay
// keeps in the upper directory exactly what a container changed, so only
// it is read, as continuity's overlay diff reads it. The container should
// not be writing meanwhile (a running one is read as it is).
func (s *Store) DiffTar(ctx context.Context, mountID string, w io.Writer) error {
	m, err := s.MountInfo(mountID)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	if err := writeTree(ctx, tw, m.Upper, true); err != nil {
		return fmt.Errorf("diff of mount %s: %w", mountID, err)
	}
	return tw.Close()
}

// ExportTar writes the root filesystem of container mount mountID,
// flattened (its layers, the init layer and its RW layer as the container
// sees them), as one tar. It mounts a read-only overlay of them on a
// scratch directory of its own, so the container's own mount is not
// needed and not touched.
func (s *Store) ExportTar(ctx context.Context, mountID string, w io.Writer) error {
	m, err := s.MountInfo(mountID)
	if err != nil {
		return err
	}
	target, err := os.MkdirTemp(s.tmpDir, "export-")
	if err != nil {
		return err
	}
	defer os.Remove(target)
	if err := mountReadOnly(append([]string{m.Upper, m.Init}, m.Lower...), target); err != nil {
		return fmt.Errorf("export of mount %s: %w", mountID, err)
	}
	defer unix.Unmount(target, unix.MNT_DETACH)
	tw := tar.NewWriter(w)
	if err := writeTree(ctx, tw, target, false); err != nil {
		return fmt.Errorf("export of mount %s: %w", mountID, err)
	}
	return tw.Close()
}

// mountReadOnly mounts an overlay of lower directories only (top first),
// read-only, on target.
func mountReadOnly(lower []string, target string) error {
	if len(lower) > maxLowerDirs {
		return fmt.Errorf("%d layers, overlayfs stacks at most %d: %w", len(lower), maxLowerDirs, errdefs.ErrFailedPrecondition)
	}
	if data := "lowerdir=" + strings.Join(lower, ":"); len(data) < os.Getpagesize() {
		return unix.Mount("overlay", target, "overlay", unix.MS_RDONLY, data)
	}
	fsfd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("fsopen: %w", err)
	}
	defer unix.Close(fsfd)
	for _, dir := range lower {
		if err := unix.FsconfigSetString(fsfd, "lowerdir+", dir); err != nil {
			return fmt.Errorf("fsconfig lowerdir+ %s: %w", dir, err)
		}
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return fmt.Errorf("fsconfig create: %w", err)
	}
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_RDONLY)
	if err != nil {
		return fmt.Errorf("fsmount: %w", err)
	}
	defer unix.Close(mfd)
	return unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH)
}

// writeTree writes the tree under root into tw, names relative to root,
// in lexical order, with owners, modes, times, hardlinks (a second name
// of an inode is a link to the first) and file capabilities. With
// whiteouts, overlay whiteouts and opaque directories become OCI ones.
// Sockets are skipped, as tar does.
func writeTree(ctx context.Context, tw *tar.Writer, root string, whiteouts bool) error {
	type inode struct{ dev, ino uint64 }
	seen := map[inode]string{}
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		name := filepath.ToSlash(rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("%s: no stat", name)
		}
		mode := info.Mode()
		if whiteouts && mode&fs.ModeCharDevice != 0 && st.Rdev == 0 {
			dir, base := filepath.Split(name)
			return tw.WriteHeader(&tar.Header{Name: dir + whiteoutPrefix + base, Typeflag: tar.TypeReg, Mode: 0o600,
				ModTime: info.ModTime(), Format: tar.FormatPAX})
		}
		if mode&fs.ModeSocket != 0 {
			return nil
		}
		link := ""
		if mode&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		hdr.Name = name
		if info.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uid, hdr.Gid = int(st.Uid), int(st.Gid)
		hdr.Uname, hdr.Gname = "", ""
		hdr.Format = tar.FormatPAX
		hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
		if mode.IsRegular() && st.Nlink > 1 {
			key := inode{uint64(st.Dev), st.Ino}
			if first, ok := seen[key]; ok {
				hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
			} else {
				seen[key] = name
			}
		}
		if mode&fs.ModeSymlink == 0 {
			if cap, err := lgetxattr(p, "security.capability"); err == nil && len(cap) > 0 {
				hdr.PAXRecords = map[string]string{"SCHILY.xattr.security.capability": string(cap)}
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if info.IsDir() && whiteouts {
			if v, err := lgetxattr(p, opaqueXattr); err == nil && string(v) == "y" {
				if err := tw.WriteHeader(&tar.Header{Name: hdr.Name + whiteoutOpaque, Typeflag: tar.TypeReg, Mode: 0o600,
					ModTime: info.ModTime(), Format: tar.FormatPAX}); err != nil {
					return err
				}
			}
		}
		if hdr.Typeflag != tar.TypeReg {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		n, err := io.Copy(tw, f)
		if err == nil && n != hdr.Size {
			err = fmt.Errorf("%s changed size while being read", name)
		}
		return err
	})
}

// lgetxattr reads an xattr of path without following a symlink; absent is
// an error.
func lgetxattr(path, attr string) ([]byte, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Lgetxattr(path, attr, buf)
		if errors.Is(err, unix.ERANGE) {
			buf = make([]byte, len(buf)*4)
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}

// Diff stages a layer tar made from a container's changes (DiffTar, plain
// or gzip), OCI whiteouts made overlay whiteouts; its diffID is what the
// tar hashes to. The caller sets ChainID.
func (st *Staging) Diff(ctx context.Context, r io.Reader) (StagedLayer, error) {
	return st.extract(ctx, r, "", streamOptions{whiteouts: true, blobSize: -1})
}
