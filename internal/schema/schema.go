// Package schema owns the layout of cairnd's one bbolt file (<root>/cairn.db):
// every bucket name and its getter, the integer schema version stored in
// meta/, the ordered list of migrations between versions, the bucket set of a
// new file, and the checks that read the file's bbolt meta pages before
// bbolt maps it. It imports nothing of Cairn, so the journal and every store
// that keeps records in the file (the layer store today; images, volumes,
// network attachments, exec sessions and pod sandboxes later) share one
// description of the file without importing each other.
//
// # The whole tree (schema version 6)
//
//	journal/     <seq uint64 BE>      -> Record (JSON): INTENT | DONE | FAILED | RECONCILED
//	                                     of an object (kind + id; schema 1 records have no kind: containers)
//	containers/  <container id>       -> Container view (JSON): state, process, exit, mount id, image id,
//	                                     config, timestamps
//	imageviews/  <image id>           -> Image view (JSON): state, timestamps; the fold of the image's
//	                                     records (object kind "image", id "sha256:<hex>")   (schema 3)
//	execs/       <exec id>            -> exec session view (JSON): container, command, state, process,
//	                                     exit (object kind "exec")                          (schema 5)
//	pending/     <object key>         -> the object's unfinished intent (JSON), if any;
//	                                     object key = "<kind>/<id>", e.g. "container/<64 hex>",
//	                                     "image/sha256:<64 hex>", "exec/<64 hex>", "volume/<name>" (schema 1: keyed by the bare container id)
//	netattach/   <container id>       -> network attachment view (JSON): network, netns path, requested
//	                                     ports, CNI result (IP, MAC, gateway, ports)  (kind "netattach", schema 4)
//	networks/    <network name>       -> user network view (JSON): subnet, gateway, bridge
//	                                                                             (kind "network", schema 4)
//	volumes/     <volume name>        -> Volume view (JSON): state, labels, anonymous, timestamps; the
//	                                     fold of the volume's records (object kind "volume"); its data
//	                                     lives in <root>/volumes/<name>/_data                 (schema 6)
//	names/       <container name>     -> <container id>
//	meta/        "schema"             -> schema version (decimal)
//	             "clean-shutdown"     -> "1" while the daemon is stopped cleanly, absent while it runs
//	             "boot-id"            -> kernel boot id of the last start
//	             "compacted-through"  -> highest seq compaction deleted (8-byte BE), absent before the first
//	             "compacted-outcomes" -> DONE/FAILED records compaction deleted, {"<event> <kind>": n} (JSON)
//	images/      <image key>          -> image record (JSON): id, diffIDs, chainID, size, created, config;
//	                                     key = a canonical name, or the id of an image without one
//	                                     (schema 2: names as given, no id or config)          (package layer)
//	layers/      <chainID>            -> layer record (JSON): diffID, parent, cacheID, size,
//	                                     refcount = images/ keys + child layers using it      (package layer)
//	mounts/      <mount id>           -> mount record (JSON): image key, image id, chainID, created
//	                                                                                          (package layer)
//
// Room for the stores to come, each a top-level bucket of its own added by a
// migration (never by the store at run time), its records folded from
// journal records of its object kind and its views keyed by object id:
//
//	sandboxes/   <sandbox id>         -> pod sandbox view       (object kind "sandbox")
//
// Images are journaled objects since schema 3: their records fold into
// imageviews/, their pending intents use pending/ like every other kind, and
// the layer store's images/ holds what each image is. Volumes are journaled
// objects since schema 4: a volume's view is all there is of it in the file
// (its data is a directory under the daemon's root).
//
// # Versions and migrations
//
// Version is the layout this binary writes. A new file gets every bucket of
// Version at once (Create); buckets are never created later by Open or by a
// store. An older file is brought forward by Migrations, in order, inside the
// one write transaction that also verifies the result, so a failed migration
// leaves the file as it was. A file of a newer version is refused
// (ErrNewerSchema): this binary cannot know what it would break.
//
// # Writes of other stores
//
// A store that keeps records here does not write on its own: it hands an Op
// to the journal, which runs it in the group-commit transaction together
// with the journal records of the same call (see Op).
package schema

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"

	bolt "go.etcd.io/bbolt"
)

