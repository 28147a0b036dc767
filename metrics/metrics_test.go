package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestMetrics_CountsTransitionsAndStates(t *testing.T) {
	states := map[string]int{"running": 2, "paused": 1}
	m := New(func() map[string]int { return states })
	m.Transition("start", "DONE", 3*time.Millisecond)
	m.Transition("start", "DONE", 3*time.Millisecond)
	m.Transition("start", "FAILED", time.Millisecond)
	m.ExitCodeUnknown()
	if got := testutil.ToFloat64(m.transitions.WithLabelValues("start", "DONE")); got != 2 {
		t.Fatalf("start DONE = %v, want 2", got)
	}
	want := `
# HELP cairn_containers Containers known to the journal, by state.
# TYPE cairn_containers gauge
cairn_containers{state="paused"} 1
cairn_containers{state="running"} 2
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want), "cairn_containers"); err != nil {
		t.Fatal(err)
	}
	states["running"] = 5
	if n, _ := testutil.GatherAndCount(m.Registry, "cairn_exit_code_unknown_total"); n != 1 {
		t.Fatalf("exit_code_unknown series: %d", n)
	}
	if got := testutil.ToFloat64(m.exitUnknown); got != 1 {
		t.Fatalf("unknown exits = %v", got)
	}
}
