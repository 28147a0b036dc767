package metrics

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestMetrics_CountsTransitionsAndReportsEveryStateZerosIncluded(t *testing.T) {
	states := map[string]int{"running": 2, "paused": 1}
	m := New(Sources{Containers: func() map[string]int { return states }})
	m.Transition("start", "DONE", 3*time.Millisecond)
	m.Transition("start", "DONE", 3*time.Millisecond)
	m.Transition("start", "FAILED", time.Millisecond)
	m.ExitCodeUnknown()
	if got := testutil.ToFloat64(m.transitions.WithLabelValues("start", "DONE")); got != 2 {
		t.Fatalf("start DONE = %v, want 2", got)
	}
	want := `
# HELP cairn_containers Containers known to the journal, by state (every state, zeros included).
# TYPE cairn_containers gauge
cairn_containers{state="created"} 0
cairn_containers{state="paused"} 1
cairn_containers{state="running"} 2
cairn_containers{state="stopped"} 0
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want), "cairn_containers"); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(m.exitUnknown); got != 1 {
		t.Fatalf("unknown exits = %v", got)
	}
}

func TestMetrics_ScrapeTimeSourcesAndCalls(t *testing.T) {
	m := New(Sources{
		Images:   func() (int, int64, error) { return 2, 300, nil },
		Layers:   func() (int, int64, error) { return 0, 0, errors.New("store not open") },
		Journal:  func() (int, int64) { return 42, 131072 },
		Shims:    func() (int, int) { return 3, 1 },
		Standby:  func() (uint64, uint64) { return 9, 1 },
		Volumes:  func() (int, int) { return 5, 2 },
		Networks: func() (int, int) { return 2, 7 },
	})
	m.Answered("/cairn.v1.ContainerService/Start", "ok", 20*time.Millisecond)
	m.Answered("/cairn.v1.ContainerService/Start", "not_found", time.Millisecond)
	want := `
# HELP cairn_images Images registered.
# TYPE cairn_images gauge
cairn_images 2
# HELP cairn_journal_records Records in the journal (compaction deletes old histories of removed containers).
# TYPE cairn_journal_records gauge
cairn_journal_records 42
# HELP cairn_shims Shim processes alive: of running and paused containers (kind=container), waiting for one (kind=standby).
# TYPE cairn_shims gauge
cairn_shims{kind="container"} 3
cairn_shims{kind="standby"} 1
# HELP cairn_shim_starts_total Container starts by where their shim came from: the standby shim (hit) or started then (miss).
# TYPE cairn_shim_starts_total counter
cairn_shim_starts_total{standby="hit"} 9
cairn_shim_starts_total{standby="miss"} 1
# HELP cairn_volumes Volumes, by whether a container (in any state) mounts them (state=used|unused). Their bytes are in cairn system df, not here: measuring them walks every file.
# TYPE cairn_volumes gauge
cairn_volumes{state="unused"} 3
cairn_volumes{state="used"} 2
# HELP cairn_network_attachments Containers attached to a network (their namespace and address kept).
# TYPE cairn_network_attachments gauge
cairn_network_attachments 7
# HELP cairn_rpc_requests_total API calls answered, by procedure and Connect code (ok for success).
# TYPE cairn_rpc_requests_total counter
cairn_rpc_requests_total{code="not_found",procedure="/cairn.v1.ContainerService/Start"} 1
cairn_rpc_requests_total{code="ok",procedure="/cairn.v1.ContainerService/Start"} 1
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want),
		"cairn_images", "cairn_journal_records", "cairn_shims", "cairn_shim_starts_total", "cairn_rpc_requests_total", "cairn_volumes", "cairn_network_attachments"); err != nil {
		t.Fatal(err)
	}
	// A source that failed is left out rather than reported as zero.
	if n, _ := testutil.GatherAndCount(m.Registry, "cairn_layers"); n != 0 {
		t.Fatalf("cairn_layers reported %d series from a failing source", n)
	}
	if n, _ := testutil.GatherAndCount(m.Registry, "cairn_build_info"); n != 1 {
		t.Fatalf("cairn_build_info: %d series", n)
	}
	if problems, err := testutil.GatherAndLint(m.Registry); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
}
