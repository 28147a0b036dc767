package executor

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/manager"

	"github.com/cairn-run/cairn/internal/errdefs"
)

// Stats is one reading of a container's resource use, from its cgroup and
// its init's network namespace. Counters are cumulative since the start.
type Stats struct {
	ReadAt     time.Time
	CPUUsageNS uint64
	// MemoryUsage is what the cgroup charges (page cache included);
	// MemoryWorkingSet is that minus inactive file pages, cadvisor's and
	// kubelet's measure and what the OOM killer is about to act on.
	MemoryUsage, MemoryWorkingSet uint64
	// MemoryLimit is 0 when there is none.
	MemoryLimit uint64
	// PidsLimit is 0 when there is none.
	Pids, PidsLimit       uint64
	BlockRead, BlockWrite uint64
	// NetRx and NetTx are the bytes of the container's network namespace
	// interfaces but loopback; 0 without one.
	NetRx, NetTx uint64
	OOMKills     uint64
}

// statsControllers are the v1 hierarchies a reading needs.
var statsControllers = []string{"cpuacct", "memory", "pids", "blkio"}

// Stats reads container id's cgroup through the cgroup library's manager
// (fs on v1, fs2 on v2) and p's /proc/<pid>/net/dev. A container whose
// cgroup is gone is ErrNotFound.
func (e *Executor) Stats(id string, p Process) (Stats, error) {
	if err := validateID(id); err != nil {
		return Stats{}, err
	}
	rel := e.cgroupPath(id)
	paths, err := e.statsPaths(rel)
	if err != nil {
		return Stats{}, err
	}
	mgr, err := manager.NewWithPaths(&cgroups.Cgroup{Resources: &cgroups.Resources{}}, paths)
	if err != nil {
		return Stats{}, fmt.Errorf("stats %s: %w", id, err)
	}
	cs, err := mgr.GetStats()
	if err != nil {
		if !e.mounts.exists(rel) {
			return Stats{}, fmt.Errorf("stats %s: cgroup gone: %w", id, errdefs.ErrNotFound)
		}
		return Stats{}, fmt.Errorf("stats %s: %w", id, err)
	}
	s := statsOf(cs)
	s.ReadAt = time.Now()
	if mem := paths["memory"]; mem != "" {
		s.OOMKills, _ = oomKillsIn(filepath.Join(mem, "memory.oom_control"))
	} else {
		s.OOMKills, _ = oomKillsIn(filepath.Join(paths[""], "memory.events"))
	}
	if p.PID > 0 {
		s.NetRx, s.NetTx = netDev(p.PID)
	}
	return s, nil
}

// CPUUsage reads only the CPU time container id has used, in nanoseconds,
// and when: the cheap first reading of a CPU percentage (a file instead
// of Stats' few dozen).
func (e *Executor) CPUUsage(id string) (uint64, time.Time, error) {
	if err := validateID(id); err != nil {
		return 0, time.Time{}, err
	}
	paths, err := e.statsPaths(e.cgroupPath(id))
	if err != nil {
		return 0, time.Time{}, err
	}
	if dir := paths["cpuacct"]; dir != "" {
		data, err := os.ReadFile(filepath.Join(dir, "cpuacct.usage"))
		if err != nil {
			return 0, time.Time{}, err
		}
		n, err := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64)
		return n, time.Now(), err
	}
	data, err := os.ReadFile(filepath.Join(paths[""], "cpu.stat"))
	if err != nil {
		return 0, time.Time{}, err
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "usage_usec "); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return n * 1000, time.Now(), err
		}
	}
	return 0, time.Time{}, fmt.Errorf("cpu usage of %s: no usage_usec in cpu.stat", id)
}

func (e *Executor) statsPaths(rel string) (map[string]string, error) {
	if e.mounts.freezer == "" && e.mounts.unified != "" {
		return map[string]string{"": filepath.Join(e.mounts.unified, rel)}, nil
	}
	e.statsMu.Lock()
	defer e.statsMu.Unlock()
	if e.statsMounts == nil {
		m := map[string]string{}
		for _, c := range statsControllers {
			mnt, err := cgroups.FindCgroupMountpoint("", c)
			if err != nil {
				return nil, fmt.Errorf("cgroup controller %s: %w", c, err)
			}
			m[c] = mnt
		}
		e.statsMounts = m
	}
	paths := make(map[string]string, len(e.statsMounts))
	for c, mnt := range e.statsMounts {
		paths[c] = filepath.Join(mnt, rel)
	}
	return paths, nil
}

// unlimited is what v1 shows for "no memory limit" (the largest page
// multiple); anything that large is no limit.
const unlimited = math.MaxInt64 / 2

// statsOf is the reading the cgroup library's statistics make, for either
// cgroup version: the file names inside memory.stat and the blkio
// operation names differ between them.
func statsOf(cs *cgroups.Stats) Stats {
	var s Stats
	s.CPUUsageNS = cs.CpuStats.CpuUsage.TotalUsage
	mem := cs.MemoryStats
	s.MemoryUsage = mem.Usage.Usage
	if l := mem.Usage.Limit; l > 0 && l < unlimited {
		s.MemoryLimit = l
	}
	inactive, ok := mem.Stats["total_inactive_file"] // v1, hierarchical
	if !ok {
		inactive = mem.Stats["inactive_file"] // v2
	}
	if inactive < s.MemoryUsage {
		s.MemoryWorkingSet = s.MemoryUsage - inactive
	}
	s.Pids = cs.PidsStats.Current
	if l := cs.PidsStats.Limit; l > 0 && l < unlimited {
		s.PidsLimit = l
	}
	for _, e := range cs.BlkioStats.IoServiceBytesRecursive {
		switch strings.ToLower(e.Op) {
		case "read":
			s.BlockRead += e.Value
		case "write":
			s.BlockWrite += e.Value
		}
	}
	return s
}

// netDev sums the received and sent bytes of every interface but
// loopback in the network namespace of process pid.
func netDev(pid int) (rx, tx uint64) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/net/dev")
	if err != nil {
		return 0, 0
	}
	return parseNetDev(data)
}

// parseNetDev reads /proc/net/dev: two header lines, then
// "iface: rx_bytes packets ... (8 fields) tx_bytes ...".
func parseNetDev(data []byte) (rx, tx uint64) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || strings.TrimSpace(name) == "lo" {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 9 {
			continue
		}
		r, _ := strconv.ParseUint(f[0], 10, 64)
		t, _ := strconv.ParseUint(f[8], 10, 64)
		rx, tx = rx+r, tx+t
	}
	return rx, tx
}
