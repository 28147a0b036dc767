package journal

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cairn-run/cairn/internal/errdefs"
	"github.com/cairn-run/cairn/internal/schema"
	sm "github.com/cairn-run/cairn/statemachine"
)

// SalvageReport says what Salvage kept and what it could not.
type SalvageReport struct {
	// Kept is the number of records written to the new file.
	Kept int
	// Dropped are the records that were read but did not fold.
	Dropped []DroppedRecord
	// Unreadable describes what could not be read at all: damaged pages,
	// records that do not decode, keys that are no sequence number.
	Unreadable []string
	// Containers and Images are the numbers of container and image views
	// the kept records fold to.
	Containers int
	Images     int
	Volumes    int
	// StoreRecords counts the records copied per store bucket (images/, ...).
	StoreRecords map[string]int
	// StoreRepairs are what the stores' checks dropped or fixed to make the
	// copied records consistent.
	StoreRepairs []string
}

// DroppedRecord is a readable record that did not fold.
type DroppedRecord struct {
	Seq    uint64
	Reason string
}

// maxResync bounds how many sequence numbers Salvage tries, one by one,
// past a damaged part of the journal before it gives up on the rest.
const maxResync = 1 << 20

// Salvage writes a new journal file at dst from what is readable of the
// damaged one at src, which it opens read-only and never changes. The
// readable records are folded again from scratch, in order; a record that
// does not fold (its intent was lost, say) is dropped and reported. The
// views, names and pending intents of the new file are that fold, so it
// passes CheckFile; its clean-shutdown marker is absent, so the next cairnd
// treats its start as after a crash and reconciles everything. The other
// stores' buckets are copied where readable, then checked with opts.Checks
// and repaired with each check's Repair when the check fails. dst must not
// exist. On success the new file has passed CheckFile.
func Salvage(src, dst string, opts Options) (rep SalvageReport, err error) {
	if opts.LockTimeout == 0 {
		opts.LockTimeout = time.Second
	}
	rep.StoreRecords = map[string]int{}
	out, err := os.OpenFile(dst, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return rep, fmt.Errorf("salvage into %s: %w", dst, errdefs.ErrAlreadyExists)
		}
		return rep, fmt.Errorf("salvage into %s: %w", dst, err)
	}
	_ = out.Close()
	defer func() {
		if err != nil {
			_ = os.Remove(dst)
		}
	}()
	found, err := readDamaged(src, opts.LockTimeout, &rep)
	if err != nil {
		return rep, err
	}
	db, err := bolt.Open(dst, 0o600, &bolt.Options{Timeout: opts.LockTimeout})
	if err != nil {
		return rep, fmt.Errorf("salvage into %s: %w", dst, err)
	}
	err = db.Update(func(tx *bolt.Tx) error { return found.write(tx, opts.Checks, &rep) })
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return rep, fmt.Errorf("salvage into %s: %w", dst, err)
	}
	if _, err := CheckFile(dst, opts.LockTimeout, opts.Checks...); err != nil {
		return rep, fmt.Errorf("salvaged file does not pass the check: %w", err)
	}
	return rep, nil
}

// salvaged is what could be read of a damaged file.
type salvaged struct {
	records []sm.Record // in seq order
	lastSeq uint64      // the highest seq ever used, read or seen
	bootID  []byte
	stores  map[string][][2][]byte // bucket name -> key/value pairs, copied
}

// protect runs fn, turning a panic (or a fault on the mapped file) into an
// error.
func protect(fn func()) (err error) {
	defer func(old bool) {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			err = fmt.Errorf("damaged page: %v", r)
		}
	}(debug.SetPanicOnFault(true))
	fn()
	return nil
}

