package drill

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
)

// journalCheck is the outcome of `cairn journal check` on a crashed root.
type journalCheck int

const (
	journalNotRun journalCheck = iota
	journalOK
	journalFailed
	journalSkipped // the CLI has no such command yet
)

var journalCheckNames = map[journalCheck]string{journalNotRun: "not run", journalOK: "ok", journalFailed: "FAILED", journalSkipped: "skipped"}

// cycleResult is what one cycle did and found.
type cycleResult struct {
	Cycle      int
	Ops        opStats
	Crashed    bool // the drill killed the daemon
	KilledShim []string
	KilledProc []string
	Journal    journalCheck
	Recovery   time.Duration // 0 when the daemon did not come back
	States     map[string]int
	Violations []Violation // found this cycle for the first time
	Repeated   int         // found again, already reported by an earlier cycle
}

// Summary is the outcome of a whole drill.
type Summary struct {
	Cycles, Crashes, Recoveries int
	ShimKills, ProcKills        int
	Recovery                    []time.Duration
	Journal                     map[journalCheck]int
	Violations                  int
	OddErrors                   int
	ImageOps, ImageOpsOK        int
	Execs, ExecsOK              int
}

func (s *Summary) add(r cycleResult) {
	s.Cycles++
	if r.Crashed {
		s.Crashes++
	}
	s.ShimKills += len(r.KilledShim)
	s.ProcKills += len(r.KilledProc)
	if r.Recovery > 0 {
		s.Recoveries++
		s.Recovery = append(s.Recovery, r.Recovery)
	}
	if s.Journal == nil {
		s.Journal = map[journalCheck]int{}
	}
	s.Journal[r.Journal]++
	s.Violations += len(r.Violations)
	s.OddErrors += len(r.Ops.Odd)
	s.ImageOps += r.Ops.Images
	s.ImageOpsOK += r.Ops.ImagesOK
	s.Execs += r.Ops.Execs
	s.ExecsOK += r.Ops.ExecsOK
}

// countStates counts containers by state name.
func countStates(cs []*cairnv1.Container) map[string]int {
	out := map[string]int{}
	for _, c := range cs {
		out[stateName(c.State)]++
	}
	return out
}

// printCycle writes a cycle's progress line, then a line per violation
// and per unexpected operation error.
func printCycle(w io.Writer, total int, r cycleResult) {
	killed := []string{"daemon"}
	for _, id := range r.KilledShim {
		killed = append(killed, "shim of "+shortID(id))
	}
	for _, id := range r.KilledProc {
		killed = append(killed, "process of "+shortID(id))
	}
	recovery := "daemon did not come back"
	if r.Recovery > 0 {
		recovery = "recovered in " + r.Recovery.Round(time.Millisecond).String()
	}
	var states []string
	for _, s := range []string{"running", "paused", "stopped", "created"} {
		states = append(states, fmt.Sprintf("%s %d", s, r.States[s]))
	}
	width := len(fmt.Sprint(total))
	repeated := ""
	if r.Repeated > 0 {
		repeated = fmt.Sprintf(" (+%d still there from earlier cycles)", r.Repeated)
	}
	fmt.Fprintf(w, "cycle %*d/%d: ops %d (ok %d, refused %d, cut %d, odd %d) | killed %s | journal check %s | %s | %s | violations %d%s\n",
		width, r.Cycle, total, r.Ops.Done, r.Ops.OK, r.Ops.Refused, r.Ops.Cut, len(r.Ops.Odd),
		strings.Join(killed, ", "), journalCheckNames[r.Journal], recovery, strings.Join(states, " "), len(r.Violations), repeated)
	for _, v := range r.Violations {
		fmt.Fprintf(w, "  VIOLATION %s\n", v)
	}
	for _, odd := range r.Ops.Odd {
		fmt.Fprintf(w, "  odd error (not a violation): %s\n", odd)
	}
}

// print writes the summary.
func (s Summary) print(w io.Writer) {
	fmt.Fprintf(w, "drill: %d cycles, %d daemon crashes, %d recoveries, %d shim kills, %d process kills\n",
		s.Cycles, s.Crashes, s.Recoveries, s.ShimKills, s.ProcKills)
	if len(s.Recovery) > 0 {
		sorted := slices.Clone(s.Recovery)
		slices.Sort(sorted)
		ms := func(d time.Duration) string { return d.Round(100 * time.Microsecond).String() }
		fmt.Fprintf(w, "recovery time: min %s, median %s, max %s\n", ms(sorted[0]), ms(median(sorted)), ms(sorted[len(sorted)-1]))
	}
	fmt.Fprintf(w, "journal check: %d ok, %d failed, %d skipped\n", s.Journal[journalOK], s.Journal[journalFailed], s.Journal[journalSkipped])
	fmt.Fprintf(w, "image operations (load, tag, rm, pull): %d, %d of them ok\n", s.ImageOps, s.ImageOpsOK)
	fmt.Fprintf(w, "exec sessions: %d asked, %d started\n", s.Execs, s.ExecsOK)
	if s.Journal[journalSkipped] > 0 {
		fmt.Fprintln(w, "  (skipped: this cairn has no `journal check` command)")
	}
	fmt.Fprintf(w, "unexpected operation errors: %d\n", s.OddErrors)
	fmt.Fprintf(w, "violations: %d (each counted once, in the cycle that first found it)\n", s.Violations)
}

// median of a sorted, non-empty slice.
func median(sorted []time.Duration) time.Duration {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}
