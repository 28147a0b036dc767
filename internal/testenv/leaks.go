package testenv

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const cgroupV1 = "/sys/fs/cgroup"

// AssertNoLeaks fails the test if anything of the environment is still on
// the machine: a mount under its root, a container cgroup, a shim or a
// container process. The one standby shim of a running daemon is not a leak.
func (e *Env) AssertNoLeaks(t testing.TB) {
	t.Helper()
	standbyDir := ""
	if e.Running() {
		standbyDir = filepath.Join(e.Config.Root, "exec")
	}
	for _, leak := range Leaks(e.Root, e.CgroupParent, standbyDir) {
		t.Errorf("leak: %s", leak)
	}
}

// Leaks lists what a Cairn on root with cgroupParent left on the machine.
// A shim waiting in standbyDir (a standby shim, which has no container yet)
// is not counted; pass "" to count it.
func Leaks(root, cgroupParent, standbyDir string) []string {
	var leaks []string
	for _, m := range mountsUnder(root) {
		leaks = append(leaks, "mount "+m)
	}
	for _, dir := range containerCgroups(cgroupParent) {
		leaks = append(leaks, "cgroup "+dir)
	}
	for _, pid := range processesOf(root, cgroupParent) {
		if standbyDir != "" && cwd(pid) == standbyDir {
			continue
		}
		leaks = append(leaks, fmt.Sprintf("process %d: %s", pid, cmdline(pid)))
	}
	return leaks
}

func cwd(pid int) string {
	dir, _ := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
	return dir
}

// Scrub kills, unmounts and removes whatever Leaks finds, and the cgroup
// parent itself, reporting what it had to clean.
func Scrub(root, cgroupParent string) []string {
	leaks := Leaks(root, cgroupParent, "")
	for _, dir := range containerCgroups(cgroupParent) {
		if strings.HasPrefix(dir, filepath.Join(cgroupV1, "freezer")) {
			_ = os.WriteFile(filepath.Join(dir, "freezer.state"), []byte("THAWED"), 0)
		}
	}
	for _, pid := range processesOf(root, cgroupParent) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(processesOf(root, cgroupParent)) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	mounts := mountsUnder(root)
	for i := len(mounts) - 1; i >= 0; i-- {
		_ = unix.Unmount(mounts[i], unix.MNT_DETACH)
	}
	dirs := containerCgroups(cgroupParent)
	for i := len(dirs) - 1; i >= 0; i-- {
		_ = os.Remove(dirs[i])
	}
	for _, ctrl := range controllers() {
		_ = os.Remove(filepath.Join(cgroupV1, ctrl, cgroupParent))
	}
	return leaks
}

func mountsUnder(root string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], root+"/") {
			out = append(out, fields[4])
		}
	}
	return out
}

func controllers() []string {
	entries, _ := os.ReadDir(cgroupV1)
	var out []string
	for _, e := range entries {
		if e.IsDir() && e.Name() != "unified" {
			out = append(out, e.Name())
		}
	}
	return out
}

// containerCgroups lists the cgroup directories below the parent in every
// v1 hierarchy, parents before children.
func containerCgroups(cgroupParent string) []string {
	var out []string
	for _, ctrl := range controllers() {
		base := filepath.Join(cgroupV1, ctrl, cgroupParent)
		_ = filepath.WalkDir(base, func(path string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() && path != base {
				out = append(out, path)
			}
			return nil
		})
	}
	return out
}

// processesOf lists live processes that belong to this environment: shims
// (their command line names the root) and processes in its cgroups.
func processesOf(root, cgroupParent string) []int {
	seen := map[int]bool{}
	var out []int
	add := func(pid int) {
		if !seen[pid] && pid != os.Getpid() && !isZombie(pid) {
			seen[pid] = true
			out = append(out, pid)
		}
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err == nil && strings.Contains(cmdline(pid), root+"/") {
			add(pid)
		}
	}
	for _, dir := range containerCgroups(cgroupParent) {
		data, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		for _, line := range strings.Fields(string(data)) {
			if pid, err := strconv.Atoi(line); err == nil {
				add(pid)
			}
		}
	}
	return out
}

func cmdline(pid int) string {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.TrimSpace(strings.ReplaceAll(string(data), "\x00", " "))
}

func isZombie(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true // gone
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] == 'Z'
}
