// Package resources holds what a container may use and what it may do:
// cgroup limits (memory, swap, CPU quota and shares, cpuset, pids), process
// rlimits, and the security options (capabilities, seccomp, no-new-privileges,
// read-only root with tmpfs mounts). The types are journaled in a
// container's create record (statemachine.ContainerConfig) and handed to the
// executor, which turns them into libcontainer's configuration.
//
// Everything here is pure: validation, the daemon-wide defaults a create
// resolves (Resolve), the capability set (Capabilities, Docker's 14 by
// default) and the values the cgroup files of either cgroup version hold
// for a set of limits (CgroupFiles), which the tests compare with the files
// of real containers. It is imported by the shim, so it stays light: no
// regexps, no large tables.
package resources
