package executor

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// procStat holds the fields of /proc/<pid>/stat that identify a process
// across PID reuse: a PID names a process only together with its start time.
type procStat struct {
	State     byte   // field 3: R, S, D, Z, X, ...
	StartTime uint64 // field 22: clock ticks after boot
}

// parseProcStat parses the content of /proc/<pid>/stat. The command name
// (field 2) may contain spaces and parentheses, so fields are counted from the
// last ')'.
func parseProcStat(data []byte) (procStat, error) {
	end := bytes.LastIndexByte(data, ')')
	if end < 0 {
		return procStat{}, errors.New("proc stat: no command name")
	}
	// After ") " come fields 3, 4, ...; field 22 is the 20th of them.
	fields := bytes.Fields(data[end+1:])
	const startTimeIdx = 22 - 3
	if len(fields) <= startTimeIdx || len(fields[0]) != 1 {
		return procStat{}, fmt.Errorf("proc stat: %d fields after the command name, want > %d", len(fields), startTimeIdx)
	}
	start, err := strconv.ParseUint(string(fields[startTimeIdx]), 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("proc stat: start time: %w", err)
	}
	return procStat{State: fields[0][0], StartTime: start}, nil
}

func readProcStat(pid int) (procStat, error) {
	if pid <= 0 {
		return procStat{}, fmt.Errorf("pid %d: %w", pid, os.ErrNotExist)
	}
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	return parseProcStat(data)
}

// identifies reports whether st is the live process that was recorded with
// startTime. A zombie has finished running and no longer counts.
func (st procStat) identifies(startTime uint64) bool {
	return st.StartTime == startTime && !st.zombie()
}

// zombie: the process has exited and only waits to be reaped (or is dead).
func (st procStat) zombie() bool { return st.State == 'Z' || st.State == 'X' }

// processAlive reports whether pid still names the process that was recorded
// with startTime and that process has not exited.
func processAlive(pid int, startTime uint64) bool {
	st, err := readProcStat(pid)
	return err == nil && st.identifies(startTime)
}

// waitProcessGone blocks until the process pid+startTime has exited (or was
// never there). It works for processes that are not our children by polling a
// pidfd, which becomes readable when the process exits, zombie or not.
func waitProcessGone(ctx context.Context, pid int, startTime uint64) error {
	if pid <= 0 {
		return nil
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return nil
		}
		return fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	defer unix.Close(pidfd)
	// Checked after opening the pidfd: if the start time still matches now,
	// the pidfd refers to the recorded process and not a PID-reusing successor.
	if !processAlive(pid, startTime) {
		return nil
	}
	return pollUntilReadable(ctx, pidfd)
}

// pollUntilReadable waits for fd to become readable or ctx to end. A
// cancelled context wakes the poll through an eventfd, so no timer loop runs.
func pollUntilReadable(ctx context.Context, fd int) error {
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return fmt.Errorf("eventfd: %w", err)
	}
	defer unix.Close(wake)
	stop := context.AfterFunc(ctx, func() {
		var one [8]byte
		binary.NativeEndian.PutUint64(one[:], 1)
		_, _ = unix.Write(wake, one[:])
	})
	defer stop()
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}, {Fd: int32(wake), Events: unix.POLLIN}}
	for {
		_, err := unix.Poll(fds, -1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("poll: %w", err)
		}
		if fds[0].Revents != 0 {
			return nil
		}
		if fds[1].Revents != 0 {
			return ctx.Err()
		}
	}
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's start time; 100 on
// every Linux architecture Cairn runs on.
const clockTicks = 100

// startedAt converts a process start time (clock ticks since boot) to wall
// clock time, using the boot time from /proc/stat. It is zero when the boot
// time cannot be read.
func startedAt(startTime uint64) time.Time {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return time.Time{}
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "btime "); ok {
			boot, err := strconv.ParseInt(strings.TrimSpace(rest), 10, 64)
			if err != nil {
				return time.Time{}
			}
			ticks := time.Duration(startTime) * time.Second / clockTicks
			return time.Unix(boot, 0).Add(ticks).UTC()
		}
	}
	return time.Time{}
}
