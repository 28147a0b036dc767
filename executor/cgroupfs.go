package executor

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/sys/mountinfo"
	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/manager"
	"golang.org/x/sys/unix"
)

// cgroupMounts are the mount points of the cgroup hierarchies. A
// container's cgroup exists once in each of them, so leftovers must be looked
// for in all; libcontainer's Destroy only knows the paths in its state file,
// which is gone after a crash mid-create.
type cgroupMounts struct {
	all     []string // every cgroup and cgroup2 mount point
	freezer string   // the v1 freezer hierarchy; "" on a pure cgroup v2 host
	unified string   // the cgroup2 mount point; "" when there is none
}

func findCgroupMounts() (cgroupMounts, error) {
	infos, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup", "cgroup2"))
	if err != nil {
		return cgroupMounts{}, fmt.Errorf("mountinfo: %w", err)
	}
	var m cgroupMounts
	for _, info := range infos {
		switch info.FSType {
		case "cgroup":
			// A v1 hierarchy names its controllers in the super options.
			if slices.Contains(strings.Split(info.VFSOptions, ","), "freezer") {
				m.freezer = info.Mountpoint
			}
		case "cgroup2":
			m.unified = info.Mountpoint
		}
		m.all = append(m.all, info.Mountpoint)
	}
	if len(m.all) == 0 {
		return cgroupMounts{}, errors.New("no cgroup hierarchy mounted")
	}
	return m, nil
}

// dirs returns the directories of cgroup rel in every hierarchy.
func (m cgroupMounts) dirs(rel string) []string {
	out := make([]string, 0, len(m.all))
	for _, mnt := range m.all {
		out = append(out, filepath.Join(mnt, rel))
	}
	return out
}

// exists reports whether cgroup rel is present in any hierarchy.
func (m cgroupMounts) exists(rel string) bool {
	for _, d := range m.dirs(rel) {
		if _, err := os.Stat(d); err == nil {
			return true
		}
	}
	return false
}

// freezerState reads the freezer state of cgroup rel: FROZEN, FREEZING or
// THAWED. A missing cgroup is os.ErrNotExist.
func (m cgroupMounts) freezerState(rel string) (string, error) {
	if m.freezer != "" {
		data, err := os.ReadFile(filepath.Join(m.freezer, rel, "freezer.state"))
		if err != nil {
			return "", err
		}
		return strings.TrimSpace(string(data)), nil
	}
	if m.unified == "" {
		return "", errors.New("no freezer hierarchy")
	}
	data, err := os.ReadFile(filepath.Join(m.unified, rel, "cgroup.freeze"))
	if err != nil {
		return "", err
	}
	if strings.TrimSpace(string(data)) == "1" {
		return string(cgroups.Frozen), nil
	}
	return string(cgroups.Thawed), nil
}

// setFreezer freezes or thaws cgroup rel through the cgroup library's
// manager, which retries a v1 freezer stuck in FREEZING and waits for a v2
// one to settle.
func (m cgroupMounts) setFreezer(rel string, state cgroups.FreezerState) error {
	paths := map[string]string{"freezer": filepath.Join(m.freezer, rel)}
	if m.freezer == "" {
		paths = map[string]string{"": filepath.Join(m.unified, rel)}
	}
	mgr, err := manager.NewWithPaths(&cgroups.Cgroup{Resources: &cgroups.Resources{}}, paths)
	if err != nil {
		return fmt.Errorf("cgroup %s: %w", rel, err)
	}
	if err := mgr.Freeze(state); err != nil {
		return fmt.Errorf("freezer of cgroup %s: %w", rel, err)
	}
	return nil
}

// inCgroup reports whether process pid is in cgroup rel: of the freezer
// hierarchy, or of the unified one on a cgroup v2 host.
func (m cgroupMounts) inCgroup(pid int, rel string) bool {
	paths, err := cgroups.ParseCgroupFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return false
	}
	key := "freezer"
	if m.freezer == "" {
		key = ""
	}
	return paths[key] == "/"+rel
}

// thaw makes cgroup rel runnable again; frozen tasks cannot even die.
func (m cgroupMounts) thaw(rel string) {
	if m.freezer != "" {
		_ = os.WriteFile(filepath.Join(m.freezer, rel, "freezer.state"), []byte(cgroups.Thawed), 0)
	} else if m.unified != "" {
		_ = os.WriteFile(filepath.Join(m.unified, rel, "cgroup.freeze"), []byte("0"), 0)
	}
}

// pids lists the processes in cgroup rel (and its sub-cgroups) in any
// hierarchy.
func (m cgroupMounts) pids(rel string) []int {
	seen := map[int]bool{}
	var out []int
	for _, d := range m.dirs(rel) {
		ps, err := cgroups.GetAllPids(d)
		if err != nil {
			continue
		}
		for _, p := range ps {
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	return out
}

// kill SIGKILLs every process still in cgroup rel: leftovers of a start that
// died half-way (no libcontainer state names them). Each PID is pinned with a
// pidfd and checked to still be in the cgroup before it is signalled, so a
// reused PID is never hit.
func (m cgroupMounts) kill(rel string) int {
	m.thaw(rel)
	killed := 0
	for _, pid := range m.pids(rel) {
		pidfd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			continue
		}
		if slices.Contains(m.pids(rel), pid) && unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0) == nil {
			killed++
		}
		unix.Close(pidfd)
	}
	return killed
}

// remove deletes cgroup rel (and sub-cgroups) from every hierarchy. Already
// gone is success.
func (m cgroupMounts) remove(rel string) error {
	var errs []error
	for _, d := range m.dirs(rel) {
		if err := cgroups.RemovePath(d); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove cgroup %s: %w", rel, err)
	}
	return nil
}
