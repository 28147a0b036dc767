package main_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/cairn-run/cairn/internal/testenv/scratch"
)

func TestCLI_Volumes(t *testing.T) {
	e := scratch.NewDaemon(t)
	if out, errOut, code := cli(t, e, "volume", "create", "--label", "team=a", "data"); code != 0 || out != "data\n" {
		t.Fatalf("create: %d %q %q", code, out, errOut)
	}
	out, _, code := cli(t, e, "run", "--rm", "-v", "data:/data", "-v", "/etc:/hostetc:ro", "--mount", "type=tmpfs,dst=/t,tmpfs-size=1m",
		"busybox", "sh", "-c", "echo hi > /data/f; test -f /hostetc/hostname -o -f /hostetc/passwd && echo bind; grep -c ' /t tmpfs' /proc/mounts")
	if code != 0 || out != "bind\n1\n" {
		t.Fatalf("run with mounts: %d %q", code, out)
	}
	id, _, code := cli(t, e, "create", "-v", "data:/data", "busybox", "cat", "/data/f")
	if code != 0 {
		t.Fatal("create with a volume")
	}
	id = strings.TrimSpace(id)
	if out, errOut, code := cli(t, e, "volume", "rm", "-f", "data"); code == 0 || !strings.Contains(errOut, "in use") || !strings.Contains(errOut, id[:12]) {
		t.Fatalf("rm -f of a volume in use: %d %q %q", code, out, errOut)
	}
	if out, _, _ := cli(t, e, "volume", "ls", "-q"); out != "data\n" {
		t.Fatalf("ls -q: %q", out)
	}
	out, _, _ = cli(t, e, "volume", "ls", "--format", "json")
	var v struct {
		Name   string            `json:"name"`
		Labels map[string]string `json:"labels"`
		UsedBy []string          `json:"used_by"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.Name != "data" || v.Labels["team"] != "a" || len(v.UsedBy) != 1 {
		t.Fatalf("ls json: %q %v", out, err)
	}
	if out, _, code := cli(t, e, "inspect", id); code != 0 || !strings.Contains(out, `"destination": "/data"`) || !strings.Contains(out, `"type": "volume"`) {
		t.Fatalf("inspect: %q", out)
	}
	if out, _, code := cli(t, e, "volume", "inspect", "data"); code != 0 || !strings.Contains(out, `"mountpoint"`) {
		t.Fatalf("volume inspect: %q", out)
	}
	if _, errOut, code := cli(t, e, "run", "-v", "/nonexistent/cairn:/x", "busybox", "true"); code != 125 || !strings.Contains(errOut, "does not exist") {
		t.Fatalf("a bind of nothing: %d %q", code, errOut)
	}
	if _, errOut, code := cli(t, e, "run", "--mount", "type=nfs,dst=/x", "busybox", "true"); code == 0 || !strings.Contains(errOut, "unknown type") {
		t.Fatalf("a bad --mount: %d %q", code, errOut)
	}
	cli(t, e, "rm", id)
	if out, _, code := cli(t, e, "volume", "rm", "data"); code != 0 || out != "data\n" {
		t.Fatalf("rm: %d %q", code, out)
	}
	if out, _, code := cli(t, e, "history"); code != 0 || !strings.Contains(out, "vol data") || !strings.Contains(out, "volume-remove") {
		t.Fatalf("history: %q", out)
	}
	if out, _, code := cli(t, e, "events", "--filter", "type=volume", "--until", "0s"); code != 0 || !strings.Contains(out, "volume-create") {
		t.Fatalf("events: %d %q", code, out)
	}
}
