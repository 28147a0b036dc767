package executor

import (
	"bufio"
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Idle shims are one per container, so their resident memory is the cost of
// a container at rest. Besides its private memory (which re-executing
// itself cuts, see idle.go) a shim maps pages of its binary and libc that
// its start touched, together with their neighbours by fault-around.
// Waiting for an exit needs only a fraction of that code, so the idle shim
// returns its free heap and unmaps its read-only file pages; what the idle
// loop still needs faults back in from the sealed binary or the page cache.

// idleMemoryLimit bounds the Go heap of an idle shim; it is far above what
// one needs (~2 MB), so reaching it means something leaks, and then the GC
// runs again.
const idleMemoryLimit = 32 << 20

// shrinkIdleMemory returns free heap to the OS and drops the process's
// read-only file-backed pages from its resident set.
func shrinkIdleMemory() {
	// An idle shim allocates almost nothing, so the periodic forced GC
	// (every two minutes) would only wake it, re-touch type data and code,
	// and regrow its RSS. A memory limit still collects if something does
	// pile up.
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(idleMemoryLimit)
	// Dropping the pages reads /proc/self/smaps, whose garbage the
	// collection that FreeOSMemory runs then takes, too: with periodic GC
	// off, nothing else would.
	dropReadOnlyFilePages()
	debug.FreeOSMemory()
}

// dropReadOnlyFilePages applies MADV_DONTNEED to the private read-only
// file mappings that hold only unmodified file pages. For those, this merely
// removes page table entries: the next access faults the same file page back
// in. A mapping with anonymous (copied-on-write) pages is skipped: RELRO
// regions such as libc's GOT are written by the dynamic linker and then made
// read-only, and dropping them would revert them to the file's unrelocated
// bytes. Writable mappings are skipped for the same reason.
func dropReadOnlyFilePages() {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return
	}
	var ranges [][2]uintptr
	var cur [2]uintptr
	candidate := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if r, isHeader, ok := parseMapsHeader(line); isHeader {
			cur, candidate = r, ok
			continue
		}
		if candidate && strings.HasPrefix(line, "Anonymous:") {
			if strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(line, "Anonymous:"), "kB")) == "0" {
				ranges = append(ranges, cur)
			}
			candidate = false
		}
	}
	_ = f.Close()
	if sc.Err() != nil {
		return // a partial read could have paired a range with the wrong counters
	}
	for _, r := range ranges {
		// Best effort: a failure only means more resident memory.
		_, _, _ = unix.Syscall(unix.SYS_MADVISE, r[0], r[1]-r[0], unix.MADV_DONTNEED)
	}
}

// parseMapsHeader parses a mapping line of /proc/self/smaps (the format of
// /proc/self/maps). isHeader tells a mapping line from a counter line; ok is
// true for a private, non-writable mapping of a regular file, whose address
// range is returned.
func parseMapsHeader(line string) (r [2]uintptr, isHeader, ok bool) {
	// start-end perms offset dev inode [path]
	fields := strings.Fields(line)
	if len(fields) < 5 || strings.HasSuffix(fields[0], ":") {
		return r, false, false
	}
	lo, hi, found := strings.Cut(fields[0], "-")
	if !found {
		return r, false, false
	}
	start, err1 := strconv.ParseUint(lo, 16, 64)
	end, err2 := strconv.ParseUint(hi, 16, 64)
	if err1 != nil || err2 != nil {
		return r, false, false
	}
	r = [2]uintptr{uintptr(start), uintptr(end)}
	perms, inode := fields[1], fields[4]
	ok = len(fields) >= 6 && strings.HasPrefix(fields[5], "/") && inode != "0" &&
		len(perms) == 4 && perms[0] == 'r' && perms[1] == '-' && perms[3] == 'p' && end > start
	return r, true, ok
}
