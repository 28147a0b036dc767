package resources

import (
	"errors"
	"maps"
	"slices"
	"testing"

	"github.com/cairn-run/cairn/internal/errdefs"
)

func TestValidate(t *testing.T) {
	ok := []Resources{
		{},
		{Memory: 32 << 20},
		{Memory: 32 << 20, MemorySwap: -1},
		{Memory: 32 << 20, MemorySwap: 64 << 20},
		{NanoCPUs: 1.5e9, CPUShares: 512, CpusetCpus: "0-1,3", PidsLimit: 100},
		{PidsLimit: -1, Ulimits: []Ulimit{{Name: "nofile", Soft: 1024, Hard: 2048}, {Name: "nproc", Soft: -1, Hard: -1}}},
	}
	for _, r := range ok {
		if err := r.Validate(); err != nil {
			t.Errorf("%+v: %v", r, err)
		}
	}
	bad := []Resources{
		{Memory: -1},
		{Memory: 1 << 20},
		{MemorySwap: 64 << 20},
		{MemorySwap: -1},
		{Memory: 64 << 20, MemorySwap: 32 << 20},
		{Memory: 64 << 20, MemorySwap: -2},
		{NanoCPUs: -1},
		{NanoCPUs: 10},
		{CPUShares: 1},
		{CPUShares: 300000},
		{CpusetCpus: "a"},
		{CpusetCpus: "3-1"},
		{CpusetCpus: "0,,1"},
		{PidsLimit: -2},
		{Ulimits: []Ulimit{{Name: "bogus", Soft: 1, Hard: 1}}},
		{Ulimits: []Ulimit{{Name: "nofile", Soft: 2, Hard: 1}}},
		{Ulimits: []Ulimit{{Name: "nofile", Soft: 1, Hard: 1 << 30}}},
		{Ulimits: []Ulimit{{Name: "nproc", Soft: 1, Hard: 1}, {Name: "nproc", Soft: 1, Hard: 1}}},
	}
	for _, r := range bad {
		if err := r.Validate(); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%+v: got %v, want InvalidArgument", r, err)
		}
	}
}

func TestResolveDefaults(t *testing.T) {
	for _, tc := range []struct {
		req, def, want int64
	}{{0, 4096, 4096}, {0, 0, -1}, {100, 4096, 100}, {-1, 4096, -1}} {
		if got, _ := Resolve(Resources{PidsLimit: tc.req}, Defaults{PidsLimit: tc.def}); got.PidsLimit != tc.want {
			t.Errorf("pids %d with default %d: got %d, want %d", tc.req, tc.def, got.PidsLimit, tc.want)
		}
	}
	r, err := Resolve(Resources{}, Defaults{})
	if err != nil || !slices.Equal(r.Ulimits, []Ulimit{{Name: "nofile", Soft: DefaultNofile, Hard: DefaultNofile}}) {
		t.Errorf("default rlimits %v %v", r.Ulimits, err)
	}
	// A daemon without CAP_SYS_RESOURCE grants at most its own hard limit.
	r, err = Resolve(Resources{Ulimits: []Ulimit{{Name: "nproc", Soft: 10, Hard: 10}}}, Defaults{MaxNofile: 20000})
	if err != nil || !slices.Equal(r.Ulimits, []Ulimit{{Name: "nofile", Soft: 20000, Hard: 20000}, {Name: "nproc", Soft: 10, Hard: 10}}) {
		t.Errorf("capped default rlimits %v %v", r.Ulimits, err)
	}
	r, err = Resolve(Resources{Ulimits: []Ulimit{{Name: "nofile", Soft: 1024, Hard: 2048}}}, Defaults{MaxNofile: 20000})
	if err != nil || len(r.Ulimits) != 1 || r.Ulimits[0].Soft != 1024 {
		t.Errorf("asked nofile replaced: %v %v", r.Ulimits, err)
	}
	if _, err := Resolve(Resources{Ulimits: []Ulimit{{Name: "nofile", Soft: 1024, Hard: 40000}}}, Defaults{MaxNofile: 20000}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("nofile above the ceiling: %v", err)
	}
}

