package layer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/cairn-run/cairn/internal/errdefs"
)

// Mount mounts the container's overlay (lowerdir=<init>:<image layers, top
// first>, upperdir, workdir) on its Rootfs and returns Rootfs. If that exact
// mount point is already mounted it returns without mounting again.
func (s *Store) Mount(mountID string) (string, error) {
	m, err := s.MountInfo(mountID)
	if err != nil {
		return "", fmt.Errorf("mount: %w", err)
	}
	unlock := s.lockMount(mountID)
	defer unlock()
	mounted, err := s.Mounted(mountID)
	if err != nil {
		return "", fmt.Errorf("mount %s: %w", mountID, err)
	}
	if mounted {
		return m.Rootfs, nil
	}
	if err := mountOverlay(m); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return "", fmt.Errorf("mount %s: a layer directory is missing (CreateMount again?): %w", mountID, err)
		}
		return "", fmt.Errorf("mount %s: overlay: %w", mountID, err)
	}
	return m.Rootfs, nil
}

// maxLowerDirs is overlayfs's limit on stacked lower directories
// (OVL_MAX_STACK); the init layer is one of them.
const maxLowerDirs = 500

// MaxImageLayers is the most layers an image may have and still mount.
const MaxImageLayers = maxLowerDirs - 1

// mountOverlay mounts m's overlay on its Rootfs. The legacy mount(2) data
// argument is one page, which a chain of a hundred layers outgrows; then
// the layers go one by one through the new mount API (fsconfig
// "lowerdir+", Linux 6.8), with no limit but overlayfs's own.
func mountOverlay(m Mount) error {
	if len(m.Lower)+1 > maxLowerDirs {
		return fmt.Errorf("%d layers, overlayfs stacks at most %d: %w", len(m.Lower), MaxImageLayers, errdefs.ErrFailedPrecondition)
	}
	if data := overlayOptions(m); len(data) < os.Getpagesize() {
		return unix.Mount("overlay", m.Rootfs, "overlay", 0, data)
	}
	return mountOverlayFsconfig(m)
}

func mountOverlayFsconfig(m Mount) error {
	fsfd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("fsopen (the layers need the new mount API, Linux 5.2+): %w", err)
	}
	defer unix.Close(fsfd)
	for _, dir := range append([]string{m.Init}, m.Lower...) {
		if err := unix.FsconfigSetString(fsfd, "lowerdir+", dir); err != nil {
			return fmt.Errorf("fsconfig lowerdir+ %s (needs Linux 6.8+): %w", dir, err)
		}
	}
	for _, kv := range [][2]string{{"upperdir", m.Upper}, {"workdir", m.Work}} {
		if err := unix.FsconfigSetString(fsfd, kv[0], kv[1]); err != nil {
			return fmt.Errorf("fsconfig %s: %w", kv[0], err)
		}
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return fmt.Errorf("fsconfig create: %w", err)
	}
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("fsmount: %w", err)
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, m.Rootfs, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("move_mount onto %s: %w", m.Rootfs, err)
	}
	return nil
}

func overlayOptions(m Mount) string {
	return "lowerdir=" + strings.Join(append([]string{m.Init}, m.Lower...), ":") +
		",upperdir=" + m.Upper + ",workdir=" + m.Work
}

// Unmount unmounts the container's rootfs; not mounted is not an error. It
// does not need the mount to be registered, so recovery can use it on a
// stale mount point it found with MountedIDs.
func (s *Store) Unmount(mountID string) error {
	if err := validateMountID(mountID); err != nil {
		return fmt.Errorf("unmount: %w", err)
	}
	unlock := s.lockMount(mountID)
	defer unlock()
	return s.unmountLocked(mountID)
}

