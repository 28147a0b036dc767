package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
)

// roundTrip is the JSON a script reads.
func roundTrip(t *testing.T, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestJSONView_OneSchema(t *testing.T) {
	at := time.Date(2026, 12, 2, 1, 2, 3, 456, time.UTC)
	code := int32(3)
	c := &cairnv1.Container{
		Id: "abc", State: cairnv1.ContainerState_CONTAINER_STATE_STOPPED, Pid: 1 << 40, PidStartTime: 1 << 62,
		ExitCode: &code, CreatedAt: timestamppb.New(at), Command: []string{"sh", "-c", "true"},
		Config: &cairnv1.ContainerConfig{Labels: map[string]string{"a": "b"}},
	}
	got := roundTrip(t, jsonView(c.ProtoReflect()))
	cases := map[string]any{
		"id": "abc", "state": "stopped", "pid": float64(1 << 40), "exit_code": float64(3),
		"created_at": "2026-12-02T01:02:03.000000456Z", "started_at": nil, "finished_at": nil,
		"name": "", "auto_remove": false, "layers": nil,
	}
	for key, want := range cases {
		v, ok := got[key]
		if !ok {
			t.Errorf("%s missing: every field is present", key)
			continue
		}
		if v != want {
			t.Errorf("%s = %#v, want %#v", key, v, want)
		}
	}
	if cmd, _ := got["command"].([]any); len(cmd) != 3 || cmd[2] != "true" {
		t.Errorf("command = %#v", got["command"])
	}
	if labels, _ := got["config"].(map[string]any)["labels"].(map[string]any); labels["a"] != "b" {
		t.Errorf("config.labels = %#v", got["config"])
	}
	// A 64-bit number stays exact: JSON numbers, not protojson's strings.
	b, _ := json.Marshal(jsonView(c.ProtoReflect()))
	if !bytes.Contains(b, []byte(`"pid_start_time":4611686018427387904`)) {
		t.Errorf("pid_start_time not an exact number: %s", b)
	}
	unset := roundTrip(t, jsonView((&cairnv1.Container{}).ProtoReflect()))
	if unset["exit_code"] != nil || unset["state"] != "unspecified" {
		t.Errorf("unset optional exit_code = %#v, state %#v", unset["exit_code"], unset["state"])
	}
}

func TestJSONView_EmbedsJSONStringsAndFormatsDurations(t *testing.T) {
	r := &cairnv1.JournalRecord{Seq: 7, Kind: cairnv1.RecordKind_RECORD_KIND_RECONCILED, DetailsJson: `{"exit_code":3}`}
	got := roundTrip(t, jsonView(r.ProtoReflect()))
	if got["kind"] != "reconciled" || got["seq"] != float64(7) {
		t.Errorf("record = %v", got)
	}
	if d, _ := got["details"].(map[string]any); d["exit_code"] != float64(3) {
		t.Errorf("details = %#v, want the JSON embedded", got["details"])
	}
	if _, ok := got["details_json"]; ok {
		t.Errorf("details_json kept beside details")
	}
	bad := roundTrip(t, jsonView((&cairnv1.JournalRecord{DetailsJson: "{not json"}).ProtoReflect()))
	if bad["details"] != nil {
		t.Errorf("invalid details = %#v, want null", bad["details"])
	}
	info := &cairnv1.InfoResponse{LastRecovery: &cairnv1.RecoveryInfo{Duration: durationpb.New(1500 * time.Millisecond), Actions: map[string]int64{"reattach": 2}}}
	rec := roundTrip(t, jsonView(info.ProtoReflect()))["last_recovery"].(map[string]any)
	if rec["duration"] != "1.5s" || rec["actions"].(map[string]any)["reattach"] != float64(2) {
		t.Errorf("last_recovery = %v", rec)
	}
}

func TestOutput_TemplatesSeeTheJSONAndDockerNames(t *testing.T) {
	items := []item{
		{msg: &cairnv1.Container{Id: "aaaa", Name: "web", State: cairnv1.ContainerState_CONTAINER_STATE_RUNNING}, aliases: map[string]any{"Names": "web"}},
		{msg: &cairnv1.Container{Id: "bbbb", Name: "db", State: cairnv1.ContainerState_CONTAINER_STATE_PAUSED}, aliases: map[string]any{"Names": "db"}},
	}
	cases := []struct{ format, want string }{
		{"{{.name}} {{.state}}", "web running\ndb paused\n"},
		{"{{.Names}}", "web\ndb\n"},
		{"{{upper .state}}\\t{{json .id}}", "RUNNING\t\"aaaa\"\nPAUSED\t\"bbbb\"\n"},
		{"table {{.name}}\\t{{.state}}", "NAME   STATE\nweb    running\ndb     paused\n"},
		{"json", `"name":"web"`},
	}
	for _, tc := range cases {
		o, err := parseOutput(tc.format)
		if err != nil {
			t.Fatalf("%q: %v", tc.format, err)
		}
		var b bytes.Buffer
		if err := o.print(&b, items, nil); err != nil {
			t.Fatalf("%q: %v", tc.format, err)
		}
		if tc.format == "json" {
			if strings.Count(b.String(), "\n") != 2 || !strings.Contains(b.String(), tc.want) {
				t.Errorf("json = %q", b.String())
			}
			continue
		}
		if b.String() != tc.want {
			t.Errorf("%q printed %q, want %q", tc.format, b.String(), tc.want)
		}
	}
	var u usageError
	if _, err := parseOutput("{{.name"); !errors.As(err, &u) {
		t.Errorf("a broken template: %v, want a usage error", err)
	}
	o, _ := parseOutput("{{.name | nosuchfunc}}")
	if o.tmpl != nil {
		t.Errorf("an unknown function parsed")
	}
}

func TestHeaderOf(t *testing.T) {
	for in, want := range map[string]string{"exit_code": "EXIT CODE", "RunningFor": "RUNNING FOR", "ID": "ID", "id": "ID", "CreatedAt": "CREATED AT"} {
		if got := headerOf(in); got != want {
			t.Errorf("headerOf(%q) = %q, want %q", in, got, want)
		}
	}
}
