package metrics

import (
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"testing"
)

// The dashboard and the alert rules in docs/ must name only series cairnd
// serves, and promtool must accept the rules.

var seriesName = regexp.MustCompile(`\bcairn_[a-z_]+`)

// served is every metric name the registry exposes, with the suffixes
// Prometheus adds for histograms.
func served(t *testing.T) map[string]bool {
	t.Helper()
	m := New(Sources{
		Containers: func() map[string]int { return nil },
		Images:     func() (int, int64, error) { return 0, 0, nil },
		Layers:     func() (int, int64, error) { return 0, 0, nil },
		Journal:    func() (int, int64) { return 0, 0 },
		Shims:      func() (int, int) { return 0, 0 },
		Standby:    func() (uint64, uint64) { return 0, 0 },
	})
	m.Transition("start", "DONE", 0)
	m.Answered("/x", "ok", 0)
	m.Committed(1, 0)
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range families {
		names[f.GetName()] = true
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			names[f.GetName()+suffix] = true
		}
	}
	return names
}

func TestDashboardAndAlerts_NameServedSeries(t *testing.T) {
	names := served(t)
	for _, file := range []string{"../docs/grafana-dashboard.json", "../docs/alerts.yml"} {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		used := seriesName.FindAllString(string(data), -1)
		if len(used) == 0 {
			t.Fatalf("%s names no cairn series", file)
		}
		for _, n := range used {
			if !names[n] {
				t.Errorf("%s uses %s, which cairnd does not serve", file, n)
			}
		}
	}
	var dash struct {
		Panels []struct {
			Targets []struct{ Expr string } `json:"targets"`
		} `json:"panels"`
	}
	data, _ := os.ReadFile("../docs/grafana-dashboard.json")
	if err := json.Unmarshal(data, &dash); err != nil || len(dash.Panels) == 0 {
		t.Fatalf("dashboard: %v, %d panels", err, len(dash.Panels))
	}
}

func TestAlerts_PromtoolAcceptsThem(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("needs promtool (Debian's prometheus; scripts/install-deps.sh --dev installs it)")
	}
	if out, err := exec.Command(promtool, "check", "rules", "../docs/alerts.yml").CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
}
