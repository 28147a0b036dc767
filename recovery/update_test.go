package recovery

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/cairn-run/cairn/resources"
	sm "github.com/cairn-run/cairn/statemachine"
)

func TestDecideUpdate(t *testing.T) {
	limits := resources.Resources{PidsLimit: 55}
	pending := func(state sm.State) sm.Container {
		return sm.Container{ID: "c1", State: state, Config: &sm.ContainerConfig{Resources: resources.Resources{PidsLimit: 10}},
			Process: &sm.Process{PID: 7, StartTime: 70, ShimPID: 6, ShimStartTime: 60},
			Pending: &sm.Pending{Seq: 9, Event: sm.EventUpdate, From: state, To: state, Args: &sm.Args{Resources: &limits}}}
	}
	alive := World{Process: &sm.Process{PID: 7, StartTime: 70, ShimPID: 6, ShimStartTime: 60}, ProcessStartTime: 70, ShimStartTime: 60,
		Freezer: FreezerThawed, Mounted: Yes}
	exited := World{Process: &sm.Process{PID: 7, StartTime: 70, ShimPID: 6, ShimStartTime: 60}, Exit: sm.ExitCode(3, alive.Now), Mounted: Yes}
	idle := World{Mounted: No}

	for _, tc := range []struct {
		name        string
		c           sm.Container
		w           World
		actions     []Action
		to          sm.State
		fallback    bool
		exitCarried bool
	}{
		{"live: written again, rolled forward", pending(sm.StateRunning), alive, []Action{ActionApplyLimits, ActionReattach}, sm.StateRunning, true, false},
		{"exited meanwhile: rolled forward with the exit", pending(sm.StateRunning), exited, []Action{ActionCleanupRun, ActionUnmount}, sm.StateStopped, false, true},
		{"stopped container: rolled forward", func() sm.Container { c := pending(sm.StateStopped); c.Process = nil; return c }(), idle, nil, sm.StateStopped, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan := Decide(tc.c, tc.w)
			if plan.Uncertain != "" || plan.Record == nil {
				t.Fatalf("undecided: %+v", plan)
			}
			if !slices.Equal(plan.Actions, tc.actions) {
				t.Errorf("actions %v, want %v", plan.Actions, tc.actions)
			}
			rec := plan.Record
			if rec.Intent != 9 || rec.To != tc.to || rec.Result == nil || rec.Result.Resources == nil || rec.Result.Resources.PidsLimit != 55 {
				t.Errorf("record %+v (result %+v), want the update rolled forward to %s", rec, rec.Result, tc.to)
			}
			if tc.exitCarried != (rec.Result.Exit != nil) {
				t.Errorf("exit in the record: %v, want %v", rec.Result.Exit, tc.exitCarried)
			}
			if (plan.Fallback != nil) != tc.fallback {
				t.Fatalf("fallback %v, want %v", plan.Fallback, tc.fallback)
			}
			if fb := plan.Fallback; fb != nil {
				if fb.Actions[0] != ActionRestoreLimits || (fb.Record.Result != nil && fb.Record.Result.Resources != nil) ||
					!strings.Contains(fb.Record.Error, "rolled back") || fb.Record.Intent != 9 {
					t.Errorf("fallback %+v record %+v: want the old limits restored and the update rolled back", fb, fb.Record)
				}
			}
			// The forward record is not shared with the fallback's.
			if plan.Fallback != nil && plan.Fallback.Record == plan.Record {
				t.Error("forward and fallback share a record")
			}
		})
	}
	// A world the decision cannot read stays undecided.
	unknown := alive
	unknown.Freezer = FreezerUnknown
	if plan := Decide(pending(sm.StateRunning), unknown); plan.Uncertain == "" {
		t.Errorf("unknown freezer decided: %+v", plan)
	}
}

// limiter is a world whose runtime can write limits; refuse makes it
// refuse the given pids limit, as a cgroup refuses a memory limit below
// the usage.
type limiter struct {
	*world
	refuse int64
	wrote  []int64
}

func (l *limiter) UpdateLimits(_ string, _ sm.Process, r resources.Resources) error {
	l.wrote = append(l.wrote, r.PidsLimit)
	if r.PidsLimit == l.refuse {
		return errors.New("device or resource busy")
	}
	return nil
}

func TestRun_AnUnfinishedUpdateIsRolledForwardOrBack(t *testing.T) {
	for _, tc := range []struct {
		name   string
		refuse int64
		wrote  []int64
		limit  int64
	}{
		{"applied again", 0, []int64{55}, 55},
		{"refused: the old limits are written back", 55, []int64{55, 10}, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := running("c1", 100)
			c.Config = &sm.ContainerConfig{Resources: resources.Resources{PidsLimit: 10}}
			c.Pending = &sm.Pending{Seq: 9, Event: sm.EventUpdate, From: sm.StateRunning, To: sm.StateRunning,
				Args: &sm.Args{Resources: &resources.Resources{PidsLimit: 55}}}
			j := newFakeJournal(c)
			w := newWorld(j)
			w.procs[100], w.procs[99] = 1000, 999
			w.freezer["c1"] = FreezerThawed
			l := &limiter{world: w, refuse: tc.refuse}
			r, _ := runner(j, w)
			r.Runtime = l
			if _, err := r.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(l.wrote, tc.wrote) {
				t.Errorf("wrote pids limits %v, want %v", l.wrote, tc.wrote)
			}
			got, _ := j.Container("c1")
			if got.Pending != nil || got.Config.Resources.PidsLimit != tc.limit || got.State != sm.StateRunning {
				t.Errorf("view: pending %v, pids limit %d, state %s; want limit %d", got.Pending, got.Config.Resources.PidsLimit, got.State, tc.limit)
			}
		})
	}
}