// Version is the schema version this binary writes and understands.
const Version = 6

// Bucket names.
var (
	BucketJournal    = []byte("journal")
	BucketContainers = []byte("containers")
	BucketImageViews = []byte("imageviews")
	BucketExecs      = []byte("execs")
	BucketVolumes    = []byte("volumes")
	BucketPending    = []byte("pending")
	BucketNames      = []byte("names")
	BucketMeta       = []byte("meta")
	BucketImages     = []byte("images")
	BucketLayers     = []byte("layers")
	BucketMounts     = []byte("mounts")
	BucketNetAttach  = []byte("netattach")
	BucketNetworks   = []byte("networks")
)

// Keys of meta/.
var (
	MetaSchema        = []byte("schema")
	MetaCleanShutdown = []byte("clean-shutdown")
	MetaBootID        = []byte("boot-id")
	// MetaCompactedThrough is the highest seq compaction has deleted: a
	// reader resuming at or below it may have missed records (absent: 0).
	MetaCompactedThrough = []byte("compacted-through")
	// MetaCompactedOutcomes counts the DONE and FAILED records compaction
	// deleted, by event and kind (JSON), so counts of transitions survive it.
	MetaCompactedOutcomes = []byte("compacted-outcomes")
)

// JournalBuckets are the journal's own buckets.
var JournalBuckets = [][]byte{BucketJournal, BucketContainers, BucketImageViews, BucketExecs, BucketVolumes, BucketPending, BucketNames, BucketMeta, BucketNetAttach, BucketNetworks}

// StoreBuckets are the buckets of the other stores in the file (the layer
// store's today). The journal copies them as they are when it salvages a
// file, and leaves their meaning to the stores' checks.
var StoreBuckets = [][]byte{BucketImages, BucketLayers, BucketMounts}

// Buckets returns every bucket of Version: the journal's, then the stores'.
func Buckets() [][]byte {
	return append(append([][]byte{}, JournalBuckets...), StoreBuckets...)
}

// Getters. They rely on Create or a migration having made the buckets, which
// Open verifies before anything reads them, so they never return nil on a
// file Open accepted.
func Journal(tx *bolt.Tx) *bolt.Bucket    { return tx.Bucket(BucketJournal) }
func Containers(tx *bolt.Tx) *bolt.Bucket { return tx.Bucket(BucketContainers) }
func ImageViews(tx *bolt.Tx) *bolt.Bucket { return tx.Bucket(BucketImageViews) }
func Execs(tx *bolt.Tx) *bolt.Bucket      { return tx.Bucket(BucketExecs) }
func Volumes(tx *bolt.Tx) *bolt.Bucket    { return tx.Bucket(BucketVolumes) }
func Pending(tx *bolt.Tx) *bolt.Bucket    { return tx.Bucket(BucketPending) }
func Names(tx *bolt.Tx) *bolt.Bucket      { return tx.Bucket(BucketNames) }
func Meta(tx *bolt.Tx) *bolt.Bucket       { return tx.Bucket(BucketMeta) }
func Images(tx *bolt.Tx) *bolt.Bucket     { return tx.Bucket(BucketImages) }
func Layers(tx *bolt.Tx) *bolt.Bucket     { return tx.Bucket(BucketLayers) }
func Mounts(tx *bolt.Tx) *bolt.Bucket     { return tx.Bucket(BucketMounts) }
func NetAttach(tx *bolt.Tx) *bolt.Bucket  { return tx.Bucket(BucketNetAttach) }
func Networks(tx *bolt.Tx) *bolt.Bucket   { return tx.Bucket(BucketNetworks) }

// ErrNewerSchema means the file was written by a newer cairnd.
var ErrNewerSchema = errors.New("schema version is newer than this cairnd understands")

// ErrBadSchema means the file's layout is not one of any known version: a
// missing bucket, an unreadable version.
var ErrBadSchema = errors.New("file layout is not a cairn schema")

