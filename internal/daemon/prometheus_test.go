package daemon_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"connectrpc.com/connect"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/internal/daemon"
	"github.com/cairn-run/cairn/internal/testenv/scratch"
)

// freeAddr is a loopback address nobody listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// prometheusServer starts Debian's prometheus on loopback, scraping target
// every second, and returns its address.
func prometheusServer(t *testing.T, target string) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatal("needs Debian's prometheus (scripts/install-deps.sh --dev installs it)")
	}
	dir := t.TempDir()
	config := fmt.Sprintf("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: cairn\n    static_configs:\n      - targets: [%q]\n", target)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	cmd := exec.Command(bin, "--config.file", filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path", filepath.Join(dir, "data"),
		"--web.listen-address", addr)
	log, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = log.Close()
	})
	return addr
}

// query asks prometheus for an instant vector and returns its first value,
// or -1 when it is empty.
func query(t *testing.T, prom, q string) float64 {
	t.Helper()
	res, err := http.Get("http://" + prom + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return -1
	}
	defer res.Body.Close()
	var body struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil || len(body.Data.Result) == 0 {
		return -1
	}
	s, _ := body.Data.Result[0].Value[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return -1
	}
	return v
}

func TestMetrics_ARealPrometheusScrapesCairnd(t *testing.T) {
	metricsAddr := freeAddr(t)
	e := scratch.NewBinaryDaemon(t, func(c *daemon.Config) { c.MetricsAddr = metricsAddr })
	prom := prometheusServer(t, metricsAddr)
	running := runDetached(t, e, "sleep", "1000")
	paused := runDetached(t, e, "sleep", "1000")
	if _, err := e.Containers.Pause(bg, connect.NewRequest(&cairnv1.PauseRequest{Id: paused.Id})); err != nil {
		t.Fatal(err)
	}
	expect := func(q string, ok func(float64) bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		var v float64
		for time.Now().Before(deadline) {
			if v = query(t, prom, q); ok(v) {
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Errorf("%s = %v", q, v)
	}
	is := func(want float64) func(float64) bool { return func(v float64) bool { return v == want } }
	expect(`cairn_containers{state="paused"}`, is(1))
	expect(`cairn_containers{state="running"}`, is(1))
	expect(`cairn_containers{state="created"}`, is(0))            // reported, though none is
	expect(`sum(cairn_transitions_total{outcome="DONE"})`, is(5)) // two creates, two starts, a pause
	expect(`cairn_rpc_requests_total{procedure="/cairn.v1.ContainerService/Pause",code="ok"}`, is(1))
	expect(`cairn_images`, is(1))
	expect(`cairn_shims{kind="container"}`, is(2))
	expect(`count(cairn_build_info)`, is(1))
	// Per-container series, read from the cgroup at scrape time.
	expect(`count(cairn_container_memory_usage_bytes{id="`+running.Id+`"} > 0)`, is(1))
	expect(`count(cairn_container_pids{id="`+paused.Id+`"} > 0)`, is(1))

	// Across a restart the gauges are right at once, and the counters
	// continue from the journal instead of starting again at zero.
	e.Stop()
	e.Start()
	remove(t, e, running.Id, true)
	expect(`cairn_containers{state="running"}`, is(0))
	expect(`cairn_containers{state="paused"}`, is(1))
	expect(`sum(cairn_transitions_total{outcome="DONE"})`, is(6))
	expect(`cairn_transitions_total{event="pause",outcome="DONE"}`, is(1))
	expect(`resets(cairn_transitions_total{event="start",outcome="DONE"}[5m])`, is(0))
	// ... and so are the per-container series (cadvisor#2306 loses them).
	expect(`count(cairn_container_memory_usage_bytes{id="`+paused.Id+`"} > 0)`, is(1))
	expect(`absent(cairn_container_memory_usage_bytes{id="`+running.Id+`"})`, is(1)) // removed: its series went stale

	// promtool has nothing to say about what cairnd serves.
	res, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	check := exec.Command("promtool", "check", "metrics")
	check.Stdin = bytes.NewReader(body)
	if out, err := check.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
	remove(t, e, paused.Id, true)
}
