package recovery

import (
	"context"
	"errors"
	"fmt"

	sm "github.com/cairn-run/cairn/statemachine"
)

// VolumeWorld is what recovery observed of a volume with an unfinished
// intent.
type VolumeWorld struct {
	// Directory: the volume's directory exists (<root>/volumes/<name>).
	Directory Fact
	// Data: its data directory (<name>/_data) exists, as a create's step
	// leaves it.
	Data Fact
}

// VolumeAction is one side effect of a volume plan.
type VolumeAction string

// ActionRemoveVolumeDirectory deletes the volume's directory with whatever
// it holds: what an unfinished create made, or what an unfinished remove
// had not deleted yet.
const ActionRemoveVolumeDirectory VolumeAction = "remove-volume-directory"

// VolumePlan is what recovery does about a volume: the actions, then the
// record that proves them.
type VolumePlan struct {
	Actions []VolumeAction
	Record  *sm.Record
	// Uncertain says why nothing is decided; the intent stays for the next
	// start.
	Uncertain string
}

// DecideVolume is recovery's decision table for a volume with an unfinished
// intent. It is pure.
//
//	intent   world                                    decision
//	create   no directory                             roll back (nothing was made)
//	create   directory without _data (mkdir cut short) roll back: remove the directory
//	create   directory with _data                     roll forward to present: the step was done
//	remove   anything                                 finish: remove the directory, removed
//	                                                  (the user asked for the data to go, and part
//	                                                  of it may be gone already)
//	any      a fact the decision needs unknown        nothing decided (Uncertain)
func DecideVolume(v sm.VolumeView, w VolumeWorld) VolumePlan {
	if v.Pending == nil {
		return VolumePlan{}
	}
	p := v.Pending
	switch p.Event {
	case sm.EventVolumeCreate:
		switch {
		case w.Directory == Unknown || w.Directory == Yes && w.Data == Unknown:
			return VolumePlan{Uncertain: "could not tell whether the unfinished volume create made its directory"}
		case w.Directory == No:
			return VolumePlan{Record: volumeReconciled(v, v.State, "unfinished volume create rolled back: no directory was made")}
		case w.Data == No:
			return VolumePlan{Actions: []VolumeAction{ActionRemoveVolumeDirectory},
				Record: volumeReconciled(v, v.State, "unfinished volume create rolled back: its directory was cut short and is removed")}
		}
		return VolumePlan{Record: volumeReconciled(v, p.To, "unfinished volume create rolled forward: its directory is there")}
	case sm.EventVolumeRemove:
		var actions []VolumeAction
		if w.Directory != No {
			actions = append(actions, ActionRemoveVolumeDirectory) // Unknown too: removing is what was asked
		}
		return VolumePlan{Actions: actions, Record: volumeReconciled(v, p.To, "unfinished volume remove finished: the data is deleted")}
	}
	return VolumePlan{Uncertain: fmt.Sprintf("unknown volume event %q", p.Event)}
}

func volumeReconciled(v sm.VolumeView, to sm.State, reason string) *sm.Record {
	return &sm.Record{Kind: sm.KindReconciled, Object: sm.ObjectVolume, ObjectID: v.Name, Event: v.Pending.Event,
		From: v.State, To: to, Intent: v.Pending.Seq, Error: reason}
}

// VolumeStore is the volume directories as recovery observes and cleans
// them.
type VolumeStore interface {
	// Exists reports whether the volume's directory and its data directory exist.
	Exists(name string) (dir, data bool, err error)
	// RemoveDirectory deletes the volume's directory and everything in it.
	RemoveDirectory(name string) error
}

// VolumeJournal is the journal as volume recovery uses it.
type VolumeJournal interface {
	Append(rec sm.Record) (sm.Record, error)
	Volumes() []sm.VolumeView
}

func observeVolume(store VolumeStore, name string) VolumeWorld {
	dir, data, err := store.Exists(name)
	if err != nil {
		return VolumeWorld{Directory: Unknown, Data: Unknown}
	}
	return VolumeWorld{Directory: FactOf(dir, nil), Data: FactOf(data, nil)}
}

// recoverVolumes decides and records every volume with an unfinished intent.
func (r *Runner) recoverVolumes(ctx context.Context, rep *Report) error {
	if r.Volumes == nil || r.VolumeJournal == nil {
		return nil
	}
	var errs []error
	for _, v := range r.VolumeJournal.Volumes() {
		if v.Pending == nil {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		plan := DecideVolume(v, observeVolume(r.Volumes, v.Name))
		if plan.Uncertain != "" {
			r.Log.Error("recovery left a volume as the journal has it", "volume", v.Name, "reason", plan.Uncertain)
			errs = append(errs, fmt.Errorf("recover volume %s: nothing decided: %s", v.Name, plan.Uncertain))
			continue
		}
		failed := false
		for _, a := range plan.Actions {
			rep.Actions[string(a)]++
			if a == ActionRemoveVolumeDirectory {
				if err := r.Volumes.RemoveDirectory(v.Name); err != nil {
					errs = append(errs, fmt.Errorf("recover volume %s: %s: %w", v.Name, a, err))
					failed = true
				}
			}
		}
		if failed || plan.Record == nil {
			continue
		}
		r.crash(CrashBeforeRecord)
		if _, err := r.VolumeJournal.Append(*plan.Record); err != nil {
			errs = append(errs, fmt.Errorf("record recovery of volume %s: %w", v.Name, err))
			continue
		}
		r.crash(CrashAfterRecord)
		rep.Volumes++
		r.Log.Info("recovered", "volume", v.Name, "event", plan.Record.Event, "to", plan.Record.To, "reason", plan.Record.Error)
	}
	return errors.Join(errs...)
}
