package network

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// nsfsMagic is the filesystem type of a bind-mounted namespace file.
const nsfsMagic = 0x6e736673

// CreateNetNS makes a fresh network namespace, with loopback up, and keeps
// it alive by bind-mounting it onto path, a new file (O_EXCL: an existing
// one is never reused). It works on a locked OS thread that is thrown away
// afterwards (the goroutine exits without unlocking), so no other goroutine
// ever runs in the new namespace. On failure nothing is left.
func CreateNetNS(path string) (err error) {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return fmt.Errorf("netns file: %w", err)
	}
	_ = f.Close()
	defer func() {
		if err != nil {
			_ = os.Remove(path)
		}
	}()
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			done <- fmt.Errorf("unshare: %w", err)
			return
		}
		lo, err := netlink.LinkByName("lo")
		if err == nil {
			err = netlink.LinkSetUp(lo)
		}
		if err != nil {
			done <- fmt.Errorf("loopback up: %w", err)
			return
		}
		// Unprivileged ICMP sockets, as Docker allows: ping works without
		// CAP_NET_RAW. Net sysctls apply to the opener's namespace.
		if err := os.WriteFile("/proc/sys/net/ipv4/ping_group_range", []byte("0 2147483647"), 0o644); err != nil {
			done <- fmt.Errorf("ping_group_range: %w", err)
			return
		}
		src := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(src, path, "none", unix.MS_BIND, ""); err != nil {
			done <- fmt.Errorf("bind-mount %s: %w", src, err)
			return
		}
		done <- nil
	}()
	return <-done
}

// NetNSMounted reports whether path is a bind-mounted namespace.
func NetNSMounted(path string) (bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, fmt.Errorf("statfs %s: %w", path, err)
	}
	return st.Type == nsfsMagic, nil
}

// RemoveNetNS unmounts and deletes a namespace file; a missing one is not an
// error (removal may repeat).
func RemoveNetNS(path string) error {
	for range 8 { // stacked mounts, if a crash repeated a bind
		mounted, err := NetNSMounted(path)
		if err != nil {
			return err
		}
		if !mounted {
			break
		}
		if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("unmount %s: %w", path, err)
		}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
