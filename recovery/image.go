package recovery

import (
	"context"
	"errors"
	"fmt"
	"slices"

	sm "github.com/cairn-run/cairn/statemachine"
)

// ImageWorld is what recovery observed of an image with an unfinished
// intent.
type ImageWorld struct {
	// Registered: the layer store has the image (any name, or its id).
	Registered Fact
	// RefsApplied: the intent's names are as its DONE would leave them:
	// each one names the image (load, import, tag), or none does any more
	// (untag).
	RefsApplied Fact
	// Verified are the cacheIDs among an unfinished pull's claims that
	// hold a complete verified layer (layer.KeepVerified: downloaded,
	// checked, durable, its marker written last); VerifiedUnknown says a
	// claim could not be read.
	Verified        []string
	VerifiedUnknown bool
}

// ImageAction is one side effect of an image plan.
type ImageAction string

// ActionRemoveClaimedLayers deletes the layer directories an unfinished
// load or import installed and no record names (what it claimed in its
// intent); a registered one stays.
const ActionRemoveClaimedLayers ImageAction = "remove-claimed-layers"

// ActionKeepVerifiedLayers keeps the complete verified layers a
// rolled-back pull claimed, for the next pull to adopt; the RECONCILED
// record lists them (its Args.Layers), and ActionRemoveClaimedLayers
// spares them.
const ActionKeepVerifiedLayers ImageAction = "keep-verified-layers"

// ImagePlan is what recovery does about an image: the actions, then the
// record that proves them.
type ImagePlan struct {
	Actions []ImageAction
	Record  *sm.Record
	// Kept are the claims whose verified layers stay (a rolled-back pull).
	Kept []sm.LayerClaim
	// Uncertain says why nothing is decided (an observation failed); the
	// intent stays for the next start.
	Uncertain string
}

// DecideImage is recovery's decision table for an image with an
// unfinished intent. The registration, or the removal, commits with the
// DONE in one transaction, so an unfinished intent normally finds nothing
// done and rolls back; the table still rolls forward what the store shows
// done. It is pure.
//
//	intent         store shows                         decision
//	load, import,  registered with the intent's names  roll forward to present
//	pull, commit
//	load, import,  anything else                       roll back: remove the claimed layers
//	commit
//	pull           anything else                       roll back: keep the claimed layers that
//	                                                   are complete verified layers (listed in
//	                                                   the record), remove the rest
//	tag            the name names the image            roll forward
//	tag            it does not                         roll back
//	untag          the name is gone                    roll forward
//	untag          it is still there                   roll back
//	delete         the image is gone                   roll forward to removed
//	delete         it is still registered              roll back
//	any            a fact the decision needs unknown   nothing decided (Uncertain)
func DecideImage(v sm.ImageView, w ImageWorld) ImagePlan {
	if v.Pending == nil {
		return ImagePlan{}
	}
	p := v.Pending
	forward, back := p.To, v.State
	switch p.Event {
	case sm.EventLoad, sm.EventImport, sm.EventPull, sm.EventCommit:
		if w.Registered == Unknown || w.RefsApplied == Unknown {
			return ImagePlan{Uncertain: fmt.Sprintf("could not tell whether the image of the unfinished %s is registered", p.Event)}
		}
		plan := ImagePlan{Actions: []ImageAction{ActionRemoveClaimedLayers}}
		if w.Registered == Yes && w.RefsApplied == Yes {
			plan.Record = imageReconciled(v, forward, fmt.Sprintf("unfinished %s rolled forward: the image is registered with its names", p.Event))
			return plan
		}
		if p.Event == sm.EventPull && p.Args != nil {
			if w.VerifiedUnknown {
				return ImagePlan{Uncertain: "could not tell which layers of the unfinished pull were verified"}
			}
			for _, c := range p.Args.Layers {
				if slices.Contains(w.Verified, c.CacheID) {
					plan.Kept = append(plan.Kept, c)
				}
			}
		}
		if len(plan.Kept) > 0 {
			plan.Actions = append(plan.Actions, ActionKeepVerifiedLayers)
			plan.Record = imageReconciled(v, back, fmt.Sprintf("unfinished pull rolled back: nothing was registered; %d verified layers are kept for the next pull, the other layers it installed are removed", len(plan.Kept)))
			plan.Record.Args = &sm.Args{Layers: plan.Kept}
			return plan
		}
		plan.Record = imageReconciled(v, back, fmt.Sprintf("unfinished %s rolled back: nothing was registered; the layers it installed are removed", p.Event))
		return plan
	case sm.EventTag, sm.EventUntag:
		switch w.RefsApplied {
		case Unknown:
			return ImagePlan{Uncertain: fmt.Sprintf("could not read the names of the unfinished %s", p.Event)}
		case Yes:
			return ImagePlan{Record: imageReconciled(v, forward, fmt.Sprintf("unfinished %s rolled forward: the names are as it leaves them", p.Event))}
		}
		return ImagePlan{Record: imageReconciled(v, back, fmt.Sprintf("unfinished %s rolled back: the names are as they were", p.Event))}
	case sm.EventDelete:
		switch w.Registered {
		case Unknown:
			return ImagePlan{Uncertain: "could not tell whether the image of the unfinished delete is still registered"}
		case No:
			return ImagePlan{Record: imageReconciled(v, forward, "unfinished delete rolled forward: the image is gone")}
		}
		return ImagePlan{Record: imageReconciled(v, back, "unfinished delete rolled back: the image is still registered")}
	}
	return ImagePlan{Uncertain: fmt.Sprintf("unknown image event %q", p.Event)}
}

