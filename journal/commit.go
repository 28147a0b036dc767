package journal

import (
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cairn-run/cairn/internal/errdefs"
	sm "github.com/cairn-run/cairn/statemachine"
)

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("journal is closed")

// maxBatch bounds one group commit so a flood of appends cannot build one
// huge transaction.
const maxBatch = 2048

type appendRequest struct {
	rec  sm.Record
	data []byte // rec encoded without its seq, which only the committer knows
	done chan appendResult
}

type appendResult struct {
	rec sm.Record
	err error
}

// Append adds rec to the journal, folds it into the view, and returns once
// both are durable on disk. It assigns rec.Seq and, when zero, rec.Time. An
// appended record that cannot follow the current view is refused with
// ErrInconsistent and nothing is written.
func (j *Journal) Append(rec sm.Record) (sm.Record, error) {
	if rec.Time.IsZero() {
		rec.Time = time.Now().UTC()
	}
	// Encoded here, in the caller, so that concurrent appenders share the
	// work instead of queueing it on the single committer.
	data, err := encodeRecord(rec)
	if err != nil {
		return rec, err
	}
	req := &appendRequest{rec: rec, data: data, done: make(chan appendResult, 1)}
	select {
	case <-j.stop:
		return rec, ErrClosed
	case j.appends <- req:
	}
	// Once queued, the record will be committed or refused; waiting for the
	// outcome is what makes the caller's next step safe.
	res := <-req.done
	return res.rec, res.err
}

// commitLoop is the single writer. It takes whatever is queued, commits it
// in one transaction (one fsync), answers every caller, and repeats: appends
// that arrive during a commit ride together in the next one, and a lone
// append is committed at once.
func (j *Journal) commitLoop() {
	defer close(j.stopped)
	for {
		var first *appendRequest
		select {
		case first = <-j.appends:
		case <-j.stop:
			j.drainAfterStop()
			return
		}
		batch := []*appendRequest{first}
	collect:
		for len(batch) < maxBatch {
			select {
			case req := <-j.appends:
				batch = append(batch, req)
			default:
				break collect
			}
		}
		j.commit(batch)
	}
}

// drainAfterStop commits appends that were queued before Close.
func (j *Journal) drainAfterStop() {
	for {
		select {
		case req := <-j.appends:
			j.commit([]*appendRequest{req})
		default:
			return
		}
	}
}

// batchView layers the changes of one batch over the committed view, so
// nothing reaches memory unless the transaction commits.
type batchView struct {
	j          *Journal
	containers map[string]*sm.Container // nil value: deleted in this batch
	names      map[string]string        // "" value: released in this batch
	// intentOnly marks containers that only got intents (other than create)
	// in this batch: their stored view needs only its pending part.
	intentOnly map[string]bool
}

func (b *batchView) container(id string) *sm.Container {
	if c, ok := b.containers[id]; ok {
		return c
	}
	return b.j.containers[id]
}

func (b *batchView) nameOwner(name string) string {
	if id, ok := b.names[name]; ok {
		return id
	}
	return b.j.names[name]
}

func (j *Journal) commit(batch []*appendRequest) {
	start := time.Now()
	results := make([]appendResult, len(batch))
	var view *batchView
	var lastSeq uint64
	// The commit loop is the only goroutine that changes the maps, so it
	// reads them without the lock.
	err := j.db.Update(func(tx *bolt.Tx) error {
		view = &batchView{j: j, containers: map[string]*sm.Container{}, names: map[string]string{}, intentOnly: map[string]bool{}}
		jb := journalBucket(tx)
		for i, req := range batch {
			rec := req.rec
			rec.Seq = jb.Sequence() + 1
			if err := view.fold(rec); err != nil {
				results[i] = appendResult{rec: req.rec, err: err}
				continue
			}
			if err := jb.SetSequence(rec.Seq); err != nil {
				return err
			}
			if err := jb.Put(seqKey(rec.Seq), req.data); err != nil {
				return err
			}
			results[i] = appendResult{rec: rec}
			lastSeq = rec.Seq
		}
		if err := view.write(tx); err != nil {
			return err
		}
		if j.crash != nil {
			j.crash("journal.mid-commit")
		}
		return nil
	})
	if err != nil {
		for i := range results {
			if results[i].err == nil {
				results[i] = appendResult{rec: batch[i].rec, err: fmt.Errorf("journal commit: %w", err)}
			}
		}
	} else {
		j.publish(view, lastSeq)
	}
	if j.obs != nil {
		j.obs.Committed(len(batch), time.Since(start))
	}
	for i, req := range batch {
		req.done <- results[i]
	}
}

// fold applies rec to the batch view, checking name ownership as it goes.
func (b *batchView) fold(rec sm.Record) error {
	prev := b.container(rec.Container)
	next, err := Apply(prev, rec)
	if err != nil {
		return err
	}
	if prev == nil && next != nil && next.Name != "" {
		if owner := b.nameOwner(next.Name); owner != "" && owner != next.ID {
			return fmt.Errorf("name %q is taken by %s: %w", next.Name, owner, errdefs.ErrAlreadyExists)
		}
		b.names[next.Name] = next.ID
	}
	if prev != nil && next == nil && prev.Name != "" && b.nameOwner(prev.Name) == prev.ID {
		b.names[prev.Name] = ""
	}
	if prev != nil || next != nil {
		_, seen := b.containers[rec.Container]
		intent := rec.Kind == sm.KindIntent && rec.Event != sm.EventCreate
		b.intentOnly[rec.Container] = intent && (!seen || b.intentOnly[rec.Container])
		b.containers[rec.Container] = next
	}
	return nil
}

// write stores the batch's view changes in the same transaction as its
// records.
func (b *batchView) write(tx *bolt.Tx) error {
	for id, c := range b.containers {
		if err := writeView(tx, id, c, b.intentOnly[id]); err != nil {
			return err
		}
	}
	nb := namesBucket(tx)
	for name, id := range b.names {
		var err error
		if id == "" {
			err = nb.Delete([]byte(name))
		} else {
			err = nb.Put([]byte(name), []byte(id))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// publish makes a committed batch visible to readers.
func (j *Journal) publish(b *batchView, lastSeq uint64) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for id, c := range b.containers {
		if c == nil {
			delete(j.containers, id)
		} else {
			j.containers[id] = c
		}
	}
	for name, id := range b.names {
		if id == "" {
			delete(j.names, name)
		} else {
			j.names[name] = id
		}
	}
	if lastSeq > j.lastSeq {
		j.lastSeq = lastSeq
	}
}
