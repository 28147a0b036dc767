package executor

import (
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/opencontainers/cgroups"
)

// Moving a process between cgroups takes a global lock (the kernel's
// cgroup_threadgroup_rwsem) whose first writer after a quiet period waits
// for an RCU grace period: on this kind of machine 5-30 ms, the largest
// single cost of a container start, paid when libcontainer puts the new
// init into its cgroups. After a writer leaves, further writers pass
// without waiting for about one grace period more.
//
// So the executor keeps the lock warm while a start is coming or under way:
// it "moves" the daemon into the cgroup it is already in (a no-op migration
// that takes the same lock) as a create or start transition begins, so that
// the one wait overlaps the intent's fsync and the rootfs mount, and repeats
// that every warmInterval, well inside a grace period, until the start has
// returned. A lone no-op migration, as before, was stale by the time the
// shim migrated the init whenever more than a grace period lay between
// them (a `run` journals a create and then a start first).

const (
	// warmInterval is how often the no-op migration is repeated while the
	// lock is kept warm: shorter than a grace period (~10 ms here; a window
	// of 10 ms after a writer stayed fast in every trial, one of 20 ms did
	// not).
	warmInterval = 3 * time.Millisecond
	// warmAhead is how long a WarmUp keeps the lock warm when no Start
	// follows it; a Start keeps it warm until it returns.
	warmAhead = 150 * time.Millisecond
)

// selfFreezerProcs is the cgroup.procs file of this process's own freezer
// cgroup, or "" when it cannot be found.
func (m cgroupMounts) selfFreezerProcs() string {
	if m.freezer == "" {
		return ""
	}
	paths, err := cgroups.ParseCgroupFile("/proc/self/cgroup")
	if err != nil || paths["freezer"] == "" {
		return ""
	}
	return filepath.Join(m.freezer, paths["freezer"], "cgroup.procs")
}

// warmer keeps the cgroup migration lock warm: one goroutine, running while
// a start is expected (until) or under way (starts).
type warmer struct {
	procs string // our own cgroup.procs; "" disables warming

	mu      sync.Mutex
	until   time.Time
	starts  int
	running bool
	closed  bool
}

// ahead keeps the lock warm for d from now.
func (w *warmer) ahead(d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if t := time.Now().Add(d); t.After(w.until) {
		w.until = t
	}
	w.runLocked()
}

// during keeps the lock warm until the returned function is called.
func (w *warmer) during() (end func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.starts++
	w.runLocked()
	return func() {
		w.mu.Lock()
		w.starts--
		w.mu.Unlock()
	}
}

// stop ends warming for good; a migration in flight finishes on its own.
func (w *warmer) stop() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
}

func (w *warmer) runLocked() {
	if w.procs == "" || w.running || w.closed {
		return
	}
	w.running = true
	go w.loop()
}

func (w *warmer) loop() {
	pid := []byte(strconv.Itoa(os.Getpid()))
	for {
		// Best effort: failing only loses the head start.
		_ = os.WriteFile(w.procs, pid, 0)
		w.mu.Lock()
		if w.closed || (w.starts == 0 && time.Now().After(w.until)) {
			w.running = false
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
		time.Sleep(warmInterval)
	}
}

// WarmUp starts, in the background, the slow kernel work the next Start
// will need, and keeps it done until that Start has returned (or for a
// moment, if none comes); calling it shortly before Start (the daemon does,
// as a create or start transition begins) makes the start faster.
func (e *Executor) WarmUp() {
	e.warm.ahead(warmAhead)
}
