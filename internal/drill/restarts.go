package drill

import (
	"encoding/json"
	"fmt"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
)

// drillPolicies are the restart policies the drill's creates draw from;
// most containers have none, so that the other invariants keep their
// settled containers.
var drillPolicies = []string{"", "", "", "always", "on-failure:2", "unless-stopped"}

// policyFor is the restart policy of a create; it uses bits of the draw
// a create has no other use for, so seeds keep their sequences.
func policyFor(next op) string { return drillPolicies[(next.tag>>8)%len(drillPolicies)] }

// hasPolicy: the daemon may start c again by itself.
func hasPolicy(c *cairnv1.Container) bool { return c.RestartPolicy != "" && c.RestartPolicy != "no" }

// recordDetails is what the restart checks read of a record's details.
type recordDetails struct {
	Args *struct {
		RestartCount  int  `json:"restart_count"`
		ResetRestarts bool `json:"reset_restarts"`
	} `json:"args"`
	Result *struct {
		Process *struct {
			PID int `json:"pid"`
		} `json:"process"`
		Exit *json.RawMessage `json:"exit"`
	} `json:"result"`
}

func detailsOf(r *cairnv1.JournalRecord) recordDetails {
	var d recordDetails
	if r.DetailsJson != "" {
		_ = json.Unmarshal([]byte(r.DetailsJson), &d)
	}
	return d
}

// checkRestarts walks each container's journal for two invariants of
// restart policies:
//
//   - no double start: no transition starts a process while the
//     container's last one is still running (by the journal: no exit
//     recorded since), and no policy restart is intended for a container
//     that runs;
//   - restart counts exact: the policy restarts that ran since the last
//     user start are numbered 1, 2, 3... in their intents, and the view's
//     RestartCount is how many there were.
func checkRestarts(cr Crash, o Observed) []Violation {
	var out []Violation
	for _, c := range o.Containers {
		if c.State == stateRemoved {
			continue
		}
		bad := func(invariant, expected, seen string) {
			out = append(out, finding(cr.Cycle, c.Id, invariant, expected, seen))
		}
		open := 0 // pid of the run the journal shows running, 0: none
		ran := 0  // policy restarts that ran since the last user start
		var intent *cairnv1.JournalRecord
		var intentArgs recordDetails
		for _, r := range o.History[c.Id] {
			if r.Object != "" && r.Object != "container" {
				// The container's exec sessions (and its network
				// attachment) are in its history too; their processes are
				// no runs of the container.
				continue
			}
			if r.Kind == cairnv1.RecordKind_RECORD_KIND_INTENT {
				intent, intentArgs = r, detailsOf(r)
				if r.Event == "policy-restart" && open != 0 {
					bad("no-double-start", "no policy restart of a running container", fmt.Sprintf("policy-restart intent %d while pid %d runs", r.Seq, open))
				}
				continue
			}
			if r.Kind == cairnv1.RecordKind_RECORD_KIND_FAILED {
				continue
			}
			d := detailsOf(r)
			if d.Result == nil {
				continue
			}
			if d.Result.Exit != nil {
				open = 0
			}
			started := d.Result.Process != nil
			if started {
				if open != 0 && open != d.Result.Process.PID && r.Event != "restart" { // a restart's own exit may go unrecorded when recovery finishes it
					bad("no-double-start", "one process at a time", fmt.Sprintf("record %d (%s) starts pid %d while pid %d runs", r.Seq, r.Event, d.Result.Process.PID, open))
				}
				open = d.Result.Process.PID
			}
			finishes := intent != nil && r.IntentSeq == intent.Seq
			if !finishes || (!started && d.Result.Exit == nil) {
				continue
			}
			switch r.Event {
			case "policy-restart":
				ran++
				if intentArgs.Args == nil || intentArgs.Args.RestartCount != ran {
					got := 0
					if intentArgs.Args != nil {
						got = intentArgs.Args.RestartCount
					}
					bad("restart-count", fmt.Sprintf("policy restart %d since the last user start numbered %d", ran, ran), fmt.Sprintf("intent %d numbered %d", intent.Seq, got))
				}
			case "start", "restart":
				if intentArgs.Args != nil && intentArgs.Args.ResetRestarts {
					ran = 0
				}
			}
		}
		if int(c.RestartCount) != ran {
			bad("restart-count", fmt.Sprintf("RestartCount %d (the policy restarts in the journal since the last user start)", ran), fmt.Sprint(c.RestartCount))
		}
	}
	return out
}
