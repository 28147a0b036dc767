package executor

import (
	"errors"
	"fmt"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/sys/user"

	"github.com/cairn-run/cairn/internal/errdefs"
)

// User is a user of a container, resolved in its /etc/passwd and
// /etc/group: "name", "uid", "name:group", "uid:gid" and the like, as
// Docker's --user takes them. An empty spec is root.
type User struct {
	UID, GID int
	// Groups are the supplementary groups of the user.
	Groups []int
	Home   string
}

// errUnknownUser marks a user spec the container's files cannot resolve.
var errUnknownUser = errors.New("unknown user")

// resolveUser resolves spec in the container filesystem at rootfs. The
// files are found with securejoin, so a symlink in the container cannot
// make the shim read a file of the host.
func resolveUser(rootfs, spec string) (User, error) {
	passwd, err := securejoin.SecureJoin(rootfs, "/etc/passwd")
	if err != nil {
		return User{}, err
	}
	group, err := securejoin.SecureJoin(rootfs, "/etc/group")
	if err != nil {
		return User{}, err
	}
	eu, err := user.GetExecUserPath(spec, &user.ExecUser{Home: "/"}, passwd, group)
	if err != nil {
		return User{}, fmt.Errorf("user %s: %w: %w", errdefs.Quote(spec), errUnknownUser, err)
	}
	return User{UID: eu.Uid, GID: eu.Gid, Groups: eu.Sgids, Home: eu.Home}, nil
}