// unmountLocked is Unmount with the mount id's lock held. It returns nil
// only once nothing is mounted on merged/ any more.
func (s *Store) unmountLocked(mountID string) error {
	target := filepath.Join(s.mountDir(mountID), "merged")
	// Loop: peel off mounts stacked on the same point, if any. Asking
	// Mounted first (two lstats when not mounted) also keeps an unprivileged
	// caller from getting EPERM for a mount that is not there.
	for range 16 {
		mounted, err := s.Mounted(mountID)
		if err != nil || !mounted {
			return err
		}
		err = unix.Unmount(target, 0)
		if errors.Is(err, unix.EBUSY) {
			// A process still has a file open or its cwd in there; detach
			// so the name is free now and the kernel finishes later.
			err = unix.Unmount(target, unix.MNT_DETACH)
		}
		if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("unmount %s: %w", mountID, err)
		}
	}
	return fmt.Errorf("unmount %s: still mounted after 16 unmounts", mountID)
}

// Mounted reports whether something is mounted on the mount's Rootfs.
//
// Fast path: when merged/ has the same st_dev as its parent nothing is
// mounted on it (an overlay always has its own device), which spares reading
// a mountinfo that grows with the number of containers on every start. Only
// a bind mount of the same file system onto merged/ would fool it, and
// nothing makes one. Otherwise the mount table decides (read and unescaped
// by moby/sys/mountinfo, so a path with a space, "\040" there, matches).
func (s *Store) Mounted(mountID string) (bool, error) {
	if err := validateMountID(mountID); err != nil {
		return false, err
	}
	target := filepath.Join(s.mountDir(mountID), "merged")
	var st, parent unix.Stat_t
	if err := unix.Lstat(target, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, fmt.Errorf("stat %s: %w", target, err)
	}
	if err := unix.Lstat(s.mountDir(mountID), &parent); err != nil {
		return false, fmt.Errorf("stat %s: %w", s.mountDir(mountID), err)
	}
	if st.Dev == parent.Dev {
		return false, nil
	}
	return isMountPoint(target)
}

// isMountPoint reports whether path is a mount point in this process's
// mount table.
func isMountPoint(path string) (bool, error) {
	infos, err := mountinfo.GetMounts(mountinfo.SingleEntryFilter(path))
	if err != nil {
		return false, fmt.Errorf("read mountinfo: %w", err)
	}
	return len(infos) > 0, nil
}

// MountedIDs lists the mount ids whose Rootfs (<dir>/mounts/<id>/merged) is
// a mount point now, according to /proc/self/mountinfo, registered or not.
// Recovery compares it with the journal to find stale mounts.
func (s *Store) MountedIDs() (map[string]bool, error) {
	return mountedIDsIn(s.mountsDir)
}

// mountedIDsIn lists the mount ids whose <dir>/<id>/merged is a mount point.
func mountedIDsIn(dir string) (map[string]bool, error) {
	infos, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	ids := map[string]bool{}
	for _, info := range infos {
		if id, ok := mountIDFromRootfs(dir+"/", info.Mountpoint); ok {
			ids[id] = true
		}
	}
	return ids, nil
}

// mountIDFromRootfs recognises "<prefix><64 hex>/merged".
func mountIDFromRootfs(prefix, mountPoint string) (string, bool) {
	rest, ok := strings.CutPrefix(mountPoint, prefix)
	if !ok {
		return "", false
	}
	id, ok := strings.CutSuffix(rest, "/merged")
	if !ok || validateMountID(id) != nil {
		return "", false
	}
	return id, true
}

// lockMount serialises Mount and Unmount of one mount id, so two concurrent
// Mount calls cannot both see "not mounted" and stack two overlays. Different
// ids never wait for each other.
func (s *Store) lockMount(id string) (unlock func()) {
	s.mu.Lock()
	if s.mountLocks == nil {
		s.mountLocks = map[string]*idLock{}
	}
	l := s.mountLocks[id]
	if l == nil {
		l = &idLock{}
		s.mountLocks[id] = l
	}
	l.users++
	s.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		s.mu.Lock()
		l.users--
		if l.users == 0 {
			delete(s.mountLocks, id)
		}
		s.mu.Unlock()
	}
}

type idLock struct {
	mu    sync.Mutex
	users int // guarded by Store.mu
}
