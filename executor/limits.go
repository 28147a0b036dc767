package executor

import (
	"math"
	"os"
	"strconv"

	units "github.com/docker/go-units"
	"github.com/opencontainers/cgroups/devices/config"
	"github.com/opencontainers/runc/libcontainer/configs"
	"slices"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/cairn-run/cairn/resources"
)

// applyResources puts r into the runtime spec, from which specconv builds
// the cgroup configuration that libcontainer's cgroup manager (fs on v1,
// fs2 on v2) writes, and the rlimits the init sets before it execs.
func applyResources(spec *specs.Spec, r resources.Resources) {
	res := spec.Linux.Resources
	if res == nil {
		res = &specs.LinuxResources{}
		spec.Linux.Resources = res
	}
	res.Memory, res.CPU, res.Pids = specResources(r)
	// The rlimits are the process's (see processRlimits): specconv does
	// not carry the spec's into the config.
	spec.Process.Rlimits = nil
}

// specResources is the runtime spec's form of r's cgroup limits (nil where
// nothing is limited).
func specResources(r resources.Resources) (*specs.LinuxMemory, *specs.LinuxCPU, *specs.LinuxPids) {
	var mem *specs.LinuxMemory
	if r.Memory > 0 {
		mem = &specs.LinuxMemory{Limit: new(r.Memory)}
		if swap := r.SwapLimit(); swap != 0 {
			mem.Swap = new(swap)
		}
	}
	var cpu *specs.LinuxCPU
	if r.NanoCPUs > 0 || r.CPUShares > 0 || r.CpusetCpus != "" {
		cpu = &specs.LinuxCPU{Cpus: r.CpusetCpus}
		if q := r.CPUQuota(); q > 0 {
			cpu.Quota, cpu.Period = new(q), new(uint64(resources.CPUPeriod))
		}
		if r.CPUShares > 0 {
			cpu.Shares = new(r.CPUShares)
		}
	}
	var pids *specs.LinuxPids
	if r.PidsLimit != 0 {
		pids = &specs.LinuxPids{Limit: new(r.PidsLimit)}
	}
	return mem, cpu, pids
}

// processRlimits are the container init's rlimits, set by libcontainer
// before it execs the command (and kept across that exec): without them
// the init would inherit the shim's. go-units knows Docker's names; -1 is
// RLIM_INFINITY.
func processRlimits(us []resources.Ulimit) []configs.Rlimit {
	lim := func(n int64) uint64 {
		if n < 0 {
			return math.MaxUint64
		}
		return uint64(n)
	}
	out := make([]configs.Rlimit, 0, len(us))
	for _, u := range us {
		rl, err := (&units.Ulimit{Name: u.Name, Soft: u.Soft, Hard: u.Hard}).GetRlimit()
		if err != nil {
			continue // resources.Validate refused unknown names already
		}
		out = append(out, configs.Rlimit{Type: rl.Type, Soft: lim(u.Soft), Hard: lim(u.Hard)})
	}
	return out
}

// applySecurity sets the capabilities, seccomp filter, no_new_privs and
// root and tmpfs mounts of sec.
func applySecurity(spec *specs.Spec, sec SecuritySpec) {
	caps := sec.Capabilities
	if caps == nil {
		caps = resources.DefaultCapabilities
	}
	// Docker's sets: no inheritable or ambient capabilities, so a
	// non-root process gets none unless a file capability grants them.
	spec.Process.Capabilities = &specs.LinuxCapabilities{
		Bounding: slices.Clone(caps), Permitted: slices.Clone(caps), Effective: slices.Clone(caps),
	}
	spec.Process.NoNewPrivileges = sec.NoNewPrivileges
	spec.Linux.Seccomp = sec.Seccomp
	spec.Root.Readonly = sec.ReadOnly
	if sec.Privileged {
		spec.Linux.MaskedPaths, spec.Linux.ReadonlyPaths = nil, nil
		spec.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
	}
	for _, t := range sec.Tmpfs {
		spec.Mounts = append(spec.Mounts, specs.Mount{
			Destination: t.Path, Type: "tmpfs", Source: "tmpfs", Options: tmpfsOptions(t.Options),
		})
	}
}

// tmpfsOptions are Docker's defaults for --tmpfs (noexec, nosuid, nodev)
// followed by the user's, which mount(8)-style win when they conflict.
func tmpfsOptions(opts string) []string {
	out := []string{"nosuid", "nodev", "noexec"}
	if opts != "" {
		out = append(out, strings.Split(opts, ",")...)
	}
	return out
}

// NofileCeiling is the highest RLIMIT_NOFILE this process can give a
// container: resources.DefaultNofile with CAP_SYS_RESOURCE, else its own
// hard limit (raising a hard limit needs that capability, which some
// hosts, this kind of VM included, withhold even from root).
func NofileCeiling() int64 {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return resources.DefaultNofile
	}
	if hasCapability(unix.CAP_SYS_RESOURCE) || rl.Max >= resources.DefaultNofile {
		return resources.DefaultNofile
	}
	return int64(rl.Max)
}

// hasCapability reports whether c is in this process's effective set.
func hasCapability(c int) bool {
	return ownCapabilitySet("CapEff:")&(1<<c) != 0
}

// ownCapabilitySet reads one set ("CapEff:", "CapBnd:") of this process
// from /proc/self/status; 0 when it cannot.
func ownCapabilitySet(field string) uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if hex, ok := strings.CutPrefix(line, field); ok {
			set, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
			if err != nil {
				return 0
			}
			return set
		}
	}
	return 0
}

// OwnCapabilities returns those of caps (names in capability number
// order, as resources.AllCapabilities lists them) that this process holds
// in its effective set: what it can give a container.
func OwnCapabilities(caps []string) []string {
	eff := ownCapabilitySet("CapEff:")
	all := resources.AllCapabilities()
	return slices.DeleteFunc(slices.Clone(caps), func(c string) bool {
		n := slices.Index(all, c)
		return n < 0 || eff&(1<<n) == 0
	})
}

// withoutBlockMknod drops libcontainer's default rule that lets a
// container create (not open) any block device node: nothing ordinary
// needs one, and a block device node is the first step of reaching the
// host's disks. Character devices keep Docker's rule (package managers
// create them).
func withoutBlockMknod(rules []*config.Rule) []*config.Rule {
	return slices.DeleteFunc(slices.Clone(rules), func(r *config.Rule) bool {
		return r.Allow && r.Type == config.BlockDevice && r.Major == config.Wildcard && r.Minor == config.Wildcard &&
			r.Permissions == "m"
	})
}
