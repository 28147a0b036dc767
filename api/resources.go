package api

import (
	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/resources"
)

func resourcesFromProto(m *cairnv1.Resources) resources.Resources {
	if m == nil {
		return resources.Resources{}
	}
	r := resources.Resources{Memory: m.MemoryBytes, MemorySwap: m.MemorySwapBytes, NanoCPUs: m.NanoCpus,
		CPUShares: m.CpuShares, CpusetCpus: m.CpusetCpus, PidsLimit: m.PidsLimit}
	for _, u := range m.Ulimits {
		r.Ulimits = append(r.Ulimits, resources.Ulimit{Name: u.Name, Soft: u.Soft, Hard: u.Hard})
	}
	return r
}

func resourcesToProto(r resources.Resources) *cairnv1.Resources {
	m := &cairnv1.Resources{MemoryBytes: r.Memory, MemorySwapBytes: r.MemorySwap, NanoCpus: r.NanoCPUs,
		CpuShares: r.CPUShares, CpusetCpus: r.CpusetCpus, PidsLimit: r.PidsLimit}
	for _, u := range r.Ulimits {
		m.Ulimits = append(m.Ulimits, &cairnv1.Ulimit{Name: u.Name, Soft: u.Soft, Hard: u.Hard})
	}
	return m
}

func securityFromProto(m *cairnv1.SecurityOptions) resources.Security {
	if m == nil {
		return resources.Security{}
	}
	s := resources.Security{CapAdd: m.CapAdd, CapDrop: m.CapDrop, Privileged: m.Privileged, Seccomp: m.Seccomp,
		NoNewPrivileges: m.NoNewPrivileges, ReadOnly: m.ReadOnly}
	for _, t := range m.Tmpfs {
		s.Tmpfs = append(s.Tmpfs, resources.Tmpfs{Path: t.Path, Options: t.Options})
	}
	return s
}

// securityToProto shows a custom seccomp profile as "custom": the profile
// itself is in the create record (cairn history).
func securityToProto(s resources.Security) *cairnv1.SecurityOptions {
	m := &cairnv1.SecurityOptions{CapAdd: s.CapAdd, CapDrop: s.CapDrop, Privileged: s.Privileged, Seccomp: s.Seccomp,
		NoNewPrivileges: s.NoNewPrivileges, ReadOnly: s.ReadOnly}
	if s.Seccomp != "" && s.Seccomp != resources.SeccompUnconfined {
		m.Seccomp = "custom"
	}
	for _, t := range s.Tmpfs {
		m.Tmpfs = append(m.Tmpfs, &cairnv1.Tmpfs{Path: t.Path, Options: t.Options})
	}
	return m
}
