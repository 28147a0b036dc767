package resources

import (
	"strconv"

	"github.com/opencontainers/cgroups"
)

// CgroupFiles are the values the cgroup files of a container with limits r
// hold once libcontainer's cgroup manager has written them, keyed by the
// file's path relative to the container's cgroup: "<controller>/<file>"
// on cgroup v1, "<file>" on the unified v2 hierarchy. Only limits that are
// set appear. The v2 conversions are libcontainer's own (shares to weight,
// memory+swap to swap alone), so this is the translation libcontainer
// performs on either kind of host, stated as data.
func CgroupFiles(r Resources, v2 bool) map[string]string {
	files := map[string]string{}
	itoa := func(n int64) string { return strconv.FormatInt(n, 10) }
	swap := r.SwapLimit()
	if v2 {
		if r.Memory > 0 {
			files["memory.max"] = itoa(r.Memory)
			if s, err := cgroups.ConvertMemorySwapToCgroupV2Value(swap, r.Memory); err == nil && s != 0 {
				files["memory.swap.max"] = maxOr(s)
			}
		}
		if q := r.CPUQuota(); q > 0 {
			files["cpu.max"] = itoa(q) + " " + itoa(CPUPeriod)
		}
		if r.CPUShares > 0 {
			files["cpu.weight"] = strconv.FormatUint(cgroups.ConvertCPUSharesToCgroupV2Value(r.CPUShares), 10)
		}
		if r.CpusetCpus != "" {
			files["cpuset.cpus"] = r.CpusetCpus
		}
		if r.PidsLimit != 0 {
			files["pids.max"] = maxOr(r.PidsLimit)
		}
		return files
	}
	if r.Memory > 0 {
		files["memory/memory.limit_in_bytes"] = itoa(r.Memory)
		if swap > 0 {
			files["memory/memory.memsw.limit_in_bytes"] = itoa(swap)
		}
	}
	if q := r.CPUQuota(); q > 0 {
		files["cpu/cpu.cfs_quota_us"] = itoa(q)
		files["cpu/cpu.cfs_period_us"] = itoa(CPUPeriod)
	}
	if r.CPUShares > 0 {
		files["cpu/cpu.shares"] = strconv.FormatUint(r.CPUShares, 10)
	}
	if r.CpusetCpus != "" {
		files["cpuset/cpuset.cpus"] = r.CpusetCpus
	}
	if r.PidsLimit != 0 {
		files["pids/pids.max"] = maxOr(r.PidsLimit)
	}
	return files
}

// maxOr is the cgroup files' spelling of a limit: "max" for unlimited.
func maxOr(n int64) string {
	if n < 0 {
		return "max"
	}
	return strconv.FormatInt(n, 10)
}
