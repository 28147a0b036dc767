package journal

import (
	"encoding/json"
	"fmt"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/cairn-run/cairn/internal/schema"
	sm "github.com/cairn-run/cairn/statemachine"
)

// Compaction keeps the journal file from growing with the length of
// history. The records of an object that is gone from the view (a removed
// container or a create that failed, a deleted image or a load that
// failed) are deleted once all of them are older than the newest `retain`
// records, so `cairn history` still shows recently removed objects and a
// replay never meets half a history. Live objects keep every record. Compaction is not needed for correctness; it bounds the
// file, and with it the checks Open runs at startup (bbolt's page check and
// the replay of the whole journal).

// CompactResult says what a compaction did: records scanned, deleted.
type CompactResult struct {
	Scanned, Deleted int
}

// Compact deletes the records of gone containers older than the newest
// retain records, at most batch keys per write transaction so appends are
// never held up for long.
func (j *Journal) Compact(retain, batch int) (CompactResult, error) {
	var res CompactResult
	doomed, scanned, err := j.compactable(uint64(max(retain, 0)))
	res.Scanned = scanned
	if err != nil {
		return res, err
	}
	for len(doomed) > 0 {
		n := min(batch, len(doomed))
		err := j.db.Update(func(tx *bolt.Tx) error {
			jb := journalBucket(tx)
			through := compactedThrough(tx)
			deleted := Outcomes{}
			for _, d := range doomed[:n] {
				if err := jb.Delete(d.key); err != nil {
					return err
				}
				through = max(through, keySeq(d.key))
				deleted.add(d.rec)
			}
			// Counts of transitions must not drop with the records.
			if err := recordCompacted(tx, deleted); err != nil {
				return err
			}
			// A watcher resuming below this line may have missed records.
			return schema.Meta(tx).Put(schema.MetaCompactedThrough, seqKey(through))
		})
		if err != nil {
			return res, fmt.Errorf("compact journal: %w", err)
		}
		res.Deleted += n
		doomed = doomed[n:]
	}
	return res, nil
}

func compactedThrough(tx *bolt.Tx) uint64 {
	if v := schema.Meta(tx).Get(schema.MetaCompactedThrough); len(v) == 8 {
		return keySeq(v)
	}
	return 0
}

// CompactedThrough is the highest seq compaction has deleted: records at or
// below it may be missing from the journal.
func (j *Journal) CompactedThrough() (uint64, error) {
	var seq uint64
	err := j.db.View(func(tx *bolt.Tx) error {
		seq = compactedThrough(tx)
		return nil
	})
	return seq, err
}

// compactable lists the keys of records of containers that are gone from
// the view and whose every record is older than the newest retain records.
// doomedRecord is a record compaction will delete: its key, and what it
// counts as.
type doomedRecord struct {
	key []byte
	rec sm.Record // its kind, event and object: what it counts as
}

func (j *Journal) compactable(retain uint64) ([]doomedRecord, int, error) {
	type history struct {
		keys   []doomedRecord
		newest uint64
	}
	histories := map[string]*history{}
	scanned := 0
	var horizon uint64
	err := j.db.View(func(tx *bolt.Tx) error {
		jb := journalBucket(tx)
		if last := jb.Sequence(); last > retain {
			horizon = last - retain
		}
		c := jb.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			scanned++
			var rec sm.Record
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("record %d: %w: %w", keySeq(k), ErrCorrupt, err)
			}
			key := rec.Key()
			h := histories[key]
			if h == nil {
				h = &history{}
				histories[key] = h
			}
			if keySeq(k) <= horizon {
				h.keys = append(h.keys, doomedRecord{key: append([]byte(nil), k...), rec: rec})
			}
			h.newest = keySeq(k)
		}
		return nil
	})
	if err != nil {
		return nil, scanned, err
	}
	// A history with a record past the horizon is recent (or still being
	// written), so it stays whole.
	var doomed []doomedRecord
	for key, h := range histories {
		if j.live(key) || h.newest > horizon {
			continue
		}
		doomed = append(doomed, h.keys...)
	}
	return doomed, scanned, nil
}

// live reports whether the object with key is in the view.
func (j *Journal) live(key string) bool {
	kind, id, _ := strings.Cut(key, "/")
	switch sm.ObjectKind(kind) {
	case sm.ObjectContainer:
		_, ok := j.Container(id)
		return ok
	case sm.ObjectImage:
		_, ok := j.Image(id)
		return ok
	case sm.ObjectVolume:
		_, ok := j.Volume(id)
		return ok
	}
	return true // a kind without a fold has no records yet; keep them
}
