// Package inspect reads, straight from the kernel's views (/proc, mountinfo,
// the cgroup v1 hierarchies), what a Cairn daemon has on the machine: mounts
// under its root, cgroups under its cgroup parent, its shims and container
// processes; and it can scrub them away. The test environment and `cairn
// drill` share it, so both judge the machine the same way.
//
// It never talks to the daemon, never reads the journal, and touches
// nothing outside the root and cgroup parent it is given.
package inspect

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/moby/sys/mountinfo"
	"github.com/opencontainers/cgroups"

	"github.com/cairn-run/cairn/internal/procstat"
)

// CgroupRoot is where the cgroup hierarchies are mounted.
const CgroupRoot = "/sys/fs/cgroup"

// MountsUnder lists the mount points strictly below root, in mount order,
// as this process's mount namespace sees them. A path mounted twice appears
// twice.
func MountsUnder(root string) []string {
	infos, err := mountinfo.GetMounts(mountinfo.PrefixFilter(root))
	if err != nil {
		return nil
	}
	var out []string
	for _, info := range infos {
		if info.Mountpoint != root {
			out = append(out, info.Mountpoint)
		}
	}
	return out
}

// Hierarchies lists the directories of the mounted cgroup hierarchies, the
// cgroup2 one of a hybrid host ("unified") included: libcontainer creates
// the parent there too.
func Hierarchies() []string {
	entries, _ := os.ReadDir(CgroupRoot)
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, filepath.Join(CgroupRoot, e.Name()))
		}
	}
	return out
}

// CgroupDirs lists the cgroup directories below cgroupParent in every
// hierarchy, parents before children; the parent itself is not listed.
func CgroupDirs(cgroupParent string) []string {
	var out []string
	for _, h := range Hierarchies() {
		base := filepath.Join(h, cgroupParent)
		_ = filepath.WalkDir(base, func(path string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() && path != base {
				out = append(out, path)
			}
			return nil
		})
	}
	return out
}

// CgroupOwner returns the name of the child of cgroupParent that dir is (or
// is below), i.e. the container id of a container cgroup; ok is false for a
// directory outside the parent.
func CgroupOwner(cgroupParent, dir string) (id string, ok bool) {
	for _, h := range Hierarchies() {
		rel, err := filepath.Rel(filepath.Join(h, cgroupParent), dir)
		if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
			continue
		}
		return strings.SplitN(rel, string(filepath.Separator), 2)[0], true
	}
	return "", false
}

// FreezerState reads freezer.state of a container's cgroup (THAWED,
// FREEZING or FROZEN).
func FreezerState(cgroupParent, id string) (string, error) {
	data, err := os.ReadFile(filepath.Join(CgroupRoot, "freezer", cgroupParent, id, "freezer.state"))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(data)), nil
}

// CgroupOf returns the path of pid's cgroup in the hierarchy of controller,
// from /proc/<pid>/cgroup ("4:freezer:/parent/id"); "" when it cannot be read.
func CgroupOf(pid int, controller string) string {
	paths, err := cgroups.ParseCgroupFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return ""
	}
	return paths[controller]
}

// CgroupProcs lists the pids in a cgroup directory.
func CgroupProcs(dir string) []int {
	data, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	var out []int
	for _, line := range strings.Fields(string(data)) {
		if pid, err := strconv.Atoi(line); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

// ProcessesOf lists the live processes that belong to a Cairn on root with
// cgroupParent: those whose command line names the root (the daemon and its
// shims) and those in its cgroups. The calling process is never listed.
func ProcessesOf(root, cgroupParent string) []int {
	seen := map[int]bool{}
	var out []int
	add := func(pid int) {
		if !seen[pid] && pid != os.Getpid() && !IsZombie(pid) {
			seen[pid] = true
			out = append(out, pid)
		}
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err == nil && strings.Contains(Cmdline(pid), root+"/") {
			add(pid)
		}
	}
	for _, h := range Hierarchies() {
		// Processes directly in the parent are as much the daemon's as those
		// in its children.
		for _, pid := range CgroupProcs(filepath.Join(h, cgroupParent)) {
			add(pid)
		}
	}
	for _, dir := range CgroupDirs(cgroupParent) {
		for _, pid := range CgroupProcs(dir) {
			add(pid)
		}
	}
	return out
}

// Cmdline is a process's command line with spaces between the arguments,
// "" when it is gone.
func Cmdline(pid int) string {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.TrimSpace(strings.ReplaceAll(string(data), "\x00", " "))
}

// Cwd is a process's working directory, "" when it cannot be read.
func Cwd(pid int) string {
	dir, _ := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
	return dir
}

// Stat holds the fields of /proc/<pid>/stat that say whether a process is
// the one that was recorded.
type Stat = procstat.Stat

// ReadStat reads /proc/<pid>/stat.
func ReadStat(pid int) (Stat, error) { return procstat.Read(pid) }

// IsZombie reports whether pid is gone or has finished running (a zombie
// waiting to be reaped).
func IsZombie(pid int) bool {
	st, err := procstat.Read(pid)
	return err != nil || st.Dead()
}

// Alive reports whether pid is the live process that started at startTime,
// and not a later process that reused the pid.
func Alive(pid int, startTime uint64) bool { return procstat.Alive(pid, startTime) }
