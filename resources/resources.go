package resources

import (
	"fmt"
	"slices"
	"strings"

	"github.com/cairn-run/cairn/internal/errdefs"
)

// Resources are a container's cgroup limits and rlimits. The zero value of
// each field means "no limit" (after Resolve, which applies the daemon's
// defaults).
type Resources struct {
	// Memory is the memory limit in bytes; 0 is none.
	Memory int64 `json:"memory,omitempty"`
	// MemorySwap is the limit of memory plus swap in bytes, as Docker's
	// --memory-swap: 0 is twice Memory, -1 is unlimited swap. Only with
	// Memory.
	MemorySwap int64 `json:"memory_swap,omitempty"`
	// NanoCPUs is the CPU quota in billionths of a CPU (--cpus 1.5 is
	// 1.5e9); 0 is none.
	NanoCPUs int64 `json:"nano_cpus,omitempty"`
	// CPUShares is the relative CPU weight (cgroup v1 cpu.shares, Docker's
	// default 1024); 0 is the kernel's default.
	CPUShares uint64 `json:"cpu_shares,omitempty"`
	// CpusetCpus lists the CPUs the container may run on ("0-2,4"); "" is
	// every CPU.
	CpusetCpus string `json:"cpuset_cpus,omitempty"`
	// PidsLimit caps the number of tasks; -1 is unlimited, and 0 (only in
	// a request) is the daemon's default.
	PidsLimit int64 `json:"pids_limit,omitempty"`
	// Ulimits are the process rlimits; RLIMIT_NOFILE defaults to
	// DefaultNofile when absent.
	Ulimits []Ulimit `json:"ulimits,omitempty"`
}

// Ulimit is one rlimit, named as Docker names them ("nofile", "nproc", ...).
type Ulimit struct {
	Name string `json:"name"`
	Soft int64  `json:"soft"`
	Hard int64  `json:"hard"`
}

// Defaults are the daemon-wide values a create resolves.
type Defaults struct {
	// PidsLimit applies when a create does not ask (0); -1 or 0 here is
	// none.
	PidsLimit int64
	// MaxNofile is the highest RLIMIT_NOFILE the daemon can grant: its
	// own hard limit when it lacks CAP_SYS_RESOURCE, else DefaultNofile
	// (see executor.NofileCeiling); 0 is DefaultNofile.
	MaxNofile int64
}

// DefaultPidsLimit is cairnd's --default-pids-limit: enough for any
// ordinary workload, small enough that a fork bomb cannot exhaust the
// host's pid space (32768 by default).
const DefaultPidsLimit = 4096

// DefaultNofile is the RLIMIT_NOFILE of a container that asks for none,
// soft and hard: Docker's (containerd's) value, and the kernel's default
// fs.nr_open, lowered to what the daemon can grant (Defaults.MaxNofile).
// Without it the container would inherit the shim's.
const DefaultNofile = 1 << 20

// Minimum and maximum limits, as Docker checks them.
const (
	MinMemory    = 6 << 20 // Docker's minimum: less cannot start a process
	MaxCPUShares = 262144
	MinCPUShares = 2
	MaxPidsLimit = 1 << 22 // the kernel's PID_MAX_LIMIT
)

// ulimitNames are the rlimits a container may set (go-units' names).
var ulimitNames = []string{"as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice",
	"nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack"}

// Validate refuses limits that could never be applied. It is what a create
// and an update check before anything is recorded.
func (r Resources) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf(format+": %w", append(a, errdefs.ErrInvalidArgument)...)
	}
	if r.Memory < 0 {
		return bad("memory limit %d is negative", r.Memory)
	}
	if r.Memory > 0 && r.Memory < MinMemory {
		return bad("memory limit %d bytes is below the minimum of 6MiB", r.Memory)
	}
	switch {
	case r.MemorySwap == 0, r.MemorySwap == -1:
	case r.MemorySwap < -1:
		return bad("memory+swap limit %d is invalid: -1 is unlimited", r.MemorySwap)
	case r.Memory == 0:
		return bad("a memory+swap limit needs a memory limit")
	case r.MemorySwap < r.Memory:
		return bad("memory+swap limit %d must not be below the memory limit %d", r.MemorySwap, r.Memory)
	}
	if r.MemorySwap == -1 && r.Memory == 0 {
		return bad("a memory+swap limit needs a memory limit")
	}
	if r.NanoCPUs < 0 {
		return bad("cpus %d is negative", r.NanoCPUs)
	}
	if r.NanoCPUs > 0 && r.NanoCPUs < 1e6 {
		return bad("cpus must be at least 0.001")
	}
	if r.CPUShares != 0 && (r.CPUShares < MinCPUShares || r.CPUShares > MaxCPUShares) {
		return bad("cpu shares %d out of range [%d, %d]", r.CPUShares, MinCPUShares, MaxCPUShares)
	}
	if err := validCPUList(r.CpusetCpus); err != nil {
		return err
	}
	if r.PidsLimit < -1 || r.PidsLimit > MaxPidsLimit {
		return bad("pids limit %d out of range: -1 (unlimited) or 1 to %d", r.PidsLimit, MaxPidsLimit)
	}
	seen := map[string]bool{}
	for _, u := range r.Ulimits {
		if !slices.Contains(ulimitNames, u.Name) {
			return bad("unknown ulimit %s", errdefs.Quote(u.Name))
		}
		if seen[u.Name] {
			return bad("ulimit %s given twice", u.Name)
		}
		seen[u.Name] = true
		if u.Soft > u.Hard {
			return bad("ulimit %s: soft limit %d above hard limit %d", u.Name, u.Soft, u.Hard)
		}
		if u.Soft < -1 || u.Hard < -1 {
			return bad("ulimit %s: limits must be -1 (unlimited) or positive", u.Name)
		}
		if u.Name == "nofile" && (u.Hard > DefaultNofile || u.Hard < 0) {
			// Above fs.nr_open the container's init fails to start.
			return bad("ulimit nofile: hard limit must be between 0 and %d", DefaultNofile)
		}
	}
	return nil
}

