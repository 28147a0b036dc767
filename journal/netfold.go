package journal

import (
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/cairn-run/cairn/internal/schema"
	sm "github.com/cairn-run/cairn/statemachine"
)

// The folds of network attachments (kind "netattach", into netattach/) and
// user networks (kind "network", into networks/), since schema 4. Their
// views are small, so an intent rewrites the view whole, as an image's does;
// the pending intent is kept under pending/<kind>/<id> like every other's.

// ApplyNetAttach folds one record of an attachment into its view. A nil
// result means the attachment has no view after it (detached, or an
// attach that failed). It is pure and never modifies prev.
func ApplyNetAttach(prev *sm.NetAttachView, rec sm.Record) (*sm.NetAttachView, error) {
	rec = rec.Normalized()
	var pending uint64
	if prev != nil && prev.Pending != nil {
		pending = prev.Pending.Seq
	}
	if err := validateNetRecord(rec, sm.ObjectNetAttach, pending); err != nil {
		return nil, fmt.Errorf("record %d (%s %s of %s): %w", rec.Seq, rec.Kind, rec.Event, rec.Key(), err)
	}
	var next sm.NetAttachView
	if prev != nil {
		next = prev.Clone()
	} else {
		next = sm.NetAttachView{ID: rec.ObjectID, State: sm.StateNone}
	}
	next.Seq = rec.Seq
	if rec.Kind == sm.KindIntent {
		p := sm.Pending{Seq: rec.Seq, Event: rec.Event, From: rec.From, To: rec.To, Args: rec.Args}
		next.Pending = &p
		if a := rec.Args; a != nil && a.NetAttach != nil && rec.Event == sm.EventAttach {
			next.Network, next.NetNS, next.IfName, next.Requested = a.NetAttach.Network, a.NetAttach.NetNS, a.NetAttach.IfName, a.NetAttach.Ports
		}
		next = next.Clone()
		return &next, nil
	}
	next.Pending = nil
	next.State = rec.To
	if next.State != sm.StateAttached {
		return nil, nil
	}
	if rec.Result != nil && rec.Result.NetAttach != nil {
		r := *rec.Result.NetAttach
		next.Result = &r
	}
	if next.CreatedAt.IsZero() {
		next.CreatedAt = rec.Time
	}
	next = next.Clone()
	return &next, nil
}

// ApplyNetwork folds one record of a user network into its view.
func ApplyNetwork(prev *sm.NetworkView, rec sm.Record) (*sm.NetworkView, error) {
	rec = rec.Normalized()
	var pending uint64
	if prev != nil && prev.Pending != nil {
		pending = prev.Pending.Seq
	}
	if err := validateNetRecord(rec, sm.ObjectNetwork, pending); err != nil {
		return nil, fmt.Errorf("record %d (%s %s of %s): %w", rec.Seq, rec.Kind, rec.Event, rec.Key(), err)
	}
	var next sm.NetworkView
	if prev != nil {
		next = prev.Clone()
	} else {
		next = sm.NetworkView{ID: rec.ObjectID, State: sm.StateNone}
	}
	next.Seq = rec.Seq
	if rec.Kind == sm.KindIntent {
		next.Pending = &sm.Pending{Seq: rec.Seq, Event: rec.Event, From: rec.From, To: rec.To, Args: rec.Args}
		if rec.Args != nil && rec.Args.Network != nil && rec.Event == sm.EventNetworkCreate {
			d := *rec.Args.Network
			next.Def = &d
		}
		next = next.Clone()
		return &next, nil
	}
	next.Pending = nil
	next.State = rec.To
	if next.State != sm.StateDefined {
		return nil, nil
	}
	if next.CreatedAt.IsZero() {
		next.CreatedAt = rec.Time
	}
	next = next.Clone()
	return &next, nil
}

func validateNetRecord(rec sm.Record, want sm.ObjectKind, pending uint64) error {
	if err := validateObject(rec, want); err != nil {
		return err
	}
	switch {
	case rec.Container != "" || rec.Exec != "":
		return fmt.Errorf("a %s's record names container %.80q: %w", want, rec.Container, ErrInconsistent)
	case !sm.IsNetEvent(rec.Event) || sm.NetObjectOf(rec.Event) != want:
		return fmt.Errorf("%q is not an event of a %s: %w", rec.Event, want, ErrInconsistent)
	}
	switch rec.Kind {
	case sm.KindIntent:
		if pending != 0 {
			return fmt.Errorf("intent %d is still pending: %w", pending, ErrInconsistent)
		}
	case sm.KindDone, sm.KindFailed:
		if pending == 0 || pending != rec.Intent {
			return fmt.Errorf("finishes intent %d, which is not pending: %w", rec.Intent, ErrInconsistent)
		}
	case sm.KindReconciled:
		if rec.Intent != pending {
			return fmt.Errorf("reconciles intent %d, but intent %d is pending: %w", rec.Intent, pending, ErrInconsistent)
		}
	default:
		return fmt.Errorf("unknown record kind %q: %w", rec.Kind, ErrInconsistent)
	}
	return nil
}