// readDamaged reads every record, the boot id and the store buckets that
// can be read from src, through a read-only handle.
func readDamaged(src string, lockTimeout time.Duration, rep *SalvageReport) (*salvaged, error) {
	var db *bolt.DB
	var err error
	if perr := protect(func() {
		db, err = bolt.Open(src, 0o600, &bolt.Options{ReadOnly: true, Timeout: lockTimeout})
	}); perr != nil {
		return nil, fmt.Errorf("journal %s: %w: %w", src, ErrCorrupt, perr)
	}
	if err != nil {
		return nil, openError(src, err)
	}
	defer func() { _ = db.Close() }()
	found := &salvaged{stores: map[string][][2][]byte{}}
	err = db.View(func(tx *bolt.Tx) error {
		found.readRecords(tx, rep)
		_ = protect(func() {
			if meta := tx.Bucket(schema.BucketMeta); meta != nil {
				found.bootID = bytes.Clone(meta.Get(schema.MetaBootID))
			}
		})
		for _, name := range schema.StoreBuckets {
			found.stores[string(name)] = copyBucket(tx, name, rep)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("journal %s: %w", src, err)
	}
	return found, nil
}

// readRecords walks the journal bucket with a cursor; when a damaged page
// stops the cursor, it seeks past the last good record one sequence number
// at a time, with a fresh cursor each time.
func (s *salvaged) readRecords(tx *bolt.Tx, rep *SalvageReport) {
	var jb *bolt.Bucket
	if err := protect(func() { jb = tx.Bucket(schema.BucketJournal) }); err != nil || jb == nil {
		rep.Unreadable = append(rep.Unreadable, fmt.Sprintf("bucket journal: unreadable (%v)", err))
		return
	}
	_ = protect(func() { s.lastSeq = jb.Sequence() })
	if s.lastSeq > 1<<40 {
		s.lastSeq = 0 // a damaged header; the records will say
	}
	seen := map[uint64]bool{}
	var next uint64 // the seq to seek to
	resyncing := false
	for tries := 0; tries < maxResync; tries++ {
		var k, v []byte
		progress := false
		c := jb.Cursor()
		err := protect(func() { k, v = c.Seek(seqKey(next)) })
		for err == nil && k != nil {
			if len(k) != 8 {
				err = fmt.Errorf("key %.40x is no sequence number", k)
				break
			}
			seq := keySeq(k)
			if seq < next || seen[seq] {
				err = fmt.Errorf("key %d out of order", seq)
				break
			}
			seen[seq] = true
			s.lastSeq = max(s.lastSeq, seq)
			next = seq + 1
			progress = true
			resyncing = false
			if rec, derr := decodeRecord(k, v); derr != nil {
				rep.Unreadable = append(rep.Unreadable, fmt.Sprintf("record %d: %v", seq, derr))
			} else {
				s.records = append(s.records, rec)
			}
			err = protect(func() { k, v = c.Next() })
		}
		if err == nil {
			break // the end of the journal
		}
		if !resyncing {
			rep.Unreadable = append(rep.Unreadable, fmt.Sprintf("journal from record %d on: %v", next, err))
			resyncing = true
		}
		if !progress {
			next++ // skip the sequence number that could not be read
		}
		if s.lastSeq > 0 && next > s.lastSeq {
			break // past every sequence number the bucket ever gave out
		}
	}
	slices.SortFunc(s.records, func(a, b sm.Record) int { return cmp.Compare(a.Seq, b.Seq) })
}

// copyBucket copies the readable key/value pairs of a store bucket; a
// damaged page ends the copy of that bucket.
func copyBucket(tx *bolt.Tx, name []byte, rep *SalvageReport) [][2][]byte {
	var pairs [][2][]byte
	err := protect(func() {
		b := tx.Bucket(name)
		if b == nil {
			rep.Unreadable = append(rep.Unreadable, fmt.Sprintf("bucket %s: missing", name))
			return
		}
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if v == nil {
				continue // a nested bucket: no store keeps one
			}
			pairs = append(pairs, [2][]byte{bytes.Clone(k), bytes.Clone(v)})
		}
	})
	if err != nil {
		rep.Unreadable = append(rep.Unreadable, fmt.Sprintf("bucket %s after %d records: %v", name, len(pairs), err))
	}
	return pairs
}

// write folds the salvaged records from scratch into a new file of the
// current schema and copies the store buckets, checking (and if need be
// repairing) them.
func (s *salvaged) write(tx *bolt.Tx, checks []schema.Check, rep *SalvageReport) error {
	if err := schema.Create(tx); err != nil {
		return err
	}
	if s.bootID != nil {
		if err := metaBucket(tx).Put(schema.MetaBootID, s.bootID); err != nil {
			return err
		}
	}
	view := newBatchView(emptyJournal())
	jb := journalBucket(tx)
	for _, rec := range s.records {
		if err := view.fold(rec); err != nil {
			rep.Dropped = append(rep.Dropped, DroppedRecord{Seq: rec.Seq, Reason: err.Error()})
			continue
		}
		data, err := encodeRecord(rec)
		if err != nil {
			return err
		}
		if err := jb.Put(seqKey(rec.Seq), data); err != nil {
			return err
		}
		rep.Kept++
	}
	// Sequence numbers are never given out twice, even those of records
	// that were lost.
	if err := jb.SetSequence(s.lastSeq); err != nil {
		return err
	}
	if err := view.write(tx); err != nil {
		return err
	}
	for _, c := range view.containers {
		if c != nil {
			rep.Containers++
		}
	}
	for _, v := range view.images {
		if v != nil {
			rep.Images++
		}
	}
	for _, v := range view.volumes {
		if v != nil {
			rep.Volumes++
		}
	}
	for _, name := range schema.StoreBuckets {
		b := tx.Bucket(name)
		for _, kv := range s.stores[string(name)] {
			if err := b.Put(kv[0], kv[1]); err != nil {
				return err
			}
		}
		rep.StoreRecords[string(name)] = len(s.stores[string(name)])
	}
	for _, c := range checks {
		if c.Run(tx) == nil {
			continue
		}
		if c.Repair == nil {
			return fmt.Errorf("%s: %w", c.Name, c.Run(tx))
		}
		repairs, err := c.Repair(tx)
		for _, r := range repairs {
			rep.StoreRepairs = append(rep.StoreRepairs, c.Name+": "+r)
		}
		if err != nil {
			return fmt.Errorf("%s: repair: %w", c.Name, err)
		}
	}
	return verify(tx, checks, nil)
}
