// Command sysprobe tries the system calls a container's seccomp profile
// and capabilities must refuse, and prints "name=result" for each: ok or
// the errno's name. It is built statically by the tests and copied into a
// test image. Every call is harmless where it succeeds: a new user
// namespace or session keyring of this process only, a tmpfs in its own
// mount namespace, and reboot's CAD_OFF (which a pid namespace refuses
// anyway).
package main

import (
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

func main() {
	result := func(name string, err error) {
		if err == nil {
			fmt.Printf("%s=ok\n", name)
			return
		}
		if errno, ok := err.(syscall.Errno); ok {
			fmt.Printf("%s=%s\n", name, unix.ErrnoName(errno))
			return
		}
		fmt.Printf("%s=%v\n", name, err)
	}
	_, err := unix.KeyctlJoinSessionKeyring("sysprobe")
	result("keyctl", err)
	result("unshare", unix.Unshare(unix.CLONE_NEWUSER))
	_ = os.MkdirAll("/tmp/sysprobe-mnt", 0o755)
	result("mount", unix.Mount("none", "/tmp/sysprobe-mnt", "tmpfs", 0, ""))
	result("reboot", unix.Reboot(unix.LINUX_REBOOT_CMD_CAD_OFF))
	result("mknod_block", unix.Mknod("/tmp/sysprobe-blk", unix.S_IFBLK|0o600, int(unix.Mkdev(8, 0))))
}
