package executor

import (
	"fmt"
	"os"
	"strings"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/specconv"
)

const defaultPathEnv = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// containerConfig builds the libcontainer configuration from runc's example
// spec, which already carries runc's defaults for mounts, masked paths,
// capabilities, device rules and namespaces (mount, pid, uts, ipc, and a
// network namespace with only loopback).
func containerConfig(s Spec, cgroupParent string) (*configs.Config, error) {
	spec := specconv.Example()
	spec.Root.Path = s.Rootfs
	spec.Root.Readonly = false // the example's default; the caller's rootfs is the container's RW view
	spec.Process.Terminal = false
	spec.Process.Args = s.Args
	spec.Process.Env = processEnv(s.Env)
	spec.Process.Cwd = cwd(s)
	// The container would otherwise inherit the shim's -999 and be the last
	// thing the OOM killer picks.
	spec.Process.OOMScoreAdj = new(0)
	spec.Hostname = hostname(s)
	spec.Linux.CgroupsPath = "/" + cgroupParent + "/" + s.ID
	spec.Mounts = append(spec.Mounts, mountsOf(s.Mounts)...)
	cfg, err := specconv.CreateLibcontainerConfig(&specconv.CreateOpts{CgroupName: s.ID, Spec: spec})
	if err != nil {
		return nil, fmt.Errorf("container config: %w", err)
	}
	return cfg, nil
}

// containerProcess is the container's init process. Its stdio are *os.File,
// so os/exec hands them to the child directly and no copying goroutine has to
// outlive anything.
func containerProcess(s Spec, stdin, log *os.File) *libcontainer.Process {
	return &libcontainer.Process{
		Args:             s.Args,
		Env:              processEnv(s.Env),
		Cwd:              cwd(s),
		UID:              s.UID,
		GID:              s.GID,
		AdditionalGroups: s.AdditionalGIDs,
		Stdin:            stdin,
		Stdout:           log,
		Stderr:           log,
		Init:             true,
	}
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
