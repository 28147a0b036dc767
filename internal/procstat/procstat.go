// Package procstat reads /proc/<pid>/stat for what identifies a process. A
// PID alone names a process only until it exits and the PID is reused; with
// its start time it names exactly one. The executor (reattach, signals,
// waits) and the inspect package (the drill, tests) judge processes through
// this one reader, so they agree on what "alive" means.
//
// It is deliberately small and has no package initialisation: every process
// of the cairn binary links it, a container's init stub and each idle shim
// included (a general /proc library's init cost ~0.2 ms and ~100 kB of
// allocations in each of them).
package procstat

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
)

// Stat holds the fields of /proc/<pid>/stat that say whether a process is
// the one that was recorded.
type Stat struct {
	State     byte   // field 3: R, S, D, Z, X, ...
	PPID      int    // field 4
	StartTime uint64 // field 22: clock ticks after boot
}

// Parse parses the content of /proc/<pid>/stat. The command name (field 2)
// may hold spaces and parentheses, so fields are counted from the last ')'.
func Parse(data []byte) (Stat, error) {
	end := bytes.LastIndexByte(data, ')')
	if end < 0 {
		return Stat{}, errors.New("proc stat: no command name")
	}
	// After ") " come fields 3, 4, ...; field 22 is the 20th of them.
	fields := bytes.Fields(data[end+1:])
	const startTimeIdx = 22 - 3
	if len(fields) <= startTimeIdx || len(fields[0]) != 1 {
		return Stat{}, fmt.Errorf("proc stat: %d fields after the command name, want > %d", len(fields), startTimeIdx)
	}
	ppid, err := strconv.Atoi(string(fields[1]))
	if err != nil {
		return Stat{}, fmt.Errorf("proc stat: ppid: %w", err)
	}
	start, err := strconv.ParseUint(string(fields[startTimeIdx]), 10, 64)
	if err != nil {
		return Stat{}, fmt.Errorf("proc stat: start time: %w", err)
	}
	return Stat{State: fields[0][0], PPID: ppid, StartTime: start}, nil
}

// Read reads /proc/<pid>/stat. A process that does not exist (or a PID
// below 1) is an error wrapping os.ErrNotExist.
func Read(pid int) (Stat, error) {
	if pid <= 0 {
		return Stat{}, fmt.Errorf("pid %d: %w", pid, os.ErrNotExist)
	}
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Stat{}, err
	}
	return Parse(data)
}

// Dead reports whether the process has finished running: a zombie waiting
// to be reaped, or dead.
func (s Stat) Dead() bool { return s.State == 'Z' || s.State == 'X' }

// Is reports whether s is the live process that was recorded with
// startTime. A zombie has finished running and no longer counts.
func (s Stat) Is(startTime uint64) bool { return s.StartTime == startTime && !s.Dead() }

// Alive reports whether pid still names the live process that was recorded
// with startTime, and not a later process that reused the PID.
func Alive(pid int, startTime uint64) bool {
	st, err := Read(pid)
	return err == nil && st.Is(startTime)
}
