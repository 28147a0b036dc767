package executor

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strconv"
	"syscall"

	"github.com/cairn-run/cairn/internal/errdefs"
	"github.com/cairn-run/cairn/internal/procstat"
)

// ProcessInfo is one process of a container, as the host sees it.
type ProcessInfo struct {
	PID, PPID int
	UID       int
	State     string // /proc/<pid>/stat field 3: R, S, D, Z, ...
	StartTime uint64
	// Args is the command line; for a process without one (a kernel
	// thread, a zombie), the name in parentheses.
	Args []string
}

// Top lists the processes of container id: every process in its cgroup,
// the init and exec sessions included, ordered by PID. A container without
// a cgroup (not running) is errdefs.ErrFailedPrecondition.
func (e *Executor) Top(id string) ([]ProcessInfo, error) {
	if err := validateID(id); err != nil {
		return nil, err
	}
	rel := e.cgroupPath(id)
	if !e.mounts.exists(rel) {
		return nil, fmt.Errorf("top %s: the container is not running: %w", id, errdefs.ErrFailedPrecondition)
	}
	pids := e.mounts.pids(rel)
	slices.Sort(pids)
	out := make([]ProcessInfo, 0, len(pids))
	for _, pid := range pids {
		st, err := procstat.Read(pid)
		if err != nil {
			continue // gone meanwhile
		}
		info := ProcessInfo{PID: pid, PPID: st.PPID, State: string(st.State), StartTime: st.StartTime, UID: -1}
		if fi, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
			if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
				info.UID = int(sys.Uid)
			}
		}
		if cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline"); err == nil && len(cmdline) > 0 {
			for _, a := range bytes.Split(bytes.TrimSuffix(cmdline, []byte{0}), []byte{0}) {
				info.Args = append(info.Args, string(a))
			}
		} else if comm, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm"); err == nil {
			info.Args = []string{"(" + string(bytes.TrimSpace(comm)) + ")"}
		}
		out = append(out, info)
	}
	return out, nil
}