func TestCgroupFiles(t *testing.T) {
	r := Resources{Memory: 256 << 20, NanoCPUs: 1.5e9, CPUShares: 512, CpusetCpus: "0", PidsLimit: 100}
	v1 := map[string]string{
		"memory/memory.limit_in_bytes":       "268435456",
		"memory/memory.memsw.limit_in_bytes": "536870912", // twice the memory, as Docker
		"cpu/cpu.cfs_quota_us":               "150000",
		"cpu/cpu.cfs_period_us":              "100000",
		"cpu/cpu.shares":                     "512",
		"cpuset/cpuset.cpus":                 "0",
		"pids/pids.max":                      "100",
	}
	if got := CgroupFiles(r, false); !maps.Equal(got, v1) {
		t.Errorf("v1:\n got %v\nwant %v", got, v1)
	}
	v2 := map[string]string{
		"memory.max":      "268435456",
		"memory.swap.max": "268435456", // v2's swap excludes the memory
		"cpu.max":         "150000 100000",
		"cpu.weight":      "59",
		"cpuset.cpus":     "0",
		"pids.max":        "100",
	}
	if got := CgroupFiles(r, true); !maps.Equal(got, v2) {
		t.Errorf("v2:\n got %v\nwant %v", got, v2)
	}
	unlimited := Resources{Memory: 64 << 20, MemorySwap: -1, PidsLimit: -1}
	if got := CgroupFiles(unlimited, true); got["memory.swap.max"] != "max" || got["pids.max"] != "max" {
		t.Errorf("v2 unlimited: %v", got)
	}
	if got := CgroupFiles(unlimited, false); got["pids/pids.max"] != "max" || got["memory/memory.memsw.limit_in_bytes"] != "" {
		t.Errorf("v1 unlimited: %v", got)
	}
}

func TestApplyUpdate(t *testing.T) {
	i := func(n int64) *int64 { return &n }
	base := Resources{Memory: 64 << 20, PidsLimit: 100, NanoCPUs: 1e9}
	got, err := base.Apply(Update{Memory: i(128 << 20), PidsLimit: i(0)})
	if err != nil || got.Memory != 128<<20 || got.SwapLimit() != 256<<20 || got.PidsLimit != -1 || got.NanoCPUs != 1e9 {
		t.Errorf("apply: %+v %v", got, err)
	}
	if _, err := base.Apply(Update{Memory: i(1)}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("tiny memory: %v", err)
	}
	unlimitedSwap := Resources{Memory: 64 << 20, MemorySwap: -1}
	if got, _ := unlimitedSwap.Apply(Update{Memory: i(128 << 20)}); got.MemorySwap != -1 {
		t.Errorf("unlimited swap lost: %+v", got)
	}
}

func TestCapabilities(t *testing.T) {
	norm := func(s Security) Security {
		out, err := s.Normalize()
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got := Capabilities(Security{}); len(got) != 14 || !slices.Contains(got, "CAP_CHOWN") || slices.Contains(got, "CAP_SYS_ADMIN") {
		t.Errorf("default: %v", got)
	}
	got := Capabilities(norm(Security{CapAdd: []string{"sys_admin"}, CapDrop: []string{"CAP_NET_RAW", "mknod"}}))
	if len(got) != 13 || !slices.Contains(got, "CAP_SYS_ADMIN") || slices.Contains(got, "CAP_NET_RAW") || slices.Contains(got, "CAP_MKNOD") {
		t.Errorf("add/drop: %v", got)
	}
	if got := Capabilities(norm(Security{CapDrop: []string{"all"}, CapAdd: []string{"chown"}})); !slices.Equal(got, []string{"CAP_CHOWN"}) {
		t.Errorf("drop all: %v", got)
	}
	if got := Capabilities(Security{Privileged: true}); len(got) != len(allCapabilities) {
		t.Errorf("privileged: %d caps", len(got))
	}
	for _, s := range []Security{
		{CapAdd: []string{"CAP_BOGUS"}},
		{Seccomp: "/etc/profile.json"},
		{Tmpfs: []Tmpfs{{Path: "relative"}}},
		{Tmpfs: []Tmpfs{{Path: "/"}}},
		{Tmpfs: []Tmpfs{{Path: "/t"}, {Path: "/t/"}}},
		{Tmpfs: []Tmpfs{{Path: "/t", Options: "size=1m,bogus"}}},
	} {
		if _, err := s.Normalize(); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%+v: got %v", s, err)
		}
	}
}
