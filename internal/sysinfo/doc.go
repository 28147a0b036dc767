// Package sysinfo gathers what `cairn info` and `cairn system df` report:
// facts of the host (kernel, cgroup version, CPUs, memory) read at the
// edge, and the disk usage of images, layers and writable layers computed
// by a pure function from what the stores list.
package sysinfo
