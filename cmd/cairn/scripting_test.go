package main_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/cairn-run/cairn/internal/testenv/scratch"
)

// lines splits output into its non-empty lines.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

func mustCLI(t *testing.T, e *scratch.Env, args ...string) string {
	t.Helper()
	out, errOut, code := cli(t, e, args...)
	if code != 0 {
		t.Fatalf("cairn %v: exit %d\n%s%s", args, code, out, errOut)
	}
	return out
}

func TestCLI_ScriptsCanRelyOnPsInspectAndImageLs(t *testing.T) {
	e := scratch.NewDaemon(t)
	web := strings.TrimSpace(mustCLI(t, e, "run", "-d", "--name", "web", "busybox", "sleep", "1000"))
	if _, _, code := cli(t, e, "run", "--name", "job", "busybox", "sh", "-c", "exit 3"); code != 3 {
		t.Fatalf("run job: exit %d", code)
	}
	mustCLI(t, e, "create", "--name", "fresh", "busybox", "true")

	if got := lines(mustCLI(t, e, "ps", "-q")); len(got) != 1 || got[0] != web[:12] {
		t.Errorf("ps -q = %q, want the running container's short id", got)
	}
	if got := lines(mustCLI(t, e, "ps", "-aq", "--no-trunc")); len(got) != 3 {
		t.Errorf("ps -aq --no-trunc = %q, want 3 full ids", got)
	} else {
		for _, id := range got {
			if len(id) != 64 {
				t.Errorf("ps --no-trunc id %q", id)
			}
		}
	}
	if got := mustCLI(t, e, "ps", "--filter", "status=exited", "--format", "{{.name}} {{.exit_code}}"); got != "job 3\n" {
		t.Errorf("ps --filter status=exited = %q (a status filter lists stopped containers without -a)", got)
	}
	if got := lines(mustCLI(t, e, "ps", "-a", "--filter", "ancestor=busybox", "--filter", "name=e", "--format", "{{.Names}}")); len(got) != 2 {
		t.Errorf("ps ancestor=busybox name=e = %q, want web and fresh", got)
	}
	if got := mustCLI(t, e, "ps", "-a", "--filter", "ancestor=other", "-q"); got != "" {
		t.Errorf("ps ancestor=other = %q", got)
	}
	table := lines(mustCLI(t, e, "ps", "--format", "table {{.ID}}\\t{{.state}}"))
	if len(table) != 2 || !strings.HasPrefix(table[0], "ID") || !strings.Contains(table[0], "STATE") || !strings.Contains(table[1], "running") {
		t.Errorf("ps table template:\n%s", strings.Join(table, "\n"))
	}

	// inspect: a JSON array in argument order, containers and images alike,
	// with the same field forms as ps.
	var views []map[string]any
	if err := json.Unmarshal([]byte(mustCLI(t, e, "inspect", "job", "web", "busybox")), &views); err != nil || len(views) != 3 {
		t.Fatalf("inspect of three: %v %v", err, views)
	}
	if views[0]["state"] != "stopped" || views[0]["exit_code"] != float64(3) || views[1]["state"] != "running" || views[1]["pid"].(float64) <= 0 {
		t.Errorf("inspect views: %v / %v", views[0], views[1])
	}
	img, _ := views[2]["image"].(map[string]any)
	if names, _ := img["names"].([]any); len(names) != 1 || names[0] != "docker.io/library/busybox:latest" {
		t.Errorf("inspect of an image: %v", views[2])
	}
	var psRow map[string]any
	if err := json.Unmarshal([]byte(mustCLI(t, e, "ps", "--format", "json")), &psRow); err != nil {
		t.Fatal(err)
	}
	for key, v := range psRow {
		if key == "layers" || key == "config" {
			continue
		}
		if w, ok := views[1][key]; !ok || (v != nil && w != nil && !sameJSON(v, w) && key != "pending_event") {
			t.Errorf("ps and inspect disagree on %s: %v vs %v", key, v, w)
		}
	}
	out, errOut, code := cli(t, e, "inspect", "web", "nosuch")
	if code != 125 || !strings.Contains(errOut, "no such container or image") {
		t.Errorf("inspect with a missing one: exit %d %q", code, errOut)
	}
	if err := json.Unmarshal([]byte(out), &views); err != nil || len(views) != 1 {
		t.Errorf("inspect with a missing one still prints the others: %q", out)
	}
	if got := mustCLI(t, e, "inspect", "--format", "{{.state}}/{{.name}}", "web", "fresh"); got != "running/web\ncreated/fresh\n" {
		t.Errorf("inspect --format = %q", got)
	}
	if _, errOut, code := cli(t, e, "inspect", "--type", "image", "web"); code != 125 || !strings.Contains(errOut, "no such image") {
		t.Errorf("inspect --type image of a container: exit %d %q", code, errOut)
	}

	if got := lines(mustCLI(t, e, "image", "ls", "-q")); len(got) != 1 || len(got[0]) != 12 {
		t.Errorf("image ls -q = %q", got)
	}
	if got := mustCLI(t, e, "image", "ls", "--filter", "dangling=true", "-q"); got != "" {
		t.Errorf("image ls dangling = %q", got)
	}
	if got := mustCLI(t, e, "image", "ls", "--filter", "reference=busy*", "--format", "{{.Repository}}:{{.Tag}} {{short .id}}"); !strings.HasPrefix(got, "busybox:latest ") {
		t.Errorf("image ls template = %q", got)
	}
}

