package journal

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cairn-run/cairn/internal/errdefs"
	"github.com/cairn-run/cairn/internal/schema"
	sm "github.com/cairn-run/cairn/statemachine"
)

// ErrClosed is returned by Append and Commit after Close. It is an
// Unavailable error: the daemon is shutting down.
var ErrClosed = fmt.Errorf("journal is closed: %w", errdefs.ErrUnavailable)

// maxBatch bounds one group commit so a flood of appends cannot build one
// huge transaction: a batch takes calls until it holds this many records.
const maxBatch = 2048

// commitRequest is one call of Commit: its records, committed together with
// its writes or not at all.
type commitRequest struct {
	recs []sm.Record
	data [][]byte // recs encoded without their seqs, which only the committer knows
	ops  []schema.Op
	done chan commitResult
}

type commitResult struct {
	recs []sm.Record
	err  error
}

// Append adds rec to the journal, folds it into the view, and returns once
// both are durable on disk. It assigns rec.Seq and, when zero, rec.Time. An
// appended record that cannot follow the current view is refused with
// ErrInconsistent and nothing is written. It is Commit of one record.
func (j *Journal) Append(rec sm.Record) (sm.Record, error) {
	recs, err := j.Commit([]sm.Record{rec})
	if err != nil {
		return rec.Normalized(), err
	}
	return recs[0], nil
}

// Commit appends recs, in order, and applies writes (schema.Op values) in
// one transaction, and returns once it is durable: either every record and
// every write of the call committed, or none did. It assigns each record's
// Seq (consecutive) and, when zero, its Time. A record that cannot follow
// the view (ErrInconsistent, ErrAlreadyExists for a name) or a refused write
// refuses the whole call, and the error says which. Concurrent calls share a
// transaction and its fsync (group commit) without sharing their fate.
func (j *Journal) Commit(recs []sm.Record, writes ...sm.Write) ([]sm.Record, error) {
	req, err := newCommitRequest(recs, writes)
	if err != nil || req == nil {
		return nil, err
	}
	// Close takes the write lock before it stops the committer, so a call
	// is either queued before that (and the committer, which drains the
	// queue before it stops, answers it) or sees closed.
	j.closeMu.RLock()
	if j.closed {
		j.closeMu.RUnlock()
		return nil, ErrClosed
	}
	j.appends <- req
	j.closeMu.RUnlock()
	// Once queued, the call will be committed or refused; waiting for the
	// outcome is what makes the caller's next step safe.
	res := <-req.done
	return res.recs, res.err
}

// newCommitRequest normalizes and encodes the records of a call, here in
// the caller, so that concurrent callers share that work instead of queueing
// it on the single committer. It returns nil for an empty call.
func newCommitRequest(recs []sm.Record, writes []sm.Write) (*commitRequest, error) {
	req := &commitRequest{recs: make([]sm.Record, len(recs)), data: make([][]byte, len(recs)), done: make(chan commitResult, 1)}
	now := time.Now().UTC()
	for i, rec := range recs {
		rec = rec.Normalized()
		if rec.Time.IsZero() {
			rec.Time = now
		}
		data, err := encodeRecord(rec)
		if err != nil {
			return nil, err
		}
		req.recs[i], req.data[i] = rec, data
	}
	for _, w := range writes {
		op, ok := w.(schema.Op)
		if !ok || op == nil {
			return nil, fmt.Errorf("journal commit: write %T is not a schema.Op: %w", w, errdefs.ErrInvalidArgument)
		}
		req.ops = append(req.ops, op)
	}
	if len(req.recs) == 0 && len(req.ops) == 0 {
		return nil, nil
	}
	return req, nil
}

// commitLoop is the single writer. It takes whatever is queued, commits it
// in one transaction (one fsync), answers every caller, and repeats: calls
// that arrive during a commit ride together in the next one, and a lone
// call is committed at once.
func (j *Journal) commitLoop() {
	defer close(j.stopped)
	for {
		var first *commitRequest
		select {
		case first = <-j.appends:
		case <-j.stop:
			j.drainAfterStop()
			return
		}
		batch := []*commitRequest{first}
		records := len(first.recs)
	collect:
		for records < maxBatch {
			select {
			case req := <-j.appends:
				batch = append(batch, req)
				records += len(req.recs)
			default:
				break collect
			}
		}
		j.commit(batch)
	}
}