func imageReconciled(v sm.ImageView, to sm.State, reason string) *sm.Record {
	return &sm.Record{Kind: sm.KindReconciled, Object: sm.ObjectImage, ObjectID: v.ID, Event: v.Pending.Event,
		From: v.State, To: to, Intent: v.Pending.Seq, Error: reason}
}

// ImageStore is the part of the layer store recovery observes and cleans
// images with.
type ImageStore interface {
	// ImageRegistered reports whether image id has any key in the store.
	ImageRegistered(id string) (bool, error)
	// NameOf is the id of the image the canonical name names, "" for none.
	NameOf(name string) (string, error)
	// RemoveUnregisteredLayers deletes the directories of cacheIDs no
	// layer record names.
	RemoveUnregisteredLayers(cacheIDs []string) error
	// VerifiedLayerKept reports whether a claimed cacheID holds a
	// complete verified layer.
	VerifiedLayerKept(cacheID string) (bool, error)
}

// ImageJournal is the journal as image recovery uses it.
type ImageJournal interface {
	Append(rec sm.Record) (sm.Record, error)
	Images() []sm.ImageView
}

// observeImage reads the facts DecideImage needs for view v.
func observeImage(store ImageStore, v sm.ImageView) ImageWorld {
	var w ImageWorld
	w.Registered = FactOf(store.ImageRegistered(v.ID))
	p := v.Pending
	if p == nil || p.Args == nil {
		w.RefsApplied = w.Registered
		return w
	}
	if v.Pending.Event == sm.EventPull {
		for _, c := range p.Args.Layers {
			ok, err := store.VerifiedLayerKept(c.CacheID)
			if err != nil {
				w.VerifiedUnknown = true
			} else if ok {
				w.Verified = append(w.Verified, c.CacheID)
			}
		}
	}
	applied := true
	for _, name := range p.Args.Refs {
		id, err := store.NameOf(name)
		if err != nil {
			w.RefsApplied = Unknown
			return w
		}
		names := id == v.ID
		if p.Event == sm.EventUntag || p.Event == sm.EventDelete {
			names = !names // done when the name no longer names the image
		}
		applied = applied && names
	}
	w.RefsApplied = FactOf(applied, nil)
	return w
}

// recoverImages decides and records every image with an unfinished intent.
func (r *Runner) recoverImages(ctx context.Context, rep *Report) error {
	if r.Images == nil || r.ImageJournal == nil {
		return nil
	}
	var errs []error
	for _, v := range r.ImageJournal.Images() {
		if v.Pending == nil {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		plan := DecideImage(v, observeImage(r.Images, v))
		if plan.Uncertain != "" {
			r.Log.Error("recovery left an image as the journal has it", "image", v.ID, "reason", plan.Uncertain)
			errs = append(errs, fmt.Errorf("recover image %s: nothing decided: %s", v.ID, plan.Uncertain))
			continue
		}
		failed := false
		for _, a := range plan.Actions {
			rep.Actions[string(a)]++
			if a == ActionRemoveClaimedLayers && v.Pending.Args != nil {
				var ids []string
				for _, l := range v.Pending.Args.Layers {
					if !slices.Contains(plan.Kept, l) {
						ids = append(ids, l.CacheID)
					}
				}
				if err := r.Images.RemoveUnregisteredLayers(ids); err != nil {
					errs = append(errs, fmt.Errorf("recover image %s: %s: %w", v.ID, a, err))
					failed = true
				}
			}
		}
		if failed || plan.Record == nil {
			continue
		}
		r.crash(CrashBeforeRecord)
		if _, err := r.ImageJournal.Append(*plan.Record); err != nil {
			errs = append(errs, fmt.Errorf("record recovery of image %s: %w", v.ID, err))
			continue
		}
		r.crash(CrashAfterRecord)
		rep.Images++
		r.Log.Info("recovered", "image", v.ID, "event", plan.Record.Event, "to", plan.Record.To, "reason", plan.Record.Error)
	}
	return errors.Join(errs...)
}
