package journal

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	sm "github.com/cairn-run/cairn/statemachine"
)

// TestDecodeRecord_SameAsEncodingJSON holds the fast decoder of the replay
// to encoding/json's result, on every record of a random workload and on
// hand-made ones that use every field.
func TestDecodeRecord_SameAsEncodingJSON(t *testing.T) {
	j := openTemp(t)
	randomWorkload(t, j, 4, 200, 11)
	var values [][]byte
	err := j.Records(0, "", func(rec sm.Record) error {
		data, err := encodeRecord(rec)
		values = append(values, data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	unknown := sm.Exit{Reason: "shim gone: \"lost\" \u00e9\u2028", FinishedAt: time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("x", 3600))}
	for _, rec := range []sm.Record{
		{Kind: sm.KindIntent, Container: "c", Event: sm.EventCreate, To: sm.StateCreated, Time: time.Now(),
			Args: &sm.Args{Name: "n", Image: "i", Command: []string{"sh", "-c", "echo \"\\x\""}, Env: []string{"A=1", ""}, MountID: "m", Hostname: "h", AutoRemove: true,
				Timeout: sm.Duration(1500 * time.Millisecond), Signal: "SIGTERM", Exit: sm.ExitCode(3, time.Now())}},
		{Kind: sm.KindReconciled, Container: "c", Event: sm.EventExit, From: sm.StateRunning, To: sm.StateStopped, Intent: 1 << 60, Error: "why",
			Result: &sm.Result{Exit: &unknown, Process: &sm.Process{PID: 1 << 30, StartTime: 1<<64 - 1, ShimPID: 2, ShimStartTime: 3, StartedAt: time.Unix(0, 1)}}},
	} {
		data, err := encodeRecord(rec)
		if err != nil {
			t.Fatal(err)
		}
		values = append(values, data)
	}
	for i, v := range values {
		var want sm.Record
		if err := json.Unmarshal(v, &want); err != nil {
			t.Fatal(err)
		}
		want.Seq = uint64(i + 1)
		want = want.Normalized()
		got, err := decodeRecord(seqKey(uint64(i+1)), v)
		if err != nil {
			t.Fatalf("record %s: %v", v, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("record %s:\n fast %+v\n  std %+v", v, got, want)
		}
	}
	for _, bad := range []string{`{"kind":"DONE"`, `{"kind":1}`, `nope`, `{"time":"yesterday"}`, `{"args":{"timeout":"forever"}}`} {
		if _, err := decodeRecord(seqKey(1), []byte(bad)); err == nil {
			t.Errorf("%s decoded", bad)
		}
	}
}
