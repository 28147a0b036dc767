package journal

import (
	"encoding/binary"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	sm "github.com/cairn-run/cairn/statemachine"
)

// The bbolt file (<root>/cairn.db) is laid out as:
//
//	journal/     <seq uint64 BE>   -> Record (JSON): INTENT | DONE | FAILED | RECONCILED
//	containers/  <container id>    -> Container view (JSON): state, process, exit, mount id, timestamps
//	pending/     <container id>    -> its unfinished intent (JSON), if any
//	names/       <container name>  -> <container id>
//	meta/        "schema"          -> schema version (decimal)
//	             "clean-shutdown"  -> "1" while the daemon is stopped cleanly, absent while it runs
//	             "boot-id"         -> kernel boot id of the last start
//	images/ layers/ mounts/        -> owned by package layer (see layer/buckets.go)
//
// A layout change bumps schemaVersion and comes with a migration in Open.
//
// A view is stored in two parts: an intent only changes a container's
// pending intent (and its seq), so it writes the small pending/ entry and
// leaves containers/ alone; the record that finishes the intent rewrites
// the view and deletes the entry. This halves the pages an intent dirties.
// readView puts the parts back together.

const schemaVersion = "1"

var (
	bucketJournal    = []byte("journal")
	bucketContainers = []byte("containers")
	bucketNames      = []byte("names")
	bucketPending    = []byte("pending")
	bucketMeta       = []byte("meta")

	metaSchema        = []byte("schema")
	metaCleanShutdown = []byte("clean-shutdown")
	metaBootID        = []byte("boot-id")
)

// createBuckets makes every bucket of the journal and stamps the schema
// version, refusing a file written by a newer or unknown layout.
func createBuckets(tx *bolt.Tx) error {
	for _, name := range [][]byte{bucketJournal, bucketContainers, bucketPending, bucketNames, bucketMeta} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	meta := tx.Bucket(bucketMeta)
	switch v := meta.Get(metaSchema); {
	case v == nil:
		return meta.Put(metaSchema, []byte(schemaVersion))
	case string(v) != schemaVersion:
		return fmt.Errorf("journal schema version %q, this cairnd understands %q", v, schemaVersion)
	}
	return nil
}

func journalBucket(tx *bolt.Tx) *bolt.Bucket    { return tx.Bucket(bucketJournal) }
func containersBucket(tx *bolt.Tx) *bolt.Bucket { return tx.Bucket(bucketContainers) }
func namesBucket(tx *bolt.Tx) *bolt.Bucket      { return tx.Bucket(bucketNames) }
func pendingBucket(tx *bolt.Tx) *bolt.Bucket    { return tx.Bucket(bucketPending) }
func metaBucket(tx *bolt.Tx) *bolt.Bucket       { return tx.Bucket(bucketMeta) }

func seqKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), seq)
}

func keySeq(key []byte) uint64 { return binary.BigEndian.Uint64(key) }

// encodeRecord is a record's stored form. Its seq is left out: the key
// holds it, and the appender encodes before the committer assigns it.
func encodeRecord(rec sm.Record) ([]byte, error) {
	rec.Seq = 0
	data, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("encode record: %w", err)
	}
	return data, nil
}

// decodeRecord reads a stored record back, its seq taken from the key.
func decodeRecord(key, value []byte) (sm.Record, error) {
	var rec sm.Record
	if err := json.Unmarshal(value, &rec); err != nil {
		return rec, fmt.Errorf("record %d: %w: %w", keySeq(key), ErrCorrupt, err)
	}
	rec.Seq = keySeq(key)
	return rec, nil
}

// readViews reads every stored view, each with its pending intent, and the
// names.
func readViews(tx *bolt.Tx) (map[string]*sm.Container, map[string]string, error) {
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
	err = pendingBucket(tx).ForEach(func(k, v []byte) error {
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

// writeView stores c, or deletes the view of id when c is nil. With
// intentOnly, only the pending intent changed since the stored view.
func writeView(tx *bolt.Tx, id string, c *sm.Container, intentOnly bool) error {
	cb, pb := containersBucket(tx), pendingBucket(tx)
	if c == nil {
		if err := cb.Delete([]byte(id)); err != nil {
			return err
		}
		return pb.Delete([]byte(id))
	}
	if c.Pending != nil {
		data, err := json.Marshal(c.Pending)
		if err != nil {
			return fmt.Errorf("encode pending intent of %s: %w", id, err)
		}
		if err := pb.Put([]byte(id), data); err != nil {
			return err
		}
	} else if err := pb.Delete([]byte(id)); err != nil {
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
