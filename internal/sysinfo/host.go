package sysinfo

import (
	"os"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// Host describes the machine.
type Host struct {
	Kernel, OS, Architecture string
	// CgroupVersion is "v2" on a unified hierarchy, else "v1".
	CgroupVersion string
	CPUs          int64
	MemoryBytes   int64
}

// ReadHost reads the host's facts; what cannot be read stays empty.
func ReadHost() Host {
	h := Host{Architecture: runtime.GOARCH, CPUs: int64(runtime.NumCPU()), CgroupVersion: CgroupVersion("/sys/fs/cgroup")}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		h.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	h.OS = osName("/etc/os-release")
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) == nil {
		h.MemoryBytes = int64(si.Totalram) * int64(si.Unit)
	}
	return h
}

// CgroupVersion is "v2" when dir is a cgroup2 mount (the unified
// hierarchy), else "v1" (legacy or hybrid).
func CgroupVersion(dir string) string {
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return "v2"
	}
	return "v1"
}

// osName is PRETTY_NAME of an os-release file.
func osName(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return prettyName(string(b))
}

func prettyName(osRelease string) string {
	for _, line := range strings.Split(osRelease, "\n") {
		if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"'`)
		}
	}
	return ""
}
