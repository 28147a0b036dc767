package journal

import (
	"errors"
	"testing"
	"time"

	sm "github.com/cairn-run/cairn/statemachine"
)

func TestApplyNetAttach_AttachDetachAndRefusals(t *testing.T) {
	now := time.Now().UTC()
	args := &sm.Args{NetAttach: &sm.NetAttachArgs{Network: "bridge", NetNS: "/run/x/netns/c", IfName: "eth0", Ports: []sm.PortMapping{{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}}}}
	recs := []sm.Record{
		{Seq: 1, Kind: sm.KindIntent, Object: sm.ObjectNetAttach, ObjectID: "c", Event: sm.EventAttach, From: sm.StateNone, To: sm.StateAttached, Args: args, Time: now},
		{Seq: 2, Kind: sm.KindDone, Object: sm.ObjectNetAttach, ObjectID: "c", Event: sm.EventAttach, From: sm.StateNone, To: sm.StateAttached, Intent: 1, Time: now,
			Result: &sm.Result{NetAttach: &sm.NetAttachResult{IP: "10.88.0.2", MAC: "aa:bb", Gateway: "10.88.0.1", Ports: args.NetAttach.Ports}}},
	}
	var v *sm.NetAttachView
	var err error
	v, err = ApplyNetAttach(v, recs[0])
	if err != nil || v == nil || v.Pending == nil || v.NetNS != "/run/x/netns/c" || v.State != sm.StateNone {
		t.Fatalf("after the intent: %+v %v", v, err)
	}
	prev := v
	v, err = ApplyNetAttach(v, recs[1])
	if err != nil || v.Pending != nil || v.State != sm.StateAttached || v.Result == nil || v.Result.IP != "10.88.0.2" || len(v.Requested) != 1 {
		t.Fatalf("after DONE: %+v %v", v, err)
	}
	if prev.Pending == nil || prev.Result != nil {
		t.Fatal("the fold changed its input")
	}
	if _, err := ApplyNetAttach(v, recs[1]); !errors.Is(err, ErrInconsistent) {
		t.Fatalf("a DONE without its intent: %v", err)
	}
	if _, err := ApplyNetAttach(v, sm.Record{Seq: 3, Kind: sm.KindIntent, Object: sm.ObjectNetAttach, ObjectID: "c", Event: sm.EventLoad}); !errors.Is(err, ErrInconsistent) {
		t.Fatalf("an image event: %v", err)
	}
	if _, err := ApplyNetAttach(v, sm.Record{Seq: 3, Kind: sm.KindIntent, Object: sm.ObjectNetAttach, ObjectID: "c", Container: "c", Event: sm.EventDetach}); !errors.Is(err, ErrInconsistent) {
		t.Fatalf("a record naming a container: %v", err)
	}
	v, err = ApplyNetAttach(v, sm.Record{Seq: 3, Kind: sm.KindIntent, Object: sm.ObjectNetAttach, ObjectID: "c", Event: sm.EventDetach, From: sm.StateAttached, To: sm.StateRemoved, Args: args})
	if err != nil || v.Pending == nil || v.Result == nil {
		t.Fatalf("detach intent: %+v %v", v, err)
	}
	v, err = ApplyNetAttach(v, sm.Record{Seq: 4, Kind: sm.KindDone, Object: sm.ObjectNetAttach, ObjectID: "c", Event: sm.EventDetach, From: sm.StateAttached, To: sm.StateRemoved, Intent: 3})
	if err != nil || v != nil {
		t.Fatalf("after detach: %+v %v", v, err)
	}
}

func TestApplyNetwork_CreateAndRemove(t *testing.T) {
	def := &sm.NetworkDef{Name: "n", Subnet: "10.89.0.0/24", Gateway: "10.89.0.1", Bridge: "cn-x"}
	v, err := ApplyNetwork(nil, sm.Record{Seq: 1, Kind: sm.KindIntent, Object: sm.ObjectNetwork, ObjectID: "n", Event: sm.EventNetworkCreate, From: sm.StateNone, To: sm.StateDefined, Args: &sm.Args{Network: def}})
	if err != nil || v.Def == nil || v.Pending == nil {
		t.Fatalf("%+v %v", v, err)
	}
	v, err = ApplyNetwork(v, sm.Record{Seq: 2, Kind: sm.KindDone, Object: sm.ObjectNetwork, ObjectID: "n", Event: sm.EventNetworkCreate, From: sm.StateNone, To: sm.StateDefined, Intent: 1})
	if err != nil || v.State != sm.StateDefined || v.Def.Bridge != "cn-x" {
		t.Fatalf("%+v %v", v, err)
	}
	v, err = ApplyNetwork(v, sm.Record{Seq: 3, Kind: sm.KindReconciled, Object: sm.ObjectNetwork, ObjectID: "n", Event: sm.EventNetworkRemove, From: sm.StateDefined, To: sm.StateRemoved})
	if err != nil || v != nil {
		t.Fatalf("%+v %v", v, err)
	}
}