// drainAfterStop commits calls that were queued before Close.
func (j *Journal) drainAfterStop() {
	for {
		select {
		case req := <-j.appends:
			j.commit([]*commitRequest{req})
		default:
			return
		}
	}
}

// errRetry ends a commit transaction that must be rolled back and tried
// again without call index: one of its writes failed after an earlier write
// of the same call had changed the transaction.
type errRetry struct {
	index int
	err   error
}

func (e *errRetry) Error() string { return e.err.Error() }

func (j *Journal) commit(batch []*commitRequest) {
	start := time.Now()
	results := make([]commitResult, len(batch))
	refused := make([]error, len(batch)) // calls taken out of the batch by a retry
	var view *batchView
	var lastSeq uint64
	var err error
	for attempt := 0; attempt <= len(batch); attempt++ {
		view, lastSeq, err = j.commitOnce(batch, refused, results)
		var retry *errRetry
		if !errors.As(err, &retry) {
			break
		}
		refused[retry.index] = retry.err
	}
	if err != nil {
		for i := range results {
			if results[i].err == nil {
				results[i] = commitResult{err: fmt.Errorf("journal commit: %w", err)}
			}
		}
	} else {
		j.publish(view, lastSeq)
	}
	if j.obs != nil {
		records := 0
		for _, req := range batch {
			records += len(req.recs)
		}
		j.obs.Committed(records, time.Since(start))
	}
	for i, req := range batch {
		req.done <- results[i]
	}
}

// commitOnce runs one write transaction over the batch, skipping the calls
// in refused. Each call's records are folded into a view of their own over
// the batch's, so a refused call leaves no trace; its writes run after its
// records folded. The commit loop is the only goroutine that changes the
// maps, so it reads them without the lock.
func (j *Journal) commitOnce(batch []*commitRequest, refused []error, results []commitResult) (*batchView, uint64, error) {
	var view *batchView
	var lastSeq uint64
	err := j.db.Update(func(tx *bolt.Tx) error {
		view = newBatchView(j)
		jb := journalBucket(tx)
		for i, req := range batch {
			if refused[i] != nil {
				results[i] = commitResult{err: refused[i]}
				continue
			}
			call := view.child()
			recs := make([]sm.Record, len(req.recs))
			seq := jb.Sequence()
			var err error
			for k, rec := range req.recs {
				seq++
				rec.Seq = seq
				if err = call.fold(rec); err != nil {
					break
				}
				recs[k] = rec
			}
			for k := 0; err == nil && k < len(req.ops); k++ {
				if err = req.ops[k](tx); err != nil && k > 0 {
					// Earlier writes of this call changed the transaction.
					return &errRetry{index: i, err: err}
				}
			}
			if err != nil {
				// Nothing of this call reached the transaction.
				results[i] = commitResult{err: err}
				continue
			}
			for k := range recs {
				if err := jb.Put(seqKey(recs[k].Seq), req.data[k]); err != nil {
					return err
				}
			}
			if len(recs) > 0 {
				if err := jb.SetSequence(seq); err != nil {
					return err
				}
				lastSeq = seq
			}
			view.merge(call)
			results[i] = commitResult{recs: recs}
		}
		if err := view.write(tx); err != nil {
			return err
		}
		if j.crash != nil {
			j.crash(CrashMidCommit)
		}
		return nil
	})
	return view, lastSeq, err
}

