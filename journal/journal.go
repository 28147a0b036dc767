package journal

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cairn-run/cairn/internal/errdefs"
	"github.com/cairn-run/cairn/internal/schema"
	sm "github.com/cairn-run/cairn/statemachine"
)

// ErrLocked means another process holds the journal file.
var ErrLocked = errors.New("journal is locked by another process")

// ErrCorrupt means the journal file failed its integrity check.
var ErrCorrupt = errors.New("journal is corrupt")

// Options tune Open.
type Options struct {
	// LockTimeout bounds the wait for the file lock; a second daemon on the
	// same root gets ErrLocked instead of hanging. Default 1s.
	LockTimeout time.Duration
	// Observer, if set, is told about each group commit.
	Observer CommitObserver
	// Checks are the verifications of the other stores in the file (the
	// layer store's invariants), run by Open and by CheckFile after the
	// journal's own. The daemon and the offline check pass the same list.
	Checks []schema.Check
	// CrashPoint, if set, is called with "journal.mid-commit" inside each
	// write transaction, after its records are written and before it
	// commits: crash drills kill the daemon there.
	CrashPoint func(name string)
}

// CommitObserver receives the size and duration of each group commit.
type CommitObserver interface {
	Committed(records int, d time.Duration)
}

// Journal is the open journal with its in-memory view.
type Journal struct {
	db    *bolt.DB
	path  string
	obs   CommitObserver
	crash func(name string)
	// checks are the other stores' verifications (Options.Checks).
	checks []schema.Check

	mu         sync.RWMutex
	containers map[string]*sm.Container
	execs      map[string]*sm.Exec
	names      map[string]string
	images     map[string]*sm.ImageView
	netAttachs map[string]*sm.NetAttachView
	networks   map[string]*sm.NetworkView
	volumes    map[string]*sm.VolumeView
	lastSeq    uint64
	// appended is closed at the next published commit (Appended).
	appended chan struct{}
	// outcomes are the journal's DONE and FAILED records at Open, those
	// compaction deleted included (Outcomes).
	outcomes Outcomes

	// closeMu orders Commit's send on appends before Close's stop: a
	// request is never queued after the committer stopped.
	closeMu sync.RWMutex
	closed  bool
	appends chan *commitRequest
	stop    chan struct{}
	stopped chan struct{}
	once    sync.Once
}

// Open opens (or creates) the journal at path.
//
// A new (missing or empty) file gets every bucket of the current schema. An
// existing file is first verified through a read-only handle exactly as the
// offline check does (see CheckFile): bbolt's meta pages against the file's
// size, bbolt's page-level check, the schema version, every bucket, the
// replay of the whole journal against the stored view and names, and
// opts.Checks. A file of an older schema is migrated and verified again in
// one write transaction that commits only if the verification passes. A
// file Open refuses is never written: not by bbolt, not by a migration.
func Open(path string, opts Options) (j *Journal, err error) {
	if opts.LockTimeout == 0 {
		opts.LockTimeout = time.Second
	}
	fresh, err := schema.FileIsEmpty(path)
	if err != nil {
		return nil, fmt.Errorf("journal %s: %w", path, err)
	}
	version := 0 // a bbolt file without any bucket: a new file
	counts := Outcomes{}
	if !fresh {
		if version, err = inspectReadOnly(path, opts, counts, nil); err != nil {
			return nil, err
		}
	}
	db, err := openReadWrite(path, opts.LockTimeout)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = db.Close()
		}
	}()
	if version != schema.Version {
		if err := prepare(db, path, version, opts.Checks, counts); err != nil {
			return nil, err
		}
	}
	j = &Journal{
		db: db, path: path, obs: opts.Observer, crash: opts.CrashPoint, checks: opts.Checks,
		containers: map[string]*sm.Container{},
		execs:      map[string]*sm.Exec{},
		names:      map[string]string{},
		images:     map[string]*sm.ImageView{},
		netAttachs: map[string]*sm.NetAttachView{},
		networks:   map[string]*sm.NetworkView{},
		volumes:    map[string]*sm.VolumeView{},
		appends:    make(chan *commitRequest, 4096),
		stop:       make(chan struct{}),
		stopped:    make(chan struct{}),
	}
	if err := j.load(); err != nil {
		return nil, fmt.Errorf("journal %s: %w", path, err)
	}
	if err := db.View(func(tx *bolt.Tx) error { return counts.addCompacted(tx) }); err != nil {
		return nil, fmt.Errorf("journal %s: %w", path, err)
	}
	j.outcomes = counts
	go j.commitLoop()
	return j, nil
}

