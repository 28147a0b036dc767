package executor

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

const defaultPathEnv = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// containerConfig builds the libcontainer configuration from runc's example
// spec, which already carries runc's defaults for mounts, masked paths,
// capabilities, device rules and namespaces (mount, pid, uts, ipc, and a
// network namespace with only loopback).
func containerConfig(s Spec, cgroupParent string) (*configs.Config, error) {
	spec := specconv.Example()
	spec.Root.Path = s.Rootfs
	// The root is read-write unless Security.ReadOnly (see applySecurity).
	spec.Process.Terminal = false
	spec.Process.Args = s.Args
	spec.Process.Env = processEnv(s.Env)
	spec.Process.Cwd = cwd(s)
	// The container would otherwise inherit the shim's -999 and be the last
	// thing the OOM killer picks.
	spec.Process.OOMScoreAdj = new(0)
	spec.Hostname = hostname(s)
	spec.Linux.CgroupsPath = "/" + cgroupParent + "/" + s.ID
	spec.Linux.Namespaces = networkNamespace(spec.Linux.Namespaces, s)
	if s.NetNS != "" {
		withNetRaw(spec.Process.Capabilities)
	}
	applyResources(spec, s.Resources)
	applySecurity(spec, s.Security)
	spec.Mounts = append(spec.Mounts, mountsOf(s.Mounts)...)
	cfg, err := specconv.CreateLibcontainerConfig(&specconv.CreateOpts{CgroupName: s.ID, Spec: spec})
	if err != nil {
		return nil, fmt.Errorf("container config: %w", err)
	}
	if !s.Security.Privileged {
		cfg.Cgroups.Resources.Devices = withoutBlockMknod(cfg.Cgroups.Resources.Devices)
	}
	return cfg, nil
}

// containerProcess is the container's init process. Its stdio are *os.File
// (the shim's pipes), so os/exec hands them to the child directly and no
// copying goroutine has to outlive anything; with a terminal (console set)
// there are none: the init allocates the terminal and sends its master over
// console.
func containerProcess(s Spec, stdin, stdout, stderr, console *os.File) *libcontainer.Process {
	p := &libcontainer.Process{
		Args:             s.Args,
		Env:              processEnv(s.Env),
		Cwd:              cwd(s),
		UID:              s.UID,
		GID:              s.GID,
		AdditionalGroups: s.AdditionalGIDs,
		Rlimits:          processRlimits(s.Resources.Rlimits(NofileCeiling())),
		Init:             true,
	}
	if console != nil {
		p.ConsoleSocket = console
		return p
	}
	p.Stdin, p.Stdout, p.Stderr = stdin, stdout, stderr
	return p
}

// processEnv adds the usual PATH when env has none: libcontainer resolves
// Args[0] with the container's PATH, and a bare "sh" should work.
func processEnv(env []string) []string {
	for _, kv := range env {
		if strings.HasPrefix(kv, "PATH=") {
			return env
		}
	}
	return append(append(make([]string, 0, len(env)+1), env...), defaultPathEnv)
}

func cwd(s Spec) string {
	if s.Cwd == "" {
		return "/"
	}
	return s.Cwd
}

func hostname(s Spec) string {
	if s.Hostname != "" {
		return s.Hostname
	}
	return s.ID[:min(12, len(s.ID))]
}

// networkNamespace gives the container the network namespace s asks for:
// an existing one (a path the caller bind-mounted), the host's (none
// listed), or, by default, a new one with only loopback.
func networkNamespace(nss []specs.LinuxNamespace, s Spec) []specs.LinuxNamespace {
	out := make([]specs.LinuxNamespace, 0, len(nss))
	for _, ns := range nss {
		if ns.Type == specs.NetworkNamespace {
			if s.HostNetwork {
				continue
			}
			ns.Path = s.NetNS
		}
		out = append(out, ns)
	}
	return out
}

// withNetRaw grants CAP_NET_RAW, as Docker's defaults do, to a container on
// a CNI network: ping (busybox's opens a raw socket) works, and raw sockets
// reach only the container's own network namespace.
func withNetRaw(caps *specs.LinuxCapabilities) {
	if caps == nil {
		return
	}
	for _, set := range []*[]string{&caps.Bounding, &caps.Effective, &caps.Permitted} {
		if !slices.Contains(*set, "CAP_NET_RAW") {
			*set = append(*set, "CAP_NET_RAW")
		}
	}
}
