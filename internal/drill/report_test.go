package drill

import (
	"strings"
	"testing"
	"time"
)

func TestReport_CycleLineAndSummary(t *testing.T) {
	var sum Summary
	results := []cycleResult{
		{Cycle: 1, Crashed: true, Ops: opStats{Done: 5, OK: 3, Refused: 1, Cut: 1}, KilledShim: []string{idRunning}, KilledProc: []string{idRunning},
			Journal: journalOK, Recovery: 30 * time.Millisecond, States: map[string]int{"running": 2, "stopped": 1}},
		{Cycle: 2, Crashed: true, Journal: journalSkipped, Recovery: 10 * time.Millisecond,
			Violations: []Violation{finding(2, idStopped, "exit-code", "137", "255")}, Repeated: 1},
		{Cycle: 3, Crashed: true, Journal: journalOK, Recovery: 20 * time.Millisecond, Ops: opStats{Odd: []string{"start x: internal"}}},
	}
	var out strings.Builder
	for _, r := range results {
		sum.add(r)
		printCycle(&out, 3, r)
	}
	sum.print(&out)
	for _, want := range []string{
		"cycle 1/3: ops 5 (ok 3, refused 1, cut 1, odd 0) | killed daemon, shim of aaaa00000000, process of aaaa00000000 | journal check ok | recovered in 30ms | running 2 paused 0 stopped 1 created 0 | violations 0\n",
		"violations 1 (+1 still there from earlier cycles)\n",
		"  VIOLATION cycle 2 container cccc00000000: exit-code: expected 137; seen 255\n",
		"  odd error (not a violation): start x: internal\n",
		"drill: 3 cycles, 3 daemon crashes, 3 recoveries, 1 shim kills, 1 process kills\n",
		"recovery time: min 10ms, median 20ms, max 30ms\n",
		"journal check: 2 ok, 0 failed, 1 skipped\n",
		"unexpected operation errors: 1\n",
		"violations: 1 ",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

func TestMedian(t *testing.T) {
	if got := median([]time.Duration{1, 2, 3, 10}); got != 2 {
		t.Errorf("median of an even count = %v", got)
	}
	if got := median([]time.Duration{5}); got != 5 {
		t.Errorf("median of one = %v", got)
	}
}
