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
//	names/       <container name>  -> <container id>
//	meta/        "schema"          -> schema version (decimal)
//	             "clean-shutdown"  -> "1" while the daemon is stopped cleanly, absent while it runs
//	             "boot-id"         -> kernel boot id of the last start
//	images/ layers/ mounts/        -> owned by package layer (see layer/buckets.go)
//
// A layout change bumps schemaVersion and comes with a migration in Open.

const schemaVersion = "1"

var (
	bucketJournal    = []byte("journal")
	bucketContainers = []byte("containers")
	bucketNames      = []byte("names")
	bucketMeta       = []byte("meta")

	metaSchema        = []byte("schema")
	metaCleanShutdown = []byte("clean-shutdown")
	metaBootID        = []byte("boot-id")
)

// createBuckets makes every bucket of the journal and stamps the schema
// version, refusing a file written by a newer or unknown layout.
func createBuckets(tx *bolt.Tx) error {
	for _, name := range [][]byte{bucketJournal, bucketContainers, bucketNames, bucketMeta} {
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
