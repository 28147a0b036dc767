package drill

import (
	"math/rand/v2"
	"slices"
	"testing"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
)

func TestRandomOp_SameSeedSameOperations(t *testing.T) {
	draw := func(seed uint64) []op {
		r := rand.New(rand.NewPCG(seed, 1))
		var ops []op
		for range 200 {
			ops = append(ops, randomOp(r, 4))
		}
		return ops
	}
	a, b := draw(9), draw(9)
	if !slices.Equal(a, b) {
		t.Fatal("the same seed drew different operations")
	}
	if slices.Equal(a, draw(10)) {
		t.Fatal("different seeds drew the same operations")
	}
	kinds := map[opKind]bool{}
	for _, o := range a {
		kinds[o.kind] = true
		if o.slot < 0 || o.slot >= 4 || o.timeout < 0 || o.timeout > 2 {
			t.Fatalf("op out of range: %+v", o)
		}
	}
	if len(kinds) != int(numOpKinds) {
		t.Fatalf("200 draws used %d of %d kinds", len(kinds), numOpKinds)
	}
}

func TestNewPlan_SameSeedSamePlan(t *testing.T) {
	a := newPlan(rand.New(rand.NewPCG(1, 2)), 4)
	b := newPlan(rand.New(rand.NewPCG(1, 2)), 4)
	if a != b {
		t.Fatalf("%+v != %+v", a, b)
	}
	if a.crashAfter < 1 {
		t.Fatalf("crash before any operation: %+v", a)
	}
}

func TestOperatorResolve_EmptySlotCreatesAndBusySlotWaits(t *testing.T) {
	o := newOperator(nil, "busybox", 2)
	if _, kind, ok := o.resolve(op{kind: opStop, slot: 0}); !ok || kind != opCreate {
		t.Fatalf("stop on an empty slot: %v %v, want a create", kind, ok)
	}
	if _, _, ok := o.resolve(op{kind: opStart, slot: 0}); ok {
		t.Fatal("an operation went ahead on a slot whose create has not returned")
	}
	o.slots[1] = idRunning
	o.markTouched()
	id, kind, ok := o.resolve(op{kind: opCreate, slot: 1})
	if !ok || kind != opStart || id != idRunning {
		t.Fatalf("create on an occupied slot: %s %v %v, want a start of it", id, kind, ok)
	}
	if !o.touchedSet()[idRunning] {
		t.Fatal("an operation started after markTouched is not recorded")
	}
}

func TestOperatorSettle_FollowsTheDaemonsList(t *testing.T) {
	o := newOperator(nil, "busybox", 2)
	o.slots = []string{idRunning, idPaused}
	o.signaled = map[string]int64{idRunning: 200, idPaused: 300}
	extra := o.settle([]*cairnv1.Container{
		{Id: idRunning, State: stateStopped},            // the signal did its work
		{Id: idStopped, State: stateStopped},            // a create the crash cut: adopted
		{Id: idCreated, State: stateCreated},            // one too many
		{Id: idPaused, State: stateRemoved},             // gone
		{Id: "eeee", State: statePaused, Pid: 300},      // another one too many
		{Id: "ffff", State: cairnv1.ContainerState(99)}, // unknown: still a container
	})
	if !slices.Equal(o.slots, []string{idRunning, idStopped}) {
		t.Fatalf("slots %v", o.slots)
	}
	if len(extra) != 3 {
		t.Fatalf("extra %v, want the three that found no slot", extra)
	}
	if len(o.signaled) != 0 {
		t.Fatalf("signals of stopped or removed containers kept: %v", o.signaled)
	}
}
