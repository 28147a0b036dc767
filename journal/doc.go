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
// # Durability
//
// Append returns only after the bbolt transaction holding the record has
// been committed and fsynced (bbolt with NoSync=false; NoSync is never set).
// Appends that arrive while a commit is in flight are committed together in
// the next transaction (group commit): one fsync serves many records, and a
// lone caller never waits for company.
//
// # View
//
// The same transaction that appends a record folds it into the "containers"
// and "names" buckets (see Apply), so the stored view can never disagree with
// the journal; Verify replays the journal from scratch to prove it. The view is
// also cached in memory for reads.
//
// The journal never touches the machine: it records, folds and reports.
package journal
