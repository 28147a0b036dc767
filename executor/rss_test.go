package executor

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// procMemKB returns the memory lines (VmRSS, RssAnon, RssFile, ...) of
// /proc/<pid>/status in kB.
func procMemKB(pid int) map[string]int {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return nil
	}
	defer f.Close()
	out := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || !(strings.HasPrefix(k, "Vm") || strings.HasPrefix(k, "Rss")) {
			continue
		}
		if n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB")); err == nil {
			out[k] = n
		}
	}
	return out
}

// TestShim_IdleRSS reports the resident memory of a shim whose container is
// running (the steady state of every live container). Under -race the
// number is meaningless (the race runtime's shadow memory); measure with
// `go test -run IdleRSS -v ./executor/`.
func TestShim_IdleRSS(t *testing.T) {
	env := newTestEnv(t)
	p := env.start("rss", "sleep", "1000")
	if os.Getenv("CAIRN_RSS_LONG") != "" {
		// Past the runtime's two-minute forced-GC period: the idle number
		// must hold, not just right after the start.
		time.Sleep(130 * time.Second)
	}
	// Let the shim re-execute itself for the idle wait, and settle.
	deadline := time.Now().Add(reexecDelay + 10*time.Second)
	for !reexecuted(p.ShimPID) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(shrinkDelay + 200*time.Millisecond)
	m := procMemKB(p.ShimPID)
	t.Logf("idle shim: VmRSS %d kB (RssAnon %d, RssFile %d, RssShmem %d), VmHWM %d kB, re-executed %v, race=%v",
		m["VmRSS"], m["RssAnon"], m["RssFile"], m["RssShmem"], m["VmHWM"], reexecuted(p.ShimPID), raceEnabled)
	if err := env.ex.Signal("rss", p, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	env.wait(env.ex, "rss", p)
}