// Create makes every bucket of Version in a new, empty file and stamps the
// version. It refuses a file that already has any bucket: a file is new only
// once.
func Create(tx *bolt.Tx) error {
	for _, name := range Buckets() {
		if _, err := tx.CreateBucket(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	return Meta(tx).Put(MetaSchema, []byte(strconv.Itoa(Version)))
}

// StoredVersion reads the schema version of the file.
func StoredVersion(tx *bolt.Tx) (int, error) {
	meta := Meta(tx)
	if meta == nil {
		return 0, fmt.Errorf("bucket meta is missing: %w", ErrBadSchema)
	}
	raw := meta.Get(MetaSchema)
	if raw == nil {
		return 0, fmt.Errorf("no schema version in meta: %w", ErrBadSchema)
	}
	v, err := strconv.Atoi(string(raw))
	if err != nil || v < 1 {
		return 0, fmt.Errorf("schema version %.20q: %w", raw, ErrBadSchema)
	}
	return v, nil
}

// CheckVersion refuses a version this binary cannot read or migrate.
func CheckVersion(v int) error {
	switch {
	case v > Version:
		return fmt.Errorf("schema version %d, this cairnd understands up to %d: %w", v, Version, ErrNewerSchema)
	case v < firstVersion:
		return fmt.Errorf("schema version %d: %w", v, ErrBadSchema)
	}
	return nil
}

// CheckBuckets verifies that every bucket of version v is present.
func CheckBuckets(tx *bolt.Tx, v int) error {
	var missing []error
	for _, name := range bucketsOf(v) {
		if tx.Bucket(name) == nil {
			missing = append(missing, fmt.Errorf("bucket %s is missing", name))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %w", ErrBadSchema, errors.Join(missing...))
	}
	return nil
}

// bucketsOf lists the buckets a file of version v must have. Schema 1 made
// the layer store's buckets lazily (layer.Open), so a schema 1 file that only
// a journal ever opened lacks them; migration 1→2 adds them. imageviews/
// came with schema 3 (migration 2→3), netattach/ and networks/ with schema 4 (3→4), execs/ with schema 5 (4→5),
// volumes/ with schema 6 (5→6).
func bucketsOf(v int) [][]byte {
	var out [][]byte
	for _, b := range Buckets() {
		switch {
		case v < 2 && slices.ContainsFunc(StoreBuckets, func(s []byte) bool { return bytes.Equal(s, b) }):
		case v < 3 && bytes.Equal(b, BucketImageViews):
		case v < 4 && (bytes.Equal(b, BucketNetAttach) || bytes.Equal(b, BucketNetworks)):
		case v < 5 && bytes.Equal(b, BucketExecs):
		case v < 6 && bytes.Equal(b, BucketVolumes):
		default:
			out = append(out, b)
		}
	}
	return out
}

// Check is one verification of the stored data, run in a read transaction
// (or in the write transaction of a migration, which it must not modify).
// Stores that keep records in the file provide theirs (e.g. the layer
// store's invariants); the journal runs them at Open and in the offline
// check.
type Check struct {
	Name string
	Run  func(tx *bolt.Tx) error
	// Repair, if set, makes the store's buckets pass Run again after a
	// salvage copied what was readable of them: it drops what cannot be
	// trusted and returns a description of each thing it dropped.
	Repair func(tx *bolt.Tx) ([]string, error)
}

// Op is a write of a store, run by the journal inside a group-commit
// transaction. It implements statemachine.Write (the marker method), so a
// caller can commit it with journal records in one transaction.
//
// The contract: an Op reads and validates everything it needs before its
// first write, and returns an error only before it wrote anything. A
// refused Op then refuses the records of its call and leaves the shared
// transaction untouched for the other callers in the batch. An Op touches
// nothing but the transaction (no files, no processes) and may be run more
// than once: the journal retries a batch when a rollback was needed.
type Op func(tx *bolt.Tx) error

// JournalWrite marks Op as a statemachine.Write.
func (Op) JournalWrite() {}
