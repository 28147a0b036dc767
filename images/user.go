package images

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"

	"github.com/moby/sys/user"
	"golang.org/x/sys/unix"

	"github.com/cairn-run/cairn/internal/errdefs"
)

// User is a resolved user spec: what the container's process runs as.
type User struct {
	UID, GID       int
	AdditionalGIDs []int
	Home           string
}

// maxUserFileBytes bounds what is read of the container's /etc/passwd and
// /etc/group: they come from the image, which nobody here vouches for.
const maxUserFileBytes = 1 << 20

// ResolveUser resolves a user spec ("name", "uid", "uid:gid",
// "name:group", ...) as Docker does, with moby/sys/user, through the
// /etc/passwd and /etc/group of the container's root filesystem. The
// files are opened inside rootfs (openat2 RESOLVE_IN_ROOT: a symlink in
// the image resolves within it, never to the host's files). A name no
// file knows is ErrInvalidArgument; numeric ids need no entry.
func ResolveUser(rootfs, spec string) (User, error) {
	passwd, err := readInRoot(rootfs, "/etc/passwd")
	if err != nil {
		return User{}, err
	}
	group, err := readInRoot(rootfs, "/etc/group")
	if err != nil {
		return User{}, err
	}
	u, err := user.GetExecUser(spec, &user.ExecUser{Home: "/"}, passwd, group)
	if err != nil {
		return User{}, fmt.Errorf("user %s: %v: %w", errdefs.Quote(spec), err, errdefs.ErrInvalidArgument)
	}
	return User{UID: u.Uid, GID: u.Gid, AdditionalGIDs: u.Sgids, Home: u.Home}, nil
}

// readInRoot reads a file of the root filesystem, or returns a nil reader
// when it does not exist (an image without /etc/passwd takes numeric ids
// only).
func readInRoot(rootfs, name string) (io.Reader, error) {
	root, err := unix.Open(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open rootfs %s: %w", rootfs, err)
	}
	defer unix.Close(root)
	fd, err := unix.Openat2(root, path.Clean(name), &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NONBLOCK,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
	})
	if errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open %s in the container: %v: %w", name, err, errdefs.ErrInvalidArgument)
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, fmt.Errorf("%s in the container is not a regular file: %w", name, errdefs.ErrInvalidArgument)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxUserFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxUserFileBytes {
		return nil, fmt.Errorf("%s in the container is over %d bytes: %w", name, maxUserFileBytes, errdefs.ErrInvalidArgument)
	}
	return bytes.NewReader(data), nil
}
