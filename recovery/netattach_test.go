package recovery

import (
	"testing"

	sm "github.com/cairn-run/cairn/statemachine"
)

func TestDecideNetAttach(t *testing.T) {
	attached := sm.NetAttachView{ID: "c", State: sm.StateAttached, NetNS: "/run/x/netns/c"}
	attaching := sm.NetAttachView{ID: "c", State: sm.StateNone, Pending: &sm.Pending{Seq: 3, Event: sm.EventAttach}}
	detaching := sm.NetAttachView{ID: "c", State: sm.StateAttached, Pending: &sm.Pending{Seq: 4, Event: sm.EventDetach}}
	for _, tc := range []struct {
		name string
		view sm.NetAttachView
		w    NetWorld
		want NetAction
	}{
		{"attach intent without DONE, container alive", attaching, NetWorld{ContainerExists: true, ContainerRunning: true, NetNSMounted: Yes}, NetRelease},
		{"attach intent without DONE, netns unknown", attaching, NetWorld{ContainerExists: true, NetNSMounted: Unknown}, NetRelease},
		{"detach intent without DONE", detaching, NetWorld{ContainerExists: false, NetNSMounted: Yes}, NetRelease},
		{"container gone", attached, NetWorld{ContainerExists: false, NetNSMounted: Yes}, NetRelease},
		{"container gone, netns unknown", attached, NetWorld{NetNSMounted: Unknown}, NetRelease},
		{"rebooted, container stopped", attached, NetWorld{ContainerExists: true, NetNSMounted: No, Rebooted: true}, NetRelease},
		{"rebooted, netns still mounted (simulated)", attached, NetWorld{ContainerExists: true, NetNSMounted: Yes, Rebooted: true}, NetRelease},
		{"alive with netns", attached, NetWorld{ContainerExists: true, ContainerRunning: true, NetNSMounted: Yes}, NetKeep},
		{"stopped with netns: stop/start keep the IP", attached, NetWorld{ContainerExists: true, NetNSMounted: Yes}, NetKeep},
		{"stopped, netns gone", attached, NetWorld{ContainerExists: true, NetNSMounted: No}, NetRelease},
		{"alive, netns file gone: the process holds it", attached, NetWorld{ContainerExists: true, ContainerRunning: true, NetNSMounted: No}, NetKeep},
		{"netns unknown", attached, NetWorld{ContainerExists: true, NetNSMounted: Unknown}, NetUncertain},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := DecideNetAttach(tc.view, tc.w)
			if got.Action != tc.want || got.Reason == "" {
				t.Fatalf("got %+v, want %s", got, tc.want)
			}
		})
	}
}

func TestDecideNetwork(t *testing.T) {
	for _, tc := range []struct {
		name string
		view sm.NetworkView
		keep bool
	}{
		{"settled", sm.NetworkView{ID: "n", State: sm.StateDefined}, true},
		{"create cut short", sm.NetworkView{ID: "n", Pending: &sm.Pending{Seq: 1, Event: sm.EventNetworkCreate}}, false},
		{"remove cut short", sm.NetworkView{ID: "n", State: sm.StateDefined, Pending: &sm.Pending{Seq: 2, Event: sm.EventNetworkRemove}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := DecideNetwork(tc.view); got.Keep != tc.keep || got.Reason == "" {
				t.Fatalf("got %+v, want keep=%v", got, tc.keep)
			}
		})
	}
}
