package inspect

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Leaks lists what a Cairn on root with cgroupParent has on the machine:
// mounts under root, cgroups below the parent, and its processes (the
// daemon, shims, container processes). A shim waiting in standbyDir (a
// standby shim, which has no container yet) is not counted; pass "" to
// count it.
func Leaks(root, cgroupParent, standbyDir string) []string {
	var leaks []string
	for _, m := range MountsUnder(root) {
		leaks = append(leaks, "mount "+m)
	}
	for _, dir := range CgroupDirs(cgroupParent) {
		leaks = append(leaks, "cgroup "+dir)
	}
	for _, pid := range ProcessesOf(root, cgroupParent) {
		if standbyDir != "" && Cwd(pid) == standbyDir {
			continue
		}
		leaks = append(leaks, fmt.Sprintf("process %d: %s", pid, Cmdline(pid)))
	}
	return leaks
}

// Scrub kills, unmounts and removes whatever Leaks finds, and the cgroup
// parent itself in every hierarchy, and reports what it had to clean. It
// refuses a relative root, "/" or an empty parent, which would name far
// more than one Cairn's belongings.
func Scrub(root, cgroupParent string) []string {
	if !filepath.IsAbs(root) || filepath.Clean(root) == "/" || cgroupParent == "" || filepath.Clean(cgroupParent) == "/" {
		return []string{fmt.Sprintf("refusing to scrub root %q with cgroup parent %q", root, cgroupParent)}
	}
	leaks := Leaks(root, cgroupParent, "")
	// A frozen process cannot die, even of SIGKILL, under cgroup v1.
	for _, dir := range CgroupDirs(cgroupParent) {
		if strings.HasPrefix(dir, filepath.Join(CgroupRoot, "freezer")+"/") {
			_ = os.WriteFile(filepath.Join(dir, "freezer.state"), []byte("THAWED"), 0)
		}
	}
	for _, pid := range ProcessesOf(root, cgroupParent) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(ProcessesOf(root, cgroupParent)) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	mounts := MountsUnder(root)
	for i := len(mounts) - 1; i >= 0; i-- {
		_ = unix.Unmount(mounts[i], unix.MNT_DETACH)
	}
	dirs := CgroupDirs(cgroupParent)
	for i := len(dirs) - 1; i >= 0; i-- {
		_ = os.Remove(dirs[i])
	}
	for _, h := range Hierarchies() {
		_ = os.Remove(filepath.Join(h, cgroupParent))
	}
	return leaks
}
