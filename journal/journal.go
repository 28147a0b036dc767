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
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/cairn-run/cairn/internal/errdefs"
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

	mu         sync.RWMutex
	containers map[string]*sm.Container
	names      map[string]string
	lastSeq    uint64

	appends chan *appendRequest
	stop    chan struct{}
	stopped chan struct{}
	once    sync.Once
}

// Open opens (or creates) the journal at path. It refuses a file that fails
// bbolt's integrity check instead of opening it read-write, because bbolt can
// panic on a damaged freelist; the file is never modified or deleted then.
func Open(path string, opts Options) (*Journal, error) {
	if opts.LockTimeout == 0 {
		opts.LockTimeout = time.Second
	}
	if err := checkBeforeOpen(path, opts.LockTimeout); err != nil {
		return nil, err
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout})
	if err != nil {
		return nil, openError(path, err)
	}
	j := &Journal{
		db: db, path: path, obs: opts.Observer, crash: opts.CrashPoint,
		containers: map[string]*sm.Container{},
		names:      map[string]string{},
		appends:    make(chan *appendRequest, 4096),
		stop:       make(chan struct{}),
		stopped:    make(chan struct{}),
	}
	if err := db.Update(createBuckets); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("journal %s: %w", path, err)
	}
	if err := j.load(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("journal %s: %w", path, err)
	}
	go j.commitLoop()
	return j, nil
}

// checkBeforeOpen runs bbolt's integrity check on an existing file through
// a read-only handle.
func checkBeforeOpen(path string, timeout time.Duration) error {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return Check(path, timeout)
}

func openError(path string, err error) error {
	if errors.Is(err, bolterrors.ErrTimeout) {
		return fmt.Errorf("journal %s: %w (is another cairnd running on this root?)", path, ErrLocked)
	}
	return fmt.Errorf("journal %s: %w: %w", path, ErrCorrupt, err)
}

// load reads the stored view into memory.
func (j *Journal) load() error {
	return j.db.View(func(tx *bolt.Tx) error {
		j.lastSeq = journalBucket(tx).Sequence()
		var err error
		j.containers, j.names, err = readViews(tx)
		return err
	})
}

// Close stops accepting appends, waits for the ones in flight and closes
// the file.
func (j *Journal) Close() error {
	j.once.Do(func() { close(j.stop) })
	<-j.stopped
	return j.db.Close()
}

// DB is the underlying bbolt handle, shared with the layer store, which
// keeps its own buckets in the same file.
func (j *Journal) DB() *bolt.DB { return j.db }

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

// Records calls fn for every record in order, from seq from on; when
// container is not empty only for that container's records.
func (j *Journal) Records(from uint64, container string, fn func(sm.Record) error) error {
	return j.db.View(func(tx *bolt.Tx) error {
		c := journalBucket(tx).Cursor()
		for k, v := c.Seek(seqKey(from)); k != nil; k, v = c.Next() {
			rec, err := decodeRecord(k, v)
			if err != nil {
				return err
			}
			if container != "" && rec.Container != container {
				continue
			}
			if err := fn(rec); err != nil {
				return err
			}
		}
		return nil
	})
}
