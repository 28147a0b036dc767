// Package journal owns Cairn's durable source of truth: an append-only
// journal of lifecycle records in a bbolt file, and the materialised view of
// every container, which is always equal to the fold of the journal.
//
// # Record format
//
// Each record is a JSON-encoded statemachine.Record stored in the "journal"
// bucket under its sequence number as an 8-byte big-endian key, so a cursor
// walks the journal in order. Sequence numbers start at 1, never repeat and
// have no gaps. An INTENT is written before any side effect of a transition;
// the DONE, FAILED or RECONCILED record that finishes it names the intent's
// sequence number.
//
// A record names its object: a kind (container, image, volume, netattach,
// exec, sandbox) and an id; a record without a kind, as schema 1 wrote them,
// is a container's. Records are folded with the fold of their kind (see
// folds in fold.go): containers (Apply, into containers/ and names/) and,
// since schema 3, images (ApplyImage, into imageviews/, keyed by image id)
// and, since schema 4, volumes (ApplyVolume, into volumes/, keyed by name);
// a record of a kind without a fold is refused with ErrInconsistent.
// Pending intents are keyed by object key ("container/<id>",
// "image/sha256:<hex>", "volume/<name>"). Two rules span kinds and are
// checked in the committer's fold, so the check and the record are one
// step: a volume's remove intent is refused (ErrFailedPrecondition) while a
// container's view names the volume in its mounts, and a container's create
// intent that names a volume not present, or being removed, is refused.
//
// # Durability
//
// Append and Commit return only after the bbolt transaction holding their
// records (and, for Commit, the other stores' writes of the same call: a
// call commits whole or not at all) has been committed and fsynced (bbolt with NoSync=false; NoSync is never set).
// Appends that arrive while a commit is in flight are committed together in
// the next transaction (group commit): one fsync serves many records, and a
// lone caller never waits for company.
//
// # Opening
//
// Open accepts a file only after the verification the offline check runs
// (CheckFile): bbolt's meta pages against the file size, bbolt's page check,
// the schema version and buckets (internal/schema), the replay of the whole
// journal against the stored view and names, and the other stores' checks
// (Options.Checks). It runs through a read-only handle, before anything can
// write; a file of an older schema is migrated and verified again in one
// write transaction that is rolled back if anything fails. A refused file is
// never written.
//
// # View
//
// The same transaction that appends a record folds it into the "containers"
// and "names" buckets (see Apply), or "imageviews" (see ApplyImage), so the
// stored view can never disagree with the journal; Verify replays the
// journal from scratch to prove it. The view is also cached in memory for
// reads.
//
// The container fold also keeps what restart policies need (applyRestart
// in fold.go): the policy, the user-stopped mark, the restart count and
// the last delay, each from the records that say so.
//
// The journal never touches the machine: it records, folds and reports.
package journal
