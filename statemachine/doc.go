// Package statemachine owns the container lifecycle: the states, the events,
// the rules that say which event is legal in which state (a pure table built
// on looplab/fsm), the records that describe a transition, and the driver that
// runs the transition protocol: check the rule, record the intent durably,
// perform the side effects, record the outcome. Restart policies are a
// pure decision (DecideRestart, restartpolicy.go) and a transition of their
// own, policy-restart, which the driver runs when the policy's delay after
// an exit is over (restarts.go).
// Images have the same
// protocol with their own events, rules, steps and driver (image.go), as
// have volumes (volume.go; a create's mounts and their rules in mounts.go);
// a create merges the image's config with its overrides (imageconfig.go)
// and resolves its limits (package resources); an update changes them
// (update.go).
//
// It never touches the machine or the disk itself: the journal, the executor
// and the layer store are reached through the small interfaces declared in
// driver.go, which the adapters implement.
package statemachine
