package executor

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cairn-run/cairn/internal/procstat"
)

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
	for procstat.Alive(pid, startTime) {
		if err := pollUntilReadable(ctx, pidfd); err != nil {
			return err
		}
		if !procstat.Alive(pid, startTime) {
			break
		}
		// A pidfd also turns readable, for a moment, while a
		// multi-threaded process execs from a thread other than its leader;
		// the process is still there. (Shims exec from their leader, see
		// init.go, but the process waited for may be anything.)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
	return nil
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