// sameJSON compares two decoded JSON values.
func sameJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

func TestCLI_VolumeAndNetworkListingsShareTheOutput(t *testing.T) {
	e := scratch.NewDaemon(t)
	mustCLI(t, e, "volume", "create", "--label", "team=a", "data")
	if got := mustCLI(t, e, "volume", "ls", "--format", "{{.Name}} {{.labels.team}}"); got != "data a\n" {
		t.Errorf("volume ls template = %q", got)
	}
	var views []map[string]any
	if err := json.Unmarshal([]byte(mustCLI(t, e, "volume", "inspect", "data")), &views); err != nil || len(views) != 1 || views[0]["name"] != "data" {
		t.Errorf("volume inspect: %v %v", views, err)
	}
	if _, errOut, code := cli(t, e, "volume", "inspect", "data", "nope"); code != 125 || !strings.Contains(errOut, "nope") {
		t.Errorf("volume inspect of a missing one: %d %q", code, errOut)
	}
	if got := mustCLI(t, e, "network", "ls", "--format", "{{.name}} {{.subnet}}"); !strings.HasPrefix(got, "bridge ") {
		t.Errorf("network ls template = %q, want the default bridge network first", got)
	}
}

func TestCLI_UsageErrorsPointAtTheHelp(t *testing.T) {
	e := scratch.NewDaemon(t)
	cases := map[string][]string{
		"See 'cairn ps --help'.":       {"ps", "extra"},
		"See 'cairn ps --help'. ":      {"ps", "--bogus"},
		"See 'cairn wait --help'.":     {"wait"},
		"See 'cairn ps --help'.  ":     {"ps", "--filter", "colour=red"},
		"See 'cairn image ls --help'.": {"image", "ls", "--format", "{{.x"},
		"See 'cairn --help'.":          {"frobnicate"},
	}
	for want, args := range cases {
		_, errOut, code := cli(t, e, args...)
		if code != 125 || !strings.Contains(errOut, strings.TrimSpace(want)) {
			t.Errorf("cairn %v: exit %d, %q; want 125 and %q", args, code, errOut, strings.TrimSpace(want))
		}
	}
}

func TestCLI_InfoDiskUsageAndPrune(t *testing.T) {
	e := scratch.NewDaemon(t)
	mustCLI(t, e, "run", "-d", "--name", "web", "busybox", "sleep", "1000")
	mustCLI(t, e, "run", "--name", "writer", "busybox", "dd", "if=/dev/zero", "of=/blob", "bs=1024", "count=512")
	mustCLI(t, e, "pause", "web")

	info := mustCLI(t, e, "info")
	for _, want := range []string{"Root: " + e.Config.Root, "Journal: ", "   Paused: 1", "   Stopped: 1", "Images: 1", "Cgroup version: v1", "Kernel version: ", "Last recovery: ", "Shims: 1"} {
		if !strings.Contains(info, want) {
			t.Errorf("info lacks %q:\n%s", want, info)
		}
	}
	var j map[string]any
	if err := json.Unmarshal([]byte(mustCLI(t, e, "info", "--format", "json")), &j); err != nil {
		t.Fatal(err)
	}
	if c, _ := j["containers"].(map[string]any); c["paused"] != float64(1) || c["running"] != float64(0) || j["recovering"] != false {
		t.Errorf("info json: %v", j)
	}
	if got := mustCLI(t, e, "system", "info", "--format", "{{.cgroup_version}}"); got != "v1\n" {
		t.Errorf("system info --format = %q", got)
	}

	var raw map[string]any
	if err := json.Unmarshal([]byte(mustCLI(t, e, "system", "df", "--format", "json")), &raw); err != nil {
		t.Fatal(err)
	}
	du := map[string]map[string]any{}
	du["containers"], _ = raw["containers"].(map[string]any)
	du["images"], _ = raw["images"].(map[string]any)
	du["volumes"], _ = raw["volumes"].(map[string]any)
	if du["containers"]["total"] != float64(2) || du["containers"]["active"] != float64(1) || du["containers"]["reclaimable_bytes"].(float64) < 512*1024 {
		t.Errorf("df containers: %v (the stopped writer's 512 KiB are reclaimable)", du["containers"])
	}
	if du["images"]["total"] != float64(1) || du["images"]["active"] != float64(1) || du["images"]["size_bytes"].(float64) <= 0 || du["images"]["reclaimable_bytes"] != float64(0) {
		t.Errorf("df images: %v", du["images"])
	}
	if du["volumes"] == nil {
		t.Errorf("df json has no volumes: %v", raw)
	}
	if v := mustCLI(t, e, "system", "df", "-v"); !strings.Contains(v, "writer") || !strings.Contains(v, "busybox") || !strings.Contains(v, "Local Volumes") {
		t.Errorf("df -v:\n%s", v)
	}

	writer := strings.TrimSpace(mustCLI(t, e, "ps", "-aq", "--no-trunc", "--filter", "name=writer"))
	// Without -f, prune asks; "n" keeps everything.
	if out, _, code := cliWithInput(t, e, strings.NewReader("n\n"), "system", "prune"); code != 0 || !strings.Contains(out, "Are you sure") {
		t.Fatalf("prune answered no: %d %q", code, out)
	}
	if got := lines(mustCLI(t, e, "ps", "-aq")); len(got) != 2 {
		t.Fatalf("prune answered no removed something: %v", got)
	}
	mustCLI(t, e, "run", "--rm", "-v", "/anon", "busybox", "true") // --rm removes its anonymous volume
	mustCLI(t, e, "create", "--name", "holder", "-v", "/anon2", "busybox", "true")
	mustCLI(t, e, "rm", "holder") // without -v: its anonymous volume stays, unused
	if got := lines(mustCLI(t, e, "volume", "ls", "-q")); len(got) != 1 {
		t.Fatalf("volumes before the prune: %v", got)
	}
	out := mustCLI(t, e, "system", "prune", "-f", "-a", "--volumes")
	if !strings.Contains(out, "Deleted Volumes:") || mustCLI(t, e, "volume", "ls", "-q") != "" {
		t.Errorf("prune --volumes left the unused anonymous volume:\n%s", out)
	}
	if !strings.Contains(out, "Deleted Containers:") || !strings.Contains(out, "Total reclaimed space: ") || strings.Contains(out, "Total reclaimed space: 0B") {
		t.Errorf("prune -f -a:\n%s", out)
	}
	if got := mustCLI(t, e, "ps", "-a", "--format", "{{.name}}"); got != "web\n" {
		t.Errorf("after prune: %q, want only the paused container", got)
	}
	if got := lines(mustCLI(t, e, "image", "ls", "-q")); len(got) != 1 {
		t.Errorf("prune -a removed the image a container uses: %v", got)
	}
	if h := mustCLI(t, e, "history", writer); !strings.Contains(h, "remove") {
		t.Errorf("the prune's removal is not journaled:\n%s", h)
	}
}