// openReadWrite opens the bbolt file for writing. bbolt may panic on a
// damaged file; the read-only inspection before has looked at every page,
// so this is a last guard.
func openReadWrite(path string, timeout time.Duration) (db *bolt.DB, err error) {
	defer guard(path, &err)()
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout})
	if err != nil {
		return nil, openError(path, err)
	}
	return db, nil
}

// prepare brings a file of version (0: new) to the current schema in one
// write transaction: a new file gets its buckets; an older one is migrated
// and then verified like any file Open accepts. On any error the
// transaction is rolled back and bbolt writes nothing.
func prepare(db *bolt.DB, path string, version int, checks []schema.Check, counts Outcomes) (err error) {
	// A panic inside Update rolls the transaction back before guard
	// recovers it.
	defer guard(path, &err)()
	err = db.Update(func(tx *bolt.Tx) error {
		if version == 0 {
			return schema.Create(tx)
		}
		if _, err := schema.Migrate(tx); err != nil {
			return fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		return verify(tx, checks, counts)
	})
	if err != nil {
		return fmt.Errorf("journal %s: %w", path, err)
	}
	return nil
}

// load reads the stored view into memory.
func (j *Journal) load() error {
	return j.db.View(func(tx *bolt.Tx) error {
		j.lastSeq = journalBucket(tx).Sequence()
		v, err := readViews(tx)
		j.containers, j.execs, j.names, j.images, j.volumes = v.containers, v.execs, v.names, v.images, v.volumes
		j.netAttachs, j.networks = v.netAttachs, v.networks
		return err
	})
}

// Close stops accepting appends, waits for the ones in flight and closes
// the file. Every Append or Commit after it returns ErrClosed; one racing it
// is either committed or ErrClosed, never left waiting.
func (j *Journal) Close() error {
	j.once.Do(func() {
		j.closeMu.Lock()
		j.closed = true
		j.closeMu.Unlock()
		close(j.stop)
	})
	<-j.stopped
	return j.db.Close()
}

// View runs fn in a read transaction of the journal's file, for the stores
// that keep their records in it (the layer store). They write only through
// Write or Commit, so every write shares the group commit.
func (j *Journal) View(fn func(tx *bolt.Tx) error) error { return j.db.View(fn) }

// Write commits op, a store's write that goes with no journal record, in
// the group commit (Commit with no records).
func (j *Journal) Write(op schema.Op) error {
	_, err := j.Commit(nil, op)
	return err
}

// Stats are the journal's record count and the size of its file.
func (j *Journal) Stats() (records int, fileBytes int64) {
	_ = j.db.View(func(tx *bolt.Tx) error {
		records = journalBucket(tx).Stats().KeyN
		return nil
	})
	if fi, err := os.Stat(j.path); err == nil {
		fileBytes = fi.Size()
	}
	return records, fileBytes
}

// Path is the journal file.
func (j *Journal) Path() string { return j.path }

// Container returns a copy of the view of container id.
func (j *Journal) Container(id string) (sm.Container, bool) {
	j.mu.RLock()
	defer j.mu.RUnlock()
	c, ok := j.containers[id]
	if !ok {
		return sm.Container{}, false
	}
	return c.Clone(), true
}

// Image returns a copy of the view of image id.
func (j *Journal) Image(id string) (sm.ImageView, bool) {
	j.mu.RLock()
	defer j.mu.RUnlock()
	v, ok := j.images[id]
	if !ok {
		return sm.ImageView{}, false
	}
	return v.Clone(), true
}

// Images returns copies of every image view, sorted by id.
func (j *Journal) Images() []sm.ImageView {
	j.mu.RLock()
	out := make([]sm.ImageView, 0, len(j.images))
	for _, v := range j.images {
		out = append(out, v.Clone())
	}
	j.mu.RUnlock()
	sort.Slice(out, func(a, b int) bool { return out[a].ID < out[b].ID })
	return out
}

// Volume returns a copy of the view of volume name.
func (j *Journal) Volume(name string) (sm.VolumeView, bool) {
	j.mu.RLock()
	defer j.mu.RUnlock()
	v, ok := j.volumes[name]
	if !ok {
		return sm.VolumeView{}, false
	}
	return v.Clone(), true
}

// Volumes returns copies of every volume view, sorted by name.
func (j *Journal) Volumes() []sm.VolumeView {
	j.mu.RLock()
	out := make([]sm.VolumeView, 0, len(j.volumes))
	for _, v := range j.volumes {
		out = append(out, v.Clone())
	}
	j.mu.RUnlock()
	sort.Slice(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	return out
}

// IDByName returns the id of the container holding name.
func (j *Journal) IDByName(name string) (string, bool) {
	j.mu.RLock()
	defer j.mu.RUnlock()
	id, ok := j.names[name]
	return id, ok
}

// Containers returns copies of every container view, oldest first.
func (j *Journal) Containers() []sm.Container {
	j.mu.RLock()
	out := make([]sm.Container, 0, len(j.containers))
	for _, c := range j.containers {
		out = append(out, c.Clone())
	}
	j.mu.RUnlock()
	sort.Slice(out, func(a, b int) bool {
		if !out[a].CreatedAt.Equal(out[b].CreatedAt) {
			return out[a].CreatedAt.Before(out[b].CreatedAt)
		}
		return out[a].ID < out[b].ID
	})
	return out
}

// Resolve finds a container by full id, name, or unique id prefix of at
// least 4 characters.
func (j *Journal) Resolve(ref string) (string, error) {
	j.mu.RLock()
	defer j.mu.RUnlock()
	visible := func(id string) bool {
		c, ok := j.containers[id]
		return ok && c.State != sm.StateNone // a create in flight is not a container yet
	}
	if visible(ref) {
		return ref, nil
	}
	if id, ok := j.names[ref]; ok && visible(id) {
		return id, nil
	}
	if len(ref) < 4 {
		return "", fmt.Errorf("no container named %q (id prefixes need 4 or more characters): %w", ref, errdefs.ErrNotFound)
	}
	var found []string
	for id := range j.containers {
		if strings.HasPrefix(id, ref) && visible(id) {
			found = append(found, id)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("no such container: %s: %w", ref, errdefs.ErrNotFound)
	case 1:
		return found[0], nil
	default:
		return "", fmt.Errorf("container prefix %q is ambiguous (%d matches): %w", ref, len(found), errdefs.ErrInvalidArgument)
	}
}

// LastSeq is the sequence number of the newest record.
func (j *Journal) LastSeq() uint64 {
	j.mu.RLock()
	defer j.mu.RUnlock()
	return j.lastSeq
}

// RecordsAfter returns up to max records with seqs above after, in order,
// read in one short transaction: a caller that sends them to a slow client
// must not hold a read transaction open meanwhile (bbolt cannot grow the
// file while one is open).
func (j *Journal) RecordsAfter(after uint64, max int) ([]sm.Record, error) {
	var out []sm.Record
	err := j.db.View(func(tx *bolt.Tx) error {
		c := journalBucket(tx).Cursor()
		for k, v := c.Seek(seqKey(after + 1)); k != nil && len(out) < max; k, v = c.Next() {
			rec, err := decodeRecord(k, v)
			if err != nil {
				return err
			}
			out = append(out, rec)
		}
		return nil
	})
	return out, err
}

// Appended returns a channel closed when the next commit is published. Take
// it before reading, so no commit is missed.
func (j *Journal) Appended() <-chan struct{} {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.appended == nil {
		j.appended = make(chan struct{})
	}
	return j.appended
}

// Records calls fn for every record in order, from seq from on; when
// container is not empty only for that container's records.
func (j *Journal) Records(from uint64, container string, fn func(sm.Record) error) error {
	return j.RecordsOf(from, RecordFilter{Container: container}, fn)
}

// RecordFilter picks records: of one container (its own and its execs'),
// of one kind of object, or of one object; the zero filter picks all.
type RecordFilter struct {
	Container string
	Object    sm.ObjectKind
	ObjectID  string
}

func (f RecordFilter) match(rec sm.Record) bool {
	switch {
	case f.Container != "" && rec.Container != f.Container:
		return false
	case f.Object != "" && rec.Object != f.Object:
		return false
	case f.ObjectID != "" && rec.ObjectID != f.ObjectID:
		return false
	}
	return true
}

// ObjectRecords calls fn for every record of objects of kind (of the one
// with id, when set), in order, from seq from on.
func (j *Journal) ObjectRecords(from uint64, kind sm.ObjectKind, id string, fn func(sm.Record) error) error {
	return j.RecordsOf(from, RecordFilter{Object: kind, ObjectID: id}, fn)
}

// RecordsOf calls fn for every record that f picks, in order, from seq
// from on.
func (j *Journal) RecordsOf(from uint64, f RecordFilter, fn func(sm.Record) error) error {
	return j.db.View(func(tx *bolt.Tx) error {
		c := journalBucket(tx).Cursor()
		for k, v := c.Seek(seqKey(from)); k != nil; k, v = c.Next() {
			rec, err := decodeRecord(k, v)
			if err != nil {
				return err
			}
			if !f.match(rec) {
				continue
			}
			if err := fn(rec); err != nil {
				return err
			}
		}
		return nil
	})
}

// Exec returns a copy of the view of exec session id.
func (j *Journal) Exec(id string) (sm.Exec, bool) {
	j.mu.RLock()
	defer j.mu.RUnlock()
	x, ok := j.execs[id]
	if !ok {
		return sm.Exec{}, false
	}
	return x.Clone(), true
}

// Execs returns copies of every exec session view, oldest first; of
// container only when it is not empty.
func (j *Journal) Execs(container string) []sm.Exec {
	j.mu.RLock()
	out := make([]sm.Exec, 0, len(j.execs))
	for _, x := range j.execs {
		if container == "" || x.Container == container {
			out = append(out, x.Clone())
		}
	}
	j.mu.RUnlock()
	sort.Slice(out, func(a, b int) bool {
		if !out[a].CreatedAt.Equal(out[b].CreatedAt) {
			return out[a].CreatedAt.Before(out[b].CreatedAt)
		}
		return out[a].ID < out[b].ID
	})
	return out
}

// ResolveExec finds an exec session by full id or unique id prefix of at
// least 4 characters.
func (j *Journal) ResolveExec(ref string) (string, error) {
	j.mu.RLock()
	defer j.mu.RUnlock()
	if _, ok := j.execs[ref]; ok {
		return ref, nil
	}
	if len(ref) < 4 {
		return "", fmt.Errorf("no exec session %q (id prefixes need 4 or more characters): %w", ref, errdefs.ErrNotFound)
	}
	var found []string
	for id := range j.execs {
		if strings.HasPrefix(id, ref) {
			found = append(found, id)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("no such exec session: %s: %w", ref, errdefs.ErrNotFound)
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("exec session prefix %q is ambiguous (%d matches): %w", ref, len(found), errdefs.ErrInvalidArgument)
}
