package executor

import (
	"fmt"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/runc/libcontainer"

	"github.com/cairn-run/cairn/internal/errdefs"
	"github.com/cairn-run/cairn/resources"
)

// UpdateLimits writes r to live container id's cgroup through
// libcontainer (Container.Set, as `runc update` does: the cgroup manager
// writes the files and the state file keeps the new configuration). p must
// still be the container's init.
func (e *Executor) UpdateLimits(id string, p Process, r resources.Resources) error {
	if err := validateID(id); err != nil {
		return err
	}
	c, err := libcontainer.Load(e.runtimeRoot(), id)
	if err != nil {
		return fmt.Errorf("update %s: %w: %w", id, err, errdefs.ErrNotFound)
	}
	st, err := c.State()
	if err != nil {
		return fmt.Errorf("update %s: %w", id, err)
	}
	if st.InitProcessPid != p.PID || st.InitProcessStartTime != p.StartTime {
		return fmt.Errorf("update %s: pid %d is not the container's init any more: %w", id, p.PID, errdefs.ErrNotFound)
	}
	cfg := c.Config()
	setUpdatedResources(cfg.Cgroups.Resources, r)
	if err := c.Set(cfg); err != nil {
		return fmt.Errorf("update %s: %w", id, err)
	}
	return nil
}

// setUpdatedResources puts r's cgroup limits into res for a live write.
// Unlike at create, "no limit" must be written (-1: "max"), or the old
// limit would stay.
func setUpdatedResources(res *cgroups.Resources, r resources.Resources) {
	orMax := func(n int64) int64 {
		if n == 0 {
			return -1
		}
		return n
	}
	res.Memory = orMax(r.Memory)
	res.MemorySwap = orMax(r.SwapLimit())
	if r.Memory == 0 {
		res.MemorySwap = -1
	}
	res.CpuQuota, res.CpuPeriod = orMax(r.CPUQuota()), resources.CPUPeriod
	pids := orMax(r.PidsLimit)
	res.PidsLimit = &pids
}
