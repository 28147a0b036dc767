package daemon

import (
	"fmt"
	"slices"
	"time"

	"github.com/moby/profiles/seccomp"
	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/cairn-run/cairn/executor"
	"github.com/cairn-run/cairn/internal/errdefs"
	"github.com/cairn-run/cairn/metrics"
	"github.com/cairn-run/cairn/resources"
	sm "github.com/cairn-run/cairn/statemachine"
)

// securitySpec turns a container's security options into what the
// executor applies: Docker's capability arithmetic and Docker's default
// seccomp profile (moby/profiles, which also opens the syscalls the
// capabilities need), or the container's own profile. A build without
// seccomp support (no `seccomp` tag) runs the default profile's containers
// unfiltered, as Docker does on a kernel without seccomp; a custom profile
// is then refused.
func securitySpec(sec resources.Security) (executor.SecuritySpec, error) {
	caps := resources.Capabilities(sec)
	if sec.Privileged {
		// Every capability cairnd has: a host may withhold some even from
		// root (this kind of VM withholds CAP_SYS_RESOURCE), and asking
		// for one the daemon lacks fails the start.
		caps = executor.OwnCapabilities(caps)
	}
	out := executor.SecuritySpec{Capabilities: caps, NoNewPrivileges: sec.NoNewPrivileges, Privileged: sec.Privileged,
		ReadOnly: sec.ReadOnly, Tmpfs: sec.Tmpfs}
	if sec.Privileged || sec.Seccomp == resources.SeccompUnconfined {
		return out, nil
	}
	if sec.Seccomp == "" && !executor.SeccompSupported() {
		return out, nil
	}
	profile, err := seccompProfile(sec.Seccomp, caps)
	if err != nil {
		return out, err
	}
	out.Seccomp = profile
	return out, nil
}

func seccompProfile(custom string, caps []string) (*specs.LinuxSeccomp, error) {
	// The profile's conditional rules look at the process's capabilities.
	rs := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: caps}}}
	if custom == "" {
		p, err := seccomp.GetDefaultProfile(rs)
		if err != nil {
			return nil, fmt.Errorf("default seccomp profile: %w", err)
		}
		p.Architectures = withoutX32(p.Architectures)
		return p, nil
	}
	if !executor.SeccompSupported() {
		return nil, fmt.Errorf("a seccomp profile was given but this cairnd was built without seccomp support (go build -tags seccomp): %w", errdefs.ErrFailedPrecondition)
	}
	p, err := seccomp.LoadProfile(custom, rs)
	if err != nil {
		return nil, fmt.Errorf("seccomp profile: %s: %w", errdefs.Quote(err.Error()), errdefs.ErrInvalidArgument)
	}
	return p, nil
}

// checkSecurity is the create-time check (statemachine.Deps.CheckSecurity):
// a profile that cannot be loaded is refused before anything is recorded.
func checkSecurity(sec resources.Security) error {
	_, err := securitySpec(sec)
	return err
}

// resourceDefaults are the daemon-wide defaults a create resolves.
func (d *Daemon) resourceDefaults() resources.Defaults {
	pids := d.cfg.DefaultPidsLimit
	if pids == 0 {
		pids = resources.DefaultPidsLimit
	}
	return resources.Defaults{PidsLimit: pids, MaxNofile: executor.NofileCeiling()}
}

// UpdateLimits makes the executor a statemachine.Limiter.
func (r runtime) UpdateLimits(id string, p sm.Process, res resources.Resources) error {
	return r.exec.UpdateLimits(id, executor.Process(p), res)
}

// Stats reads a live container's cgroup for the API's Stats stream.
func (r runtime) Stats(id string, p sm.Process) (executor.Stats, error) {
	return r.exec.Stats(id, executor.Process(p))
}

// UpdateLimits makes recovery's runtime a recovery.Limiter.
func (r recoveryRuntime) UpdateLimits(id string, p sm.Process, res resources.Resources) error {
	return r.exec.UpdateLimits(id, executor.Process(p), res)
}

// containerUsage reads the cgroup of every running or paused container for
// the per-container series.
func (d *Daemon) containerUsage() []metrics.ContainerUsage {
	if d.journal == nil || d.exec == nil {
		return nil
	}
	var out []metrics.ContainerUsage
	for _, c := range d.journal.Containers() {
		if c.Process == nil || !c.State.HasProcess() {
			continue
		}
		st, err := d.exec.Stats(c.ID, executor.Process(*c.Process))
		if err != nil {
			continue // exited since the view was read
		}
		out = append(out, metrics.ContainerUsage{ID: c.ID, Name: c.Name, Image: c.Image,
			CPUSeconds: float64(st.CPUUsageNS) / 1e9, MemoryUsage: float64(st.MemoryUsage), MemoryWorkingSet: float64(st.MemoryWorkingSet),
			Pids: float64(st.Pids), OOMEvents: float64(st.OOMKills)})
	}
	return out
}

// withoutX32 drops the x32 ABI from the default profile's architectures.
// Its rules triple the time libseccomp and runc's patchbpf take to build
// the filter in every container's init (about 100 ms of a 140 ms
// `run --rm` on the benchmark machine), for an ABI no image uses and most
// kernels disable; an x32 syscall is then refused as one of an unknown
// architecture, so nothing is allowed that was not. The 32-bit x86 ABI
// stays: i386 images run as under Docker.
func withoutX32(arches []specs.Arch) []specs.Arch {
	return slices.DeleteFunc(slices.Clone(arches), func(a specs.Arch) bool { return a == specs.ArchX32 })
}

// CPUUsage reads a live container's CPU time alone.
func (r runtime) CPUUsage(id string) (uint64, time.Time, error) { return r.exec.CPUUsage(id) }
