package schema

import (
	"bytes"
	"fmt"
	"strconv"

	bolt "go.etcd.io/bbolt"
)

// firstVersion is the oldest layout a migration starts from.
const firstVersion = 1

// Migration brings a file from version From to To (= From+1).
type Migration struct {
	From, To int
	Name     string
	Run      func(tx *bolt.Tx) error
}

// Migrations are applied in order; each starts where the previous one ended
// and the last ends at Version.
var Migrations = []Migration{
	{From: 1, To: 2, Name: "pending intents keyed by object key", Run: pendingByObjectKey},
	{From: 2, To: 3, Name: "image views", Run: imageViews},
	{From: 3, To: 4, Name: "network attachments and networks", Run: netViews},
	{From: 4, To: 5, Name: "exec session views", Run: addExecs},
	{From: 5, To: 6, Name: "volume views", Run: volumeViews},
}

// Migrate brings the file in tx from its stored version to Version, running
// each migration in order in tx and stamping each new version. It returns
// the migrations it ran (none for a current file). It refuses a newer file.
// The caller commits tx, or rolls it back if anything after fails.
func Migrate(tx *bolt.Tx) ([]Migration, error) {
	v, err := StoredVersion(tx)
	if err != nil {
		return nil, err
	}
	if err := CheckVersion(v); err != nil {
		return nil, err
	}
	if err := CheckBuckets(tx, v); err != nil {
		return nil, err
	}
	var ran []Migration
	for _, m := range Migrations {
		if m.From != v {
			continue
		}
		if err := m.Run(tx); err != nil {
			return ran, fmt.Errorf("migration %d→%d (%s): %w", m.From, m.To, m.Name, err)
		}
		if err := Meta(tx).Put(MetaSchema, []byte(strconv.Itoa(m.To))); err != nil {
			return ran, err
		}
		ran = append(ran, m)
		v = m.To
	}
	if v != Version {
		return ran, fmt.Errorf("no migration from schema version %d: %w", v, ErrBadSchema)
	}
	return ran, nil
}

// ContainerKeyPrefix is how the object key of a container begins; it equals
// statemachine.ObjectKey(statemachine.ObjectContainer, "") (a test of the
// journal holds the two together; this package imports nothing of Cairn).
const ContainerKeyPrefix = "container/"

// pendingByObjectKey (1→2): schema 1 keyed pending/ by the bare container
// id; schema 2 keys it by object key, so intents of other kinds of object
// can share the bucket. Every schema 1 entry is a container's. It also adds
// the layer store's buckets if the file lacks them (schema 1 created them
// lazily).
func pendingByObjectKey(tx *bolt.Tx) error {
	pb := Pending(tx)
	type entry struct{ key, value []byte }
	var entries []entry
	err := pb.ForEach(func(k, v []byte) error {
		if bytes.IndexByte(k, '/') >= 0 {
			return fmt.Errorf("pending key %.80q is not a container id: %w", k, ErrBadSchema)
		}
		entries = append(entries, entry{bytes.Clone(k), bytes.Clone(v)})
		return nil
	})
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := pb.Delete(e.key); err != nil {
			return err
		}
		if err := pb.Put(append([]byte(ContainerKeyPrefix), e.key...), e.value); err != nil {
			return err
		}
	}
	for _, name := range StoreBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	return nil
}

// addExecs (4→5) adds execs/, the views of exec sessions (journal records
// of object kind "exec"; a schema 3 journal holds none).
func addExecs(tx *bolt.Tx) error {
	if _, err := tx.CreateBucket(BucketExecs); err != nil {
		return fmt.Errorf("create bucket %s: %w", BucketExecs, err)
	}
	return nil
}

// imageViews (2→3): images become journaled objects; their views get a
// bucket. Nothing else changes: no image has a record yet, so none has a
// view, and the layer store reads its schema 2 image records (names as
// given, no id or config) as they are.
func imageViews(tx *bolt.Tx) error {
	if _, err := tx.CreateBucket(BucketImageViews); err != nil {
		return fmt.Errorf("create bucket %s: %w", BucketImageViews, err)
	}
	return nil
}

// netViews (3→4): network attachments and user networks become journaled
// objects; their views get a bucket each. No record of them exists yet.
func netViews(tx *bolt.Tx) error {
	for _, name := range [][]byte{BucketNetAttach, BucketNetworks} {
		if _, err := tx.CreateBucket(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	return nil
}

// volumeViews (5→6): volumes become journaled objects; their views get a
// bucket. Nothing else changes: no volume existed before.
func volumeViews(tx *bolt.Tx) error {
	if _, err := tx.CreateBucket(BucketVolumes); err != nil {
		return fmt.Errorf("create bucket %s: %w", BucketVolumes, err)
	}
	return nil
}