// validCPUList accepts the kernel's cpuset list format: "0", "0-3", "0,2-3".
func validCPUList(s string) error {
	if s == "" {
		return nil
	}
	if len(s) > 256 {
		return fmt.Errorf("cpuset list longer than 256 bytes: %w", errdefs.ErrInvalidArgument)
	}
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, okA := cpuNumber(lo)
		b, okB := a, true
		if isRange {
			b, okB = cpuNumber(hi)
		}
		if !okA || !okB || b < a {
			return fmt.Errorf("invalid cpuset %s: want a list like 0-2,4: %w", errdefs.Quote(s), errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

func cpuNumber(s string) (int, bool) {
	if s == "" || len(s) > 4 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

// Resolve applies the daemon's defaults to a create's limits, so the
// create record holds what the container really gets: a later daemon with
// other defaults does not change it. The default RLIMIT_NOFILE is added
// and the ulimits sorted by name. A nofile limit above what the daemon can
// grant is ErrInvalidArgument.
func Resolve(r Resources, d Defaults) (Resources, error) {
	if r.PidsLimit == 0 {
		r.PidsLimit = d.PidsLimit
		if r.PidsLimit == 0 {
			r.PidsLimit = -1
		}
	}
	maxNofile := d.MaxNofile
	if maxNofile <= 0 {
		maxNofile = DefaultNofile
	}
	r.Ulimits = r.Rlimits(maxNofile)
	for _, u := range r.Ulimits {
		if u.Name == "nofile" && (u.Hard < 0 || u.Hard > maxNofile) {
			return r, fmt.Errorf("ulimit nofile: hard limit %d above %d, the most this cairnd may grant: %w", u.Hard, maxNofile, errdefs.ErrInvalidArgument)
		}
	}
	slices.SortFunc(r.Ulimits, func(a, b Ulimit) int { return strings.Compare(a.Name, b.Name) })
	return r, nil
}

// Rlimits are the ulimits a container's init gets: the requested ones plus
// RLIMIT_NOFILE at DefaultNofile, at most maxNofile, when not requested.
func (r Resources) Rlimits(maxNofile int64) []Ulimit {
	out := slices.Clone(r.Ulimits)
	if !slices.ContainsFunc(out, func(u Ulimit) bool { return u.Name == "nofile" }) {
		n := min(int64(DefaultNofile), maxNofile)
		out = append(out, Ulimit{Name: "nofile", Soft: n, Hard: n})
	}
	return out
}

// SwapLimit is the memory+swap limit the cgroup gets: Docker's twice the
// memory when not given, -1 for unlimited, 0 without a memory limit.
func (r Resources) SwapLimit() int64 {
	switch {
	case r.Memory == 0:
		return 0
	case r.MemorySwap == 0:
		return 2 * r.Memory
	}
	return r.MemorySwap
}

// CPUPeriod is the CFS period a CPU quota is expressed in (Docker's).
const CPUPeriod = 100000

// CPUQuota is the CFS quota in microseconds per CPUPeriod; 0 is none.
func (r Resources) CPUQuota() int64 {
	return r.NanoCPUs * CPUPeriod / 1e9
}

// Clone returns a deep copy.
func (r Resources) Clone() Resources {
	r.Ulimits = slices.Clone(r.Ulimits)
	return r
}

// Update is a live change of a running container's limits; nil fields stay.
type Update struct {
	Memory     *int64 `json:"memory,omitempty"`
	MemorySwap *int64 `json:"memory_swap,omitempty"`
	NanoCPUs   *int64 `json:"nano_cpus,omitempty"`
	PidsLimit  *int64 `json:"pids_limit,omitempty"`
}

// IsZero reports an update that changes nothing.
func (u Update) IsZero() bool {
	return u.Memory == nil && u.MemorySwap == nil && u.NanoCPUs == nil && u.PidsLimit == nil
}

// Apply returns r with u's fields replaced, validated. Docker's rule for
// swap: a new memory limit without a new swap limit keeps swap unlimited if
// it was, else resets it to twice the memory.
func (r Resources) Apply(u Update) (Resources, error) {
	out := r.Clone()
	if u.Memory != nil {
		out.Memory = *u.Memory
		if u.MemorySwap == nil && out.MemorySwap != -1 {
			out.MemorySwap = 0
		}
	}
	if u.MemorySwap != nil {
		out.MemorySwap = *u.MemorySwap
	}
	if u.NanoCPUs != nil {
		out.NanoCPUs = *u.NanoCPUs
	}
	if u.PidsLimit != nil {
		out.PidsLimit = *u.PidsLimit
		if out.PidsLimit == 0 {
			out.PidsLimit = -1 // docker update --pids-limit 0: unlimited
		}
	}
	if err := out.Validate(); err != nil {
		return r, err
	}
	return out, nil
}