// batchView layers the changes of one batch over the committed view, so
// nothing reaches memory unless the transaction commits.
type batchView struct {
	j *Journal
	// parent, if set, is the batch view this one (one call's) layers over.
	parent     *batchView
	containers map[string]*sm.Container // nil value: deleted in this batch
	execs      map[string]*sm.Exec      // nil value: deleted in this batch
	names      map[string]string        // "" value: released in this batch
	// intentOnly marks containers that only got intents (other than create)
	// in this batch: their stored view needs only its pending part.
	intentOnly map[string]bool
	images     map[string]*sm.ImageView // nil value: deleted in this batch
	netAttachs map[string]*sm.NetAttachView
	networks   map[string]*sm.NetworkView
	volumes    map[string]*sm.VolumeView // nil value: removed in this batch
}

func newBatchView(j *Journal) *batchView {
	return &batchView{j: j, containers: map[string]*sm.Container{}, execs: map[string]*sm.Exec{}, names: map[string]string{}, intentOnly: map[string]bool{}, images: map[string]*sm.ImageView{},
		netAttachs: map[string]*sm.NetAttachView{}, networks: map[string]*sm.NetworkView{}, volumes: map[string]*sm.VolumeView{}}
}

// child is a view of one call's records over b: merged into b if the call
// commits, dropped if it is refused.
func (b *batchView) child() *batchView {
	c := newBatchView(b.j)
	c.parent = b
	return c
}

// merge adds the changes of child c to b.
func (b *batchView) merge(c *batchView) {
	for id, v := range c.containers {
		_, seen := b.containers[id]
		b.intentOnly[id] = c.intentOnly[id] && (!seen || b.intentOnly[id])
		b.containers[id] = v
	}
	for id, x := range c.execs {
		b.execs[id] = x
	}
	for name, id := range c.names {
		b.names[name] = id
	}
	for id, v := range c.images {
		b.images[id] = v
	}
	for id, v := range c.netAttachs {
		b.netAttachs[id] = v
	}
	for id, v := range c.networks {
		b.networks[id] = v
	}
	for name, v := range c.volumes {
		b.volumes[name] = v
	}
}

func (b *batchView) volume(name string) *sm.VolumeView {
	if v, ok := b.volumes[name]; ok {
		return v
	}
	if b.parent != nil {
		return b.parent.volume(name)
	}
	return b.j.volumes[name]
}

// foldVolume applies a volume's record to the batch view.
func (b *batchView) foldVolume(rec sm.Record) error {
	prev := b.volume(rec.ObjectID)
	next, err := ApplyVolume(prev, rec)
	if err != nil {
		return err
	}
	if rec.Kind == sm.KindIntent && rec.Event == sm.EventVolumeRemove {
		// The check and the record are one step: no create that mounts
		// the volume can slip in between.
		if users := b.volumeUsers(rec.ObjectID); len(users) > 0 {
			return fmt.Errorf("volume %s is in use by %s: %w", errdefs.Quote(rec.ObjectID), describeUsers(users), errdefs.ErrFailedPrecondition)
		}
	}
	if prev != nil || next != nil {
		b.volumes[rec.ObjectID] = next
	}
	return nil
}

func (b *batchView) image(id string) *sm.ImageView {
	if v, ok := b.images[id]; ok {
		return v
	}
	if b.parent != nil {
		return b.parent.image(id)
	}
	return b.j.images[id]
}

// foldImage applies an image's record to the batch view.
func (b *batchView) foldImage(rec sm.Record) error {
	prev := b.image(rec.ObjectID)
	next, err := ApplyImage(prev, rec)
	if err != nil {
		return err
	}
	if prev != nil || next != nil {
		b.images[rec.ObjectID] = next
	}
	return nil
}

func (b *batchView) container(id string) *sm.Container {
	if c, ok := b.containers[id]; ok {
		return c
	}
	if b.parent != nil {
		return b.parent.container(id)
	}
	return b.j.containers[id]
}

func (b *batchView) nameOwner(name string) string {
	if id, ok := b.names[name]; ok {
		return id
	}
	if b.parent != nil {
		return b.parent.nameOwner(name)
	}
	return b.j.names[name]
}

