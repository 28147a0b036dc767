package volumes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"

	"github.com/cairn-run/cairn/internal/errdefs"
	sm "github.com/cairn-run/cairn/statemachine"
)

// PrepareMounts implements statemachine.ContainerVolumes: every bind's
// source is checked first (absolute, must exist), so a refused create
// changes nothing; then the named volumes that do not exist are made and
// each anonymous mount gets a new volume, every one journaled. The undo
// removes the volumes this call made.
func (s *Service) PrepareMounts(ctx context.Context, mounts []sm.Mount) ([]sm.Mount, func(), error) {
	for _, m := range mounts {
		if m.Type != sm.MountBind {
			continue
		}
		if !filepath.IsAbs(m.Source) {
			return nil, nil, fmt.Errorf("bind source %s is not an absolute path: %w", errdefs.Quote(m.Source), errdefs.ErrInvalidArgument)
		}
		if _, err := os.Stat(m.Source); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, nil, fmt.Errorf("bind source path does not exist: %s: %w", errdefs.Quote(m.Source), errdefs.ErrInvalidArgument)
			}
			return nil, nil, fmt.Errorf("bind source %s: %w", errdefs.Quote(m.Source), err)
		}
	}
	out := make([]sm.Mount, len(mounts))
	var made []string
	undo := func() {
		for _, name := range made {
			_, _ = s.Remove(context.WithoutCancel(ctx), name, true)
		}
	}
	for i, m := range mounts {
		if m.Type == sm.MountVolume && m.Source == "" {
			m.Source, m.Anonymous = NewAnonymousName(), true
		}
		out[i] = m
		if m.Type != sm.MountVolume {
			continue
		}
		created, err := s.Ensure(ctx, m.Source, sm.VolumeSpec{Anonymous: m.Anonymous})
		if err != nil {
			undo()
			return nil, nil, err
		}
		if created {
			made = append(made, m.Source)
		}
	}
	return out, undo, nil
}

// RemoveAnonymous implements statemachine.ContainerVolumes: it removes the
// volumes named that are anonymous (a named one is never removed this way)
// and no container uses any more.
func (s *Service) RemoveAnonymous(ctx context.Context, names []string) error {
	var errs []error
	for _, name := range names {
		if v, ok := s.Journal.Volume(name); !ok || !v.Anonymous {
			continue
		}
		if _, err := s.Remove(ctx, name, true); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Populate copies what the image has at dst (inside rootfs, the
// container's mounted root) into volume name when the volume is empty, as
// Docker fills a new volume on first use. The copy is made beside _data
// and renamed over it (empty), so a crash never leaves a half-filled
// volume: it is empty, and filled at the next start.
func (s *Service) Populate(name, rootfs, dst string) error {
	data := s.Mountpoint(name)
	empty, err := isEmptyDir(data)
	if err != nil || !empty {
		return err
	}
	src, err := securejoin.SecureJoin(rootfs, dst)
	if err != nil {
		return err
	}
	fi, err := os.Lstat(src)
	if errors.Is(err, fs.ErrNotExist) || err == nil && !fi.IsDir() {
		return nil // nothing to copy
	}
	if err != nil {
		return err
	}
	if empty, err := isEmptyDir(src); err != nil || empty {
		return err
	}
	tmp := filepath.Join(s.dir(name), ".populate")
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	if err := copyTree(src, tmp); err != nil {
		_ = os.RemoveAll(tmp)
		return fmt.Errorf("populate volume %s from the image's %s: %w", name, dst, err)
	}
	// rename(2) replaces an empty directory (os.Rename refuses any).
	if err := unix.Rename(tmp, data); err != nil {
		_ = os.RemoveAll(tmp)
		return fmt.Errorf("populate volume %s: %w", name, err)
	}
	return nil
}

func isEmptyDir(dir string) (bool, error) {
	f, err := os.Open(dir)
	if err != nil {
		return false, err
	}
	defer f.Close()
	_, err = f.Readdirnames(1)
	if errors.Is(err, io.EOF) {
		return true, nil
	}
	return false, err
}

// copyTree copies directory src to dst (which must not exist): regular
// files, directories and symlinks (as links, never followed), with their
// modes and owners; anything else (devices, sockets) is skipped.
func copyTree(src, dst string) error {
	type dirMode struct {
		path string
		mode fs.FileMode
	}
	var dirs []dirMode // given their modes last: a read-only directory is still filled
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		st, _ := info.Sys().(*syscall.Stat_t)
		switch {
		case info.IsDir():
			if err := os.Mkdir(target, 0o700); err != nil {
				return err
			}
			dirs = append(dirs, dirMode{target, info.Mode()})
		case info.Mode()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := os.Symlink(link, target); err != nil {
				return err
			}
		case info.Mode().IsRegular():
			if err := copyFile(p, target, info.Mode().Perm()); err != nil {
				return err
			}
		default:
			return nil
		}
		if st != nil {
			if err := os.Lchown(target, int(st.Uid), int(st.Gid)); err != nil {
				return err
			}
		}
		if info.Mode().IsRegular() {
			return os.Chmod(target, info.Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := os.Chmod(dirs[i].path, dirs[i].mode&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
