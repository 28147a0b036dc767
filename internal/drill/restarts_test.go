package drill

import (
	"fmt"
	"testing"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
)

func seqRec(seq, intentSeq uint64, kind cairnv1.RecordKind, event, details string) *cairnv1.JournalRecord {
	r := rec(kind, event, "", details)
	r.Seq, r.IntentSeq = seq, intentSeq
	return r
}

// execRec makes r a record of one of the container's exec sessions.
func execRec(r *cairnv1.JournalRecord) *cairnv1.JournalRecord {
	r.Object, r.ObjectId = "exec", "e1"
	return r
}

func withProcess(pid int) string { return fmt.Sprintf(`{"result":{"process":{"pid":%d}}}`, pid) }

func TestCheckRestarts(t *testing.T) {
	userStart := []*cairnv1.JournalRecord{
		seqRec(1, 0, intent, "start", `{"args":{"reset_restarts":true}}`),
		seqRec(2, 1, done, "start", withProcess(10)),
		seqRec(3, 0, intent, "exit", ""),
		seqRec(4, 3, done, "exit", exit3),
	}
	policyRestart := func(seq uint64, count, pid int) []*cairnv1.JournalRecord {
		return []*cairnv1.JournalRecord{
			seqRec(seq, 0, intent, "policy-restart", fmt.Sprintf(`{"args":{"restart_count":%d,"restart_delay":"100ms"}}`, count)),
			seqRec(seq+1, seq, done, "policy-restart", withProcess(pid)),
		}
	}
	exit := func(seq uint64) []*cairnv1.JournalRecord {
		return []*cairnv1.JournalRecord{seqRec(seq, 0, intent, "exit", ""), seqRec(seq+1, seq, done, "exit", exit3)}
	}
	join := func(parts ...[]*cairnv1.JournalRecord) (out []*cairnv1.JournalRecord) {
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	cases := []struct {
		name      string
		records   []*cairnv1.JournalRecord
		count     int32
		violation string
	}{
		{"two restarts counted", join(userStart, policyRestart(5, 1, 11), exit(7), policyRestart(9, 2, 12)), 2, ""},
		{"a restart rolled back counts nothing", join(userStart, []*cairnv1.JournalRecord{
			seqRec(5, 0, intent, "policy-restart", `{"args":{"restart_count":1}}`), seqRec(6, 5, reconciled, "policy-restart", "")},
			policyRestart(7, 1, 11)), 1, ""},
		{"the view counts one too many", join(userStart, policyRestart(5, 1, 11)), 2, "restart-count"},
		{"a count skipped in the intent", join(userStart, policyRestart(5, 2, 11)), 2, "restart-count"},
		{"a user start resets", join(userStart, policyRestart(5, 1, 11), exit(7), userStart), 0, ""},
		{"a second start while running", join(userStart[:2], policyRestart(3, 1, 11)), 1, "no-double-start"},
		{"an exec session's process is no second run", join(userStart[:2], []*cairnv1.JournalRecord{
			execRec(seqRec(3, 0, intent, "exec", "")), execRec(seqRec(4, 3, done, "exec", withProcess(20)))}), 0, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &cairnv1.Container{Id: idStopped, State: stateStopped, RestartPolicy: "always", RestartCount: tc.count}
			vs := checkRestarts(Crash{}, Observed{Containers: []*cairnv1.Container{c}, History: map[string][]*cairnv1.JournalRecord{idStopped: tc.records}})
			if tc.violation == "" && len(vs) != 0 {
				t.Fatalf("violations %v", vs)
			}
			if tc.violation != "" && (len(vs) == 0 || vs[0].Invariant != tc.violation) {
				t.Fatalf("want a %s violation, got %v", tc.violation, vs)
			}
		})
	}
}
