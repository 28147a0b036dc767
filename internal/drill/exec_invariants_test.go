package drill

import (
	"testing"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/internal/inspect"
)

func TestCheckExecs_NoneLostNoneLeaked(t *testing.T) {
	const x1, x2 = "e1e1000000000000000000000000000000000000000000000000000000000000", "e2e2000000000000000000000000000000000000000000000000000000000000"
	five, nine := int32(5), int32(9)
	exited := func(id string, code *int32, reason string) *cairnv1.ExecSession {
		return &cairnv1.ExecSession{Id: id, ContainerId: idRunning, State: cairnv1.ExecState_EXEC_STATE_EXITED, ExitCode: code, ExitReason: reason}
	}
	running := func(id string, pid int64) *cairnv1.ExecSession {
		return &cairnv1.ExecSession{Id: id, ContainerId: idRunning, State: cairnv1.ExecState_EXEC_STATE_RUNNING, Pid: pid}
	}
	for _, tc := range []struct {
		name    string
		mutate  func(*Crash, *Observed)
		finding string // "" for none
	}{
		{"exited with its code, released", func(cr *Crash, o *Observed) {
			cr.Execs = map[string]string{x1: idRunning}
			find(*o, idRunning).ExecIds = []string{x1}
			o.Execs = map[string]*cairnv1.ExecSession{x1: exited(x1, &five, "")}
		}, ""},
		{"running, its process alive", func(cr *Crash, o *Observed) {
			find(*o, idRunning).ExecIds = []string{x1}
			o.Execs = map[string]*cairnv1.ExecSession{x1: running(x1, 700)}
			o.World.Procs[700] = Proc{PID: 700, Stat: inspect.Stat{State: 'S'}}
		}, ""},
		{"unknown code with its reason", func(cr *Crash, o *Observed) {
			o.Execs = map[string]*cairnv1.ExecSession{x1: exited(x1, nil, "the shim was gone")}
		}, ""},
		{"lost", func(cr *Crash, o *Observed) {
			cr.Execs = map[string]string{x1: idRunning}
		}, "exec lost"},
		{"a removed container's sessions are not lost", func(cr *Crash, o *Observed) {
			cr.Execs = map[string]string{x1: "ffff000000000000000000000000000000000000000000000000000000000000"}
		}, ""},
		{"pending", func(cr *Crash, o *Observed) {
			x := running(x2, 700)
			x.PendingEvent = "exec-exit"
			o.Execs = map[string]*cairnv1.ExecSession{x2: x}
		}, "pending"},
		{"running with its process gone", func(cr *Crash, o *Observed) {
			o.Execs = map[string]*cairnv1.ExecSession{x1: running(x1, 701)}
			o.World.Procs[701] = Proc{PID: 701, Gone: true}
		}, "exec leaked"},
		{"running in a stopped container", func(cr *Crash, o *Observed) {
			x := running(x1, 700)
			x.ContainerId = idStopped
			o.Execs = map[string]*cairnv1.ExecSession{x1: x}
		}, "exec leaked"},
		{"an exit record left", func(cr *Crash, o *Observed) {
			o.Execs = map[string]*cairnv1.ExecSession{x1: exited(x1, &five, "")}
			o.World.ExecRecords = map[string][]string{idRunning: {x1}}
		}, "exec leaked"},
		{"a code it cannot have had", func(cr *Crash, o *Observed) {
			o.Execs = map[string]*cairnv1.ExecSession{x1: exited(x1, &nine, "")}
		}, "exit code"},
		{"no code, no reason", func(cr *Crash, o *Observed) {
			o.Execs = map[string]*cairnv1.ExecSession{x1: exited(x1, nil, "")}
		}, "exit code"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cr, o := healthy()
			tc.mutate(&cr, &o)
			got := checkExecs(cr, o)
			switch {
			case tc.finding == "" && len(got) != 0:
				t.Fatalf("findings %v", got)
			case tc.finding != "" && (len(got) != 1 || got[0].Invariant != tc.finding):
				t.Fatalf("findings %v, want one %q", got, tc.finding)
			}
			if tc.finding == "" && len(Check(cr, o)) != 0 {
				t.Fatalf("Check: %v", Check(cr, o))
			}
		})
	}
}