func TestCLI_CompletionAsksTheDaemon(t *testing.T) {
	e := scratch.NewDaemon(t)
	mustCLI(t, e, "run", "-d", "--name", "alpha", "busybox", "sleep", "1000")
	mustCLI(t, e, "create", "--name", "beta", "busybox", "true")
	stop := mustCLI(t, e, "__complete", "stop", "")
	if !strings.Contains(stop, "alpha\n") || strings.Contains(stop, "beta") {
		t.Errorf("stop completes running containers only:\n%s", stop)
	}
	if start := mustCLI(t, e, "__complete", "start", "b"); !strings.Contains(start, "beta\n") || strings.Contains(start, "alpha") {
		t.Errorf("start b completes beta:\n%s", start)
	}
	if run := mustCLI(t, e, "__complete", "run", "busy"); !strings.Contains(run, "busybox:latest\n") {
		t.Errorf("run completes images:\n%s", run)
	}
	mustCLI(t, e, "volume", "create", "vol-one")
	if vols := mustCLI(t, e, "__complete", "volume", "rm", "vol"); !strings.Contains(vols, "vol-one\n") {
		t.Errorf("volume rm completes volumes:\n%s", vols)
	}
	if nets := mustCLI(t, e, "__complete", "run", "--network", "h"); !strings.Contains(nets, "host\n") {
		t.Errorf("--network completes modes and networks:\n%s", nets)
	}
	if bash := mustCLI(t, e, "completion", "bash"); !strings.Contains(bash, "__start_cairn") {
		t.Errorf("completion bash printed no script")
	}
}

// Calls without side effects are marked so in the API: Connect clients may
// send them as HTTP GET (cacheable, curl-able).
func TestCLI_SideEffectFreeCallsWorkOverHTTPGet(t *testing.T) {
	e := scratch.NewDaemon(t)
	mustCLI(t, e, "run", "-d", "--name", "alpha", "busybox", "sleep", "1000")
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", e.Socket)
	}}}
	get := func(procedure, message string) (int, string) {
		u := "http://cairnd/" + procedure + "?encoding=json&message=" + url.QueryEscape(message)
		res, err := hc.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
		return res.StatusCode, string(body)
	}
	if code, body := get("cairn.v1.ContainerService/List", `{"all":true}`); code != 200 || !strings.Contains(body, `"name":"alpha"`) {
		t.Errorf("GET List: %d %s", code, body)
	}
	if code, body := get("cairn.v1.SystemService/Info", `{}`); code != 200 || !strings.Contains(body, `"cgroupVersion":"v1"`) {
		t.Errorf("GET Info: %d %s", code, body)
	}
	// A call with side effects is not served over GET.
	if code, _ := get("cairn.v1.ContainerService/Remove", `{"id":"alpha","force":true}`); code == 200 {
		t.Errorf("GET Remove was served")
	}
	if got := mustCLI(t, e, "ps", "-q"); got == "" {
		t.Errorf("GET Remove removed the container")
	}
}
