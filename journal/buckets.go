package journal

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"

	gojson "github.com/goccy/go-json"
	bolt "go.etcd.io/bbolt"

	"github.com/cairn-run/cairn/internal/schema"
	sm "github.com/cairn-run/cairn/statemachine"
)

// The layout of the bbolt file is drawn, and owned, by internal/schema; this
// file keeps only the journal's record encodings.
//
// A view is stored in two parts: an intent only changes a container's
// pending intent (and its seq), so it writes the small pending/ entry (keyed
// by object key, "container/<id>") and leaves containers/ alone; the record
// that finishes the intent rewrites the view and deletes the entry. This
// halves the pages an intent dirties. readViews puts the parts back together.

func journalBucket(tx *bolt.Tx) *bolt.Bucket    { return schema.Journal(tx) }
func containersBucket(tx *bolt.Tx) *bolt.Bucket { return schema.Containers(tx) }
func imageViewsBucket(tx *bolt.Tx) *bolt.Bucket { return schema.ImageViews(tx) }
func volumesBucket(tx *bolt.Tx) *bolt.Bucket    { return schema.Volumes(tx) }
func namesBucket(tx *bolt.Tx) *bolt.Bucket      { return schema.Names(tx) }
func pendingBucket(tx *bolt.Tx) *bolt.Bucket    { return schema.Pending(tx) }
func metaBucket(tx *bolt.Tx) *bolt.Bucket       { return schema.Meta(tx) }

// pendingKey is the pending/ key of container id: its object key.
func pendingKey(id string) []byte { return []byte(sm.ObjectKey(sm.ObjectContainer, id)) }

// execPendingKey is the pending/ key of exec session id.
func execPendingKey(id string) []byte { return []byte(sm.ObjectKey(sm.ObjectExec, id)) }

func seqKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), seq)
}

func keySeq(key []byte) uint64 { return binary.BigEndian.Uint64(key) }

// encodeRecord is a record's stored form. Its seq is left out: the key
// holds it, and the appender encodes before the committer assigns it.
// A container record's object id is its container id, which the record
// already holds, so it is left out too (decodeRecord puts it back).
func encodeRecord(rec sm.Record) ([]byte, error) {
	rec = rec.Normalized()
	rec.Seq = 0
	if rec.Object == sm.ObjectContainer && rec.ObjectID == rec.Container {
		rec.ObjectID = ""
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("encode record: %w", err)
	}
	return data, nil
}

// decodeRecord reads a stored record back, its seq taken from the key.
//
// It decodes with goccy/go-json, a drop-in for encoding/json that is about
// five times faster on records: Open replays the whole journal, and decoding
// was three quarters of that. TestDecodeRecord_SameAsEncodingJSON holds the
// two decoders to the same result.
func decodeRecord(key, value []byte) (sm.Record, error) {
	var rec sm.Record
	if err := gojson.Unmarshal(value, &rec); err != nil {
		return rec, fmt.Errorf("record %d: %w: %w", keySeq(key), ErrCorrupt, err)
	}
	rec.Seq = keySeq(key)
	return rec.Normalized(), nil
}

// views are the stored views of a file: containers, exec sessions, names,
// images, network attachments, networks and volumes.
type views struct {
	containers map[string]*sm.Container
	execs      map[string]*sm.Exec
	names      map[string]string
	images     map[string]*sm.ImageView
	netAttachs map[string]*sm.NetAttachView
	networks   map[string]*sm.NetworkView
	volumes    map[string]*sm.VolumeView
}

// readViews reads every stored view, each with its pending intent, and the
// names.
func readViews(tx *bolt.Tx) (views, error) {
	images, err := readBucketViews[sm.ImageView](imageViewsBucket(tx), "image")
	if err != nil {
		return views{}, err
	}
	execs, err := readBucketViews[sm.Exec](schema.Execs(tx), "exec session")
	if err != nil {
		return views{}, err
	}
	volumes, err := readBucketViews[sm.VolumeView](volumesBucket(tx), "volume")
	if err != nil {
		return views{}, err
	}
	atts, nets, err := readNetViews(tx)
	if err != nil {
		return views{}, err
	}
	v := views{execs: execs, images: images, netAttachs: atts, networks: nets, volumes: volumes}
	v.containers, v.names, err = readContainerViews(tx, v)
	return v, err
}