func (b *batchView) netAttach(id string) *sm.NetAttachView {
	if v, ok := b.netAttachs[id]; ok {
		return v
	}
	if b.parent != nil {
		return b.parent.netAttach(id)
	}
	return b.j.netAttachs[id]
}

func (b *batchView) network(id string) *sm.NetworkView {
	if v, ok := b.networks[id]; ok {
		return v
	}
	if b.parent != nil {
		return b.parent.network(id)
	}
	return b.j.networks[id]
}

func (b *batchView) foldNetAttach(rec sm.Record) error {
	prev := b.netAttach(rec.ObjectID)
	next, err := ApplyNetAttach(prev, rec)
	if err != nil {
		return err
	}
	if prev != nil || next != nil {
		b.netAttachs[rec.ObjectID] = next
	}
	return nil
}

func (b *batchView) foldNetwork(rec sm.Record) error {
	prev := b.network(rec.ObjectID)
	next, err := ApplyNetwork(prev, rec)
	if err != nil {
		return err
	}
	if prev != nil || next != nil {
		b.networks[rec.ObjectID] = next
	}
	return nil
}

// writeNetViews stores the batch's attachment and network views.
func (b *batchView) writeNetViews(tx *bolt.Tx) error {
	for id, v := range b.netAttachs {
		var stored any
		var p *sm.Pending
		if v != nil {
			s := *v
			p, s.Pending = s.Pending, nil
			stored = s
		}
		if err := writeSmallView(tx, schema.NetAttach(tx), sm.ObjectNetAttach, id, v != nil, stored, p); err != nil {
			return err
		}
	}
	for id, v := range b.networks {
		var stored any
		var p *sm.Pending
		if v != nil {
			s := *v
			p, s.Pending = s.Pending, nil
			stored = s
		}
		if err := writeSmallView(tx, schema.Networks(tx), sm.ObjectNetwork, id, v != nil, stored, p); err != nil {
			return err
		}
	}
	return nil
}

func writeSmallView(tx *bolt.Tx, bucket *bolt.Bucket, kind sm.ObjectKind, id string, present bool, stored any, p *sm.Pending) error {
	pb := pendingBucket(tx)
	key := []byte(sm.ObjectKey(kind, id))
	if !present {
		if err := bucket.Delete([]byte(id)); err != nil {
			return err
		}
		return pb.Delete(key)
	}
	if p != nil {
		data, err := json.Marshal(p)
		if err != nil {
			return fmt.Errorf("encode pending intent of %s: %w", key, err)
		}
		if err := pb.Put(key, data); err != nil {
			return err
		}
	} else if err := pb.Delete(key); err != nil {
		return err
	}
	data, err := json.Marshal(stored)
	if err != nil {
		return fmt.Errorf("encode view of %s: %w", key, err)
	}
	return bucket.Put([]byte(id), data)
}

// readNetViews reads the stored attachment and network views (without
// their pending intents, which readContainerViews puts back).
func readNetViews(tx *bolt.Tx) (map[string]*sm.NetAttachView, map[string]*sm.NetworkView, error) {
	atts, err := readBucketViews[sm.NetAttachView](schema.NetAttach(tx), "attachment")
	if err != nil {
		return nil, nil, err
	}
	nets, err := readBucketViews[sm.NetworkView](schema.Networks(tx), "network")
	return atts, nets, err
}

// NetAttachment returns the view of attachment id (a container's id).
func (j *Journal) NetAttachment(id string) (sm.NetAttachView, bool) {
	j.mu.RLock()
	defer j.mu.RUnlock()
	v, ok := j.netAttachs[id]
	if !ok {
		return sm.NetAttachView{}, false
	}
	return v.Clone(), true
}

// NetAttachments returns every attachment's view.
func (j *Journal) NetAttachments() []sm.NetAttachView {
	j.mu.RLock()
	defer j.mu.RUnlock()
	out := make([]sm.NetAttachView, 0, len(j.netAttachs))
	for _, v := range j.netAttachs {
		out = append(out, v.Clone())
	}
	return out
}

// Network returns the view of user network id (its name).
func (j *Journal) Network(id string) (sm.NetworkView, bool) {
	j.mu.RLock()
	defer j.mu.RUnlock()
	v, ok := j.networks[id]
	if !ok {
		return sm.NetworkView{}, false
	}
	return v.Clone(), true
}

// Networks returns every user network's view.
func (j *Journal) Networks() []sm.NetworkView {
	j.mu.RLock()
	defer j.mu.RUnlock()
	out := make([]sm.NetworkView, 0, len(j.networks))
	for _, v := range j.networks {
		out = append(out, v.Clone())
	}
	return out
}