// fold applies rec to the batch view with the fold of its kind of object.
// A kind without a fold is refused.
func (b *batchView) fold(rec sm.Record) error {
	rec = rec.Normalized()
	f, ok := folds[rec.Object]
	if !ok {
		if err := validateObject(rec, rec.Object); err != nil {
			return fmt.Errorf("record %d (%s %s): %w", rec.Seq, rec.Kind, rec.Event, err)
		}
		return fmt.Errorf("record %d (%s %s of %s): no fold for records of a %s: %w", rec.Seq, rec.Kind, rec.Event, rec.Key(), rec.Object, ErrInconsistent)
	}
	return f(b, rec)
}

// foldContainer applies a container's record to the batch view, checking
// name ownership as it goes.
func (b *batchView) foldContainer(rec sm.Record) error {
	prev := b.container(rec.Container)
	next, err := Apply(prev, rec)
	if err != nil {
		return err
	}
	if rec.Kind == sm.KindIntent && rec.Event == sm.EventCreate && next != nil {
		for _, name := range sm.VolumeNames(next.Mounts) {
			v := b.volume(name)
			switch {
			case v == nil || v.State != sm.StatePresent:
				return fmt.Errorf("no such volume: %s: %w", errdefs.Quote(name), errdefs.ErrNotFound)
			case v.Pending != nil && v.Pending.Event == sm.EventVolumeRemove:
				return fmt.Errorf("volume %s is being removed: %w", errdefs.Quote(name), errdefs.ErrFailedPrecondition)
			}
		}
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
	if prev != nil && next == nil {
		b.dropExecsOf(prev.ID) // a session lives no longer than its container
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
	for id, x := range b.execs {
		if err := writeExecView(tx, id, x); err != nil {
			return err
		}
	}
	for id, v := range b.images {
		if err := writeImageView(tx, id, v); err != nil {
			return err
		}
	}
	if err := b.writeNetViews(tx); err != nil {
		return err
	}
	for name, v := range b.volumes {
		if err := writeVolumeView(tx, name, v); err != nil {
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
	for id, x := range b.execs {
		if x == nil {
			delete(j.execs, id)
		} else {
			j.execs[id] = x
		}
	}
	for name, id := range b.names {
		if id == "" {
			delete(j.names, name)
		} else {
			j.names[name] = id
		}
	}
	for id, v := range b.images {
		if v == nil {
			delete(j.images, id)
		} else {
			j.images[id] = v
		}
	}
	for id, v := range b.netAttachs {
		if v == nil {
			delete(j.netAttachs, id)
		} else {
			j.netAttachs[id] = v
		}
	}
	for id, v := range b.networks {
		if v == nil {
			delete(j.networks, id)
		} else {
			j.networks[id] = v
		}
	}
	for name, v := range b.volumes {
		if v == nil {
			delete(j.volumes, name)
		} else {
			j.volumes[name] = v
		}
	}
	if lastSeq > j.lastSeq {
		j.lastSeq = lastSeq
	}
	if j.appended != nil {
		close(j.appended)
		j.appended = nil
	}
}

// volumeUsers are the ids of the containers, in the batch's view, whose
// mounts name volume name, sorted.
func (b *batchView) volumeUsers(name string) []string {
	seen := map[string]bool{}
	var users []string
	for v := b; v != nil; v = v.parent {
		for id, c := range v.containers {
			if !seen[id] {
				seen[id] = true
				if c != nil && c.UsesVolume(name) {
					users = append(users, id)
				}
			}
		}
	}
	for id, c := range b.j.containers {
		if !seen[id] && c.UsesVolume(name) {
			users = append(users, id)
		}
	}
	slices.Sort(users)
	return users
}

// describeUsers names containers by their short ids, at most ten.
func describeUsers(ids []string) string {
	short := make([]string, 0, min(len(ids), 10))
	for _, id := range ids[:min(len(ids), 10)] {
		short = append(short, id[:min(len(id), 12)])
	}
	out := "container " + strings.Join(short, ", ")
	if len(ids) > 1 {
		out = "containers " + strings.Join(short, ", ")
	}
	if len(ids) > 10 {
		out += fmt.Sprintf(" and %d more", len(ids)-10)
	}
	return out
}