// readBucketViews decodes every view in b (nil: the bucket does not
// exist, so there are none), keyed by object id.
func readBucketViews[V any](b *bolt.Bucket, what string) (map[string]*V, error) {
	out := map[string]*V{}
	if b == nil {
		return out, nil
	}
	err := b.ForEach(func(k, data []byte) error {
		view := new(V)
		if err := json.Unmarshal(data, view); err != nil {
			return fmt.Errorf("view of %s %.80q: %w: %w", what, k, ErrCorrupt, err)
		}
		out[string(k)] = view
		return nil
	})
	return out, err
}

// withPending gives the view of id in views its pending intent, decoded
// from data, through set.
func withPending[V any](views map[string]*V, what string, id, data []byte, set func(*V, *sm.Pending)) error {
	view, ok := views[string(id)]
	if !ok {
		return fmt.Errorf("pending intent of %s %.80q, which has no view: %w", what, id, ErrCorrupt)
	}
	var p sm.Pending
	if err := json.Unmarshal(data, &p); err != nil {
		return fmt.Errorf("pending intent of %s %.80q: %w: %w", what, id, ErrCorrupt, err)
	}
	set(view, &p)
	return nil
}

// readContainerViews reads the containers' views and names, and puts each
// pending intent with its view (the other kinds' into theirs in v).
func readContainerViews(tx *bolt.Tx, v views) (map[string]*sm.Container, map[string]string, error) {
	containers := map[string]*sm.Container{}
	err := containersBucket(tx).ForEach(func(k, v []byte) error {
		var c sm.Container
		if err := json.Unmarshal(v, &c); err != nil {
			return fmt.Errorf("view of %s: %w: %w", k, ErrCorrupt, err)
		}
		containers[string(k)] = &c
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	// The other kinds with a fold, so with intents: each intent goes to its
	// view, and the view's seq is at least the intent's.
	others := map[sm.ObjectKind]func(id, data []byte) error{
		sm.ObjectImage: func(id, data []byte) error {
			return withPending(v.images, "image", id, data, func(x *sm.ImageView, p *sm.Pending) { x.Pending, x.Seq = p, max(x.Seq, p.Seq) })
		},
		sm.ObjectNetAttach: func(id, data []byte) error {
			return withPending(v.netAttachs, "attachment", id, data, func(x *sm.NetAttachView, p *sm.Pending) { x.Pending = p })
		},
		sm.ObjectNetwork: func(id, data []byte) error {
			return withPending(v.networks, "network", id, data, func(x *sm.NetworkView, p *sm.Pending) { x.Pending = p })
		},
		sm.ObjectExec: func(id, data []byte) error {
			return withPending(v.execs, "exec session", id, data, func(x *sm.Exec, p *sm.Pending) { x.Pending, x.Seq = p, max(x.Seq, p.Seq) })
		},
		sm.ObjectVolume: func(id, data []byte) error {
			return withPending(v.volumes, "volume", id, data, func(x *sm.VolumeView, p *sm.Pending) { x.Pending, x.Seq = p, max(x.Seq, p.Seq) })
		},
	}
	err = pendingBucket(tx).ForEach(func(key, v []byte) error {
		if kind, id, ok := strings.Cut(string(key), "/"); ok && sm.ObjectKind(kind) != sm.ObjectContainer {
			if attach, known := others[sm.ObjectKind(kind)]; known {
				return attach([]byte(id), v)
			}
		}
		k, isContainer := bytes.CutPrefix(key, []byte(sm.ObjectKey(sm.ObjectContainer, "")))
		if !isContainer {
			// Only containers, exec sessions, images, attachments, networks
			// and volumes have a fold, so only they have intents.
			return fmt.Errorf("pending intent of %.80q, which is no container, exec session, image, attachment, network or volume: %w", key, ErrCorrupt)
		}
		c, ok := containers[string(k)]
		if !ok {
			return fmt.Errorf("pending intent of %s, which has no view: %w", k, ErrCorrupt)
		}
		var p sm.Pending
		if err := json.Unmarshal(v, &p); err != nil {
			return fmt.Errorf("pending intent of %s: %w: %w", k, ErrCorrupt, err)
		}
		c.Pending = &p
		c.Seq = max(c.Seq, p.Seq)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	names := map[string]string{}
	err = namesBucket(tx).ForEach(func(k, v []byte) error {
		names[string(k)] = string(v)
		return nil
	})
	return containers, names, err
}

// writeExecView stores exec session x (its pending intent apart), or
// deletes the view of id when x is nil.
func writeExecView(tx *bolt.Tx, id string, x *sm.Exec) error {
	eb, pb := schema.Execs(tx), pendingBucket(tx)
	if x == nil {
		if err := eb.Delete([]byte(id)); err != nil {
			return err
		}
		return pb.Delete(execPendingKey(id))
	}
	if x.Pending != nil {
		data, err := json.Marshal(x.Pending)
		if err != nil {
			return fmt.Errorf("encode pending intent of exec session %s: %w", id, err)
		}
		if err := pb.Put(execPendingKey(id), data); err != nil {
			return err
		}
	} else if err := pb.Delete(execPendingKey(id)); err != nil {
		return err
	}
	stored := *x
	stored.Pending = nil
	data, err := json.Marshal(stored)
	if err != nil {
		return fmt.Errorf("encode view of exec session %s: %w", id, err)
	}
	return eb.Put([]byte(id), data)
}

// writeView stores c, or deletes the view of id when c is nil. With
// intentOnly, only the pending intent changed since the stored view.
func writeView(tx *bolt.Tx, id string, c *sm.Container, intentOnly bool) error {
	cb, pb := containersBucket(tx), pendingBucket(tx)
	if c == nil {
		if err := cb.Delete([]byte(id)); err != nil {
			return err
		}
		return pb.Delete(pendingKey(id))
	}
	if c.Pending != nil {
		data, err := json.Marshal(c.Pending)
		if err != nil {
			return fmt.Errorf("encode pending intent of %s: %w", id, err)
		}
		if err := pb.Put(pendingKey(id), data); err != nil {
			return err
		}
	} else if err := pb.Delete(pendingKey(id)); err != nil {
		return err
	}
	if intentOnly {
		return nil
	}
	stored := *c
	stored.Pending = nil
	data, err := json.Marshal(stored)
	if err != nil {
		return fmt.Errorf("encode view of %s: %w", id, err)
	}
	return cb.Put([]byte(id), data)
}

// writeImageView stores an image's view, its pending intent under
// pending/image/<id>; nil deletes both. An image view is small, so an
// intent rewrites it whole.
func writeImageView(tx *bolt.Tx, id string, v *sm.ImageView) error {
	ib, pb := imageViewsBucket(tx), pendingBucket(tx)
	key := []byte(sm.ObjectKey(sm.ObjectImage, id))
	if v == nil {
		if err := ib.Delete([]byte(id)); err != nil {
			return err
		}
		return pb.Delete(key)
	}
	if v.Pending != nil {
		data, err := json.Marshal(v.Pending)
		if err != nil {
			return fmt.Errorf("encode pending intent of image %s: %w", id, err)
		}
		if err := pb.Put(key, data); err != nil {
			return err
		}
	} else if err := pb.Delete(key); err != nil {
		return err
	}
	stored := *v
	stored.Pending = nil
	data, err := json.Marshal(stored)
	if err != nil {
		return fmt.Errorf("encode view of image %s: %w", id, err)
	}
	return ib.Put([]byte(id), data)
}

// writeVolumeView stores a volume's view, its pending intent under
// pending/volume/<name>; nil deletes both. A volume view is small, so an
// intent rewrites it whole (a create's first intent makes it: the view of
// a volume being created has state "none").
func writeVolumeView(tx *bolt.Tx, name string, v *sm.VolumeView) error {
	vb, pb := volumesBucket(tx), pendingBucket(tx)
	key := []byte(sm.ObjectKey(sm.ObjectVolume, name))
	if v == nil {
		if err := vb.Delete([]byte(name)); err != nil {
			return err
		}
		return pb.Delete(key)
	}
	if v.Pending != nil {
		data, err := json.Marshal(v.Pending)
		if err != nil {
			return fmt.Errorf("encode pending intent of volume %s: %w", name, err)
		}
		if err := pb.Put(key, data); err != nil {
			return err
		}
	} else if err := pb.Delete(key); err != nil {
		return err
	}
	stored := *v
	stored.Pending = nil
	data, err := json.Marshal(stored)
	if err != nil {
		return fmt.Errorf("encode view of volume %s: %w", name, err)
	}
	return vb.Put([]byte(name), data)
}
