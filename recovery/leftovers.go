package recovery

import (
	"errors"
	"fmt"

	sm "github.com/cairn-run/cairn/statemachine"
)

// removeLeftovers deletes what containers the journal no longer knows left
// on the machine (a runtime directory, a shim, a cgroup, a mount and its
// layers), and records each removal.
func (r *Runner) removeLeftovers(rep *Report) error {
	known := map[string]bool{}
	mounts := map[string]bool{}
	for _, c := range r.Journal.Containers() {
		known[c.ID] = true
		mounts[c.MountID] = true
	}
	var errs []error
	ids, err := r.Runtime.IDs()
	if err != nil {
		errs = append(errs, err)
	}
	for _, id := range ids {
		if known[id] {
			continue
		}
		if err := r.Runtime.Remove(id); err != nil {
			errs = append(errs, err)
			continue
		}
		rep.Actions["remove-leftovers"]++
		errs = append(errs, r.recordLeftover(id, "removed the runtime files, shim and cgroup of a container the journal no longer knows"))
	}
	for _, id := range r.orphanMounts(mounts, &errs) {
		if err := r.Layers.RemoveMount(id); err != nil {
			errs = append(errs, err)
			continue
		}
		rep.Actions["remove-leftovers"]++
		errs = append(errs, r.recordLeftover("mount/"+id, "removed the layers and mount of no container the journal knows"))
	}
	return errors.Join(errs...)
}

// orphanMounts lists mounts, registered or merely mounted, that belong to no
// known container.
func (r *Runner) orphanMounts(known map[string]bool, errs *[]error) []string {
	seen := map[string]bool{}
	var out []string
	add := func(id string) {
		if !known[id] && !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	registered, err := r.Layers.MountIDs()
	if err != nil {
		*errs = append(*errs, err)
	}
	for _, id := range registered {
		add(id)
	}
	mounted, err := r.Layers.MountedIDs()
	if err != nil {
		*errs = append(*errs, err)
	}
	for id := range mounted {
		add(id)
	}
	return out
}

func (r *Runner) recordLeftover(container, reason string) error {
	_, err := r.Journal.Append(sm.Record{Kind: sm.KindReconciled, Container: container, Event: EventLeftovers, To: sm.StateRemoved, Error: reason})
	if err != nil {
		return fmt.Errorf("record leftover cleanup of %s: %w", container, err)
	}
	r.Log.Info("removed leftovers", "of", container)
	return nil
}
