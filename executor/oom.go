package executor

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"

	"github.com/opencontainers/cgroups"
)

// oomKills is how many processes of cgroup rel (relative to each
// hierarchy's root) the kernel's OOM killer killed: "oom_kill" of
// memory.oom_control on cgroup v1 (Linux 4.13+), of memory.events on v2.
// The shim reads it once the init is reaped and before the cgroup is
// destroyed, and records the verdict in the exit record, so it survives a
// daemon that was down at the time.
func oomKills(rel string) (uint64, error) {
	var file string
	if cgroups.IsCgroup2UnifiedMode() {
		file = filepath.Join("/sys/fs/cgroup", rel, "memory.events")
	} else {
		mnt, err := cgroups.FindCgroupMountpoint("", "memory")
		if err != nil {
			return 0, err
		}
		file = filepath.Join(mnt, rel, "memory.oom_control")
	}
	return oomKillsIn(file)
}

// oomKillsIn reads the OOM kill count of a memory.oom_control or
// memory.events file.
func oomKillsIn(file string) (uint64, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	return parseOOMKills(data), nil
}

// parseOOMKills reads the "oom_kill N" line of memory.oom_control (v1) or
// memory.events (v2); 0 when there is none.
func parseOOMKills(data []byte) uint64 {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		key, val, ok := bytes.Cut(sc.Bytes(), []byte(" "))
		if ok && string(key) == "oom_kill" {
			n, _ := strconv.ParseUint(string(bytes.TrimSpace(val)), 10, 64)
			return n
		}
	}
	return 0
}
