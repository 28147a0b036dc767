package journal

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/cairn-run/cairn/internal/schema"

	sm "github.com/cairn-run/cairn/statemachine"
)

func openError(path string, err error) error {
	if errors.Is(err, bolterrors.ErrTimeout) {
		return fmt.Errorf("journal %s: %w (is another cairnd running on this root?)", path, ErrLocked)
	}
	return fmt.Errorf("journal %s: %w: %w", path, ErrCorrupt, err)
}

// inspectReadOnly is the verification of an existing file that Open and
// CheckFile share, through a read-only handle that never writes: bbolt's meta
// pages against the file size (a page past the end of the file would be a
// SIGBUS when bbolt touches it), bbolt's page-level check, the schema version
// and buckets, and, for a file of the current schema, verify. It returns the
// stored schema version, or 0 for a bbolt file without any bucket (a new file
// whose first transaction never committed). more, if set, runs last in the
// same transaction.
func inspectReadOnly(path string, opts Options, counts Outcomes, more func(tx *bolt.Tx, version int) error) (version int, err error) {
	fm, err := schema.ReadFileMeta(path)
	if err != nil {
		return 0, fmt.Errorf("journal %s: %w: %w", path, ErrCorrupt, err)
	}
	if err := schema.CheckPages(path, fm); err != nil {
		return 0, fmt.Errorf("journal %s: %w: %w", path, ErrCorrupt, err)
	}
	if fm.Freelist == noFreelist {
		// bbolt would write the freelist as it opens such a file for
		// writing, before anything could refuse it. cairnd never makes one.
		return 0, fmt.Errorf("journal %s: %w: written without a freelist (bbolt NoFreelistSync), which cairnd never does", path, ErrCorrupt)
	}
	defer guard(path, &err)()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: opts.LockTimeout})
	if err != nil {
		return 0, openError(path, err)
	}
	defer func() { _ = db.Close() }()
	err = db.View(func(tx *bolt.Tx) error {
		// tx.Check walks the pages on a goroutine of its own, where a page
		// id past the end of the mapping is a fault the guard cannot
		// catch: walk them here first, under the guard.
		walkBuckets(tx.Cursor(), tx.Bucket)
		var errs []error
		for e := range tx.Check() {
			errs = append(errs, e)
		}
		if len(errs) > 0 {
			return fmt.Errorf("%w: %w", ErrCorrupt, errors.Join(errs...))
		}
		if !hasBuckets(tx) {
			version = 0
		} else {
			if version, err = schema.StoredVersion(tx); err != nil {
				return fmt.Errorf("%w: %w", ErrCorrupt, err)
			}
			if err := schema.CheckVersion(version); err != nil {
				if errors.Is(err, schema.ErrNewerSchema) {
					return err
				}
				return fmt.Errorf("%w: %w", ErrCorrupt, err)
			}
			if err := schema.CheckBuckets(tx, version); err != nil {
				return fmt.Errorf("%w: %w", ErrCorrupt, err)
			}
			if version == schema.Version {
				if err := verify(tx, opts.Checks, counts); err != nil {
					return err
				}
			}
		}
		if more != nil {
			return more(tx, version)
		}
		return nil
	})
	if err != nil {
		return version, fmt.Errorf("journal %s: %w", path, err)
	}
	return version, nil
}

const noFreelist = ^uint64(0)

// guard turns what a damaged file can do to a reader into an error naming
// the file: bbolt panics on some damaged pages, and a read of the mapped
// file past its end (a key whose stored length runs off the last page) is a
// fault, made a panic of this goroutine for as long as the guard is on.
// Use as: defer guard(path, &err)().
func guard(path string, err *error) func() {
	old := debug.SetPanicOnFault(true)
	return func() {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			*err = fmt.Errorf("journal %s: %w: %v", path, ErrCorrupt, r)
		}
	}
}

// walkBuckets reads every key of every bucket under c, recursively, so that
// every page of the tree is touched on the calling goroutine.
func walkBuckets(c *bolt.Cursor, bucket func(name []byte) *bolt.Bucket) {
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if v != nil {
			continue
		}
		if b := bucket(k); b != nil {
			walkBuckets(b.Cursor(), b.Bucket)
		}
	}
}

func hasBuckets(tx *bolt.Tx) bool {
	c := tx.Cursor()
	k, _ := c.First()
	return k != nil
}

// verify checks a file of the current schema in tx: its version and
// buckets, the replay of the whole journal against the stored view and
// names, and every check of the other stores. Any failure wraps ErrCorrupt.
// With counts, it counts the outcomes of the records it replays.
func verify(tx *bolt.Tx, checks []schema.Check, counts Outcomes) error {
	v, err := schema.StoredVersion(tx)
	if err == nil && v != schema.Version {
		err = fmt.Errorf("schema version %d, want %d", v, schema.Version)
	}
	if err == nil {
		err = schema.CheckBuckets(tx, schema.Version)
	}
	if err == nil {
		err = verifyView(tx, counts)
	}
	for _, c := range checks {
		if err != nil {
			break
		}
		if e := c.Run(tx); e != nil {
			err = fmt.Errorf("%s: %w", c.Name, e)
		}
	}
	if err != nil && !errors.Is(err, ErrCorrupt) {
		err = fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return err
}

// Folded is what a replay of the whole journal gives: every view.
type Folded struct {
	Containers map[string]sm.Container
	Execs      map[string]sm.Exec
	Names      map[string]string
	Images     map[string]sm.ImageView
	NetAttachs map[string]sm.NetAttachView
	Networks   map[string]sm.NetworkView
	Volumes    map[string]sm.VolumeView
}

// Replay folds every record of the journal from scratch, each with the fold
// of its kind of object, exactly as the committer does.
func Replay(records func(fn func(sm.Record) error) error) (Folded, error) {
	view := newBatchView(emptyJournal())
	err := records(view.fold)
	f := Folded{Containers: map[string]sm.Container{}, Execs: map[string]sm.Exec{}, Names: map[string]string{}, Images: map[string]sm.ImageView{},
		NetAttachs: map[string]sm.NetAttachView{}, Networks: map[string]sm.NetworkView{}, Volumes: map[string]sm.VolumeView{}}
	for id, v := range view.netAttachs {
		if v != nil {
			f.NetAttachs[id] = *v
		}
	}
	for id, v := range view.networks {
		if v != nil {
			f.Networks[id] = *v
		}
	}
	for name, v := range view.volumes {
		if v != nil {
			f.Volumes[name] = *v
		}
	}
	for id, c := range view.containers {
		if c != nil {
			f.Containers[id] = *c
		}
	}
	for id, x := range view.execs {
		if x != nil {
			f.Execs[id] = *x
		}
	}
	for name, id := range view.names {
		if id != "" {
			f.Names[name] = id
		}
	}
	for id, v := range view.images {
		if v != nil {
			f.Images[id] = *v
		}
	}
	return f, err
}

// emptyJournal is what a fold from scratch starts from.
func emptyJournal() *Journal {
	return &Journal{containers: map[string]*sm.Container{}, execs: map[string]*sm.Exec{}, names: map[string]string{}, images: map[string]*sm.ImageView{},
		netAttachs: map[string]*sm.NetAttachView{}, networks: map[string]*sm.NetworkView{}, volumes: map[string]*sm.VolumeView{}}
}

// ErrViewMismatch means the stored view is not the fold of the journal.
var ErrViewMismatch = errors.New("stored view differs from the fold of the journal")

// Verify runs the verification of Open on the open journal: it replays the
// whole journal and compares the result with the stored view, container by
// container and name by name, and runs the other stores' checks.
func (j *Journal) Verify() error {
	return j.db.View(func(tx *bolt.Tx) error { return verify(tx, j.checks, nil) })
}

// verifyView is Verify inside a read transaction; with counts, it counts
// the outcomes of the records it replays.
func verifyView(tx *bolt.Tx, counts Outcomes) error {
	fold, err := Replay(func(fn func(sm.Record) error) error {
		return journalBucket(tx).ForEach(func(k, v []byte) error {
			rec, err := decodeRecord(k, v)
			if err != nil {
				return err
			}
			counts.add(rec)
			return fn(rec)
		})
	})
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	folded, names := fold.Containers, fold.Names
	sv, err := readViews(tx)
	if err != nil {
		return err
	}
	stored, storedNames := sv.containers, sv.names
	var problems []error
	for id, c := range stored {
		want, ok := folded[id]
		if !ok {
			problems = append(problems, fmt.Errorf("container %s is in the view but not in the journal", id))
			continue
		}
		got, err := json.Marshal(c)
		if err != nil {
			return err
		}
		wantJSON, err := json.Marshal(want)
		if err != nil {
			return err
		}
		if string(got) != string(wantJSON) {
			problems = append(problems, fmt.Errorf("container %s: view %s, journal folds to %s", id, got, wantJSON))
		}
	}
	for id := range folded {
		if _, ok := stored[id]; !ok {
			problems = append(problems, fmt.Errorf("container %s is in the journal but not in the view", id))
		}
	}
	if !maps.Equal(storedNames, names) {
		problems = append(problems, fmt.Errorf("names: view %v, journal folds to %v", storedNames, names))
	}
	for id, x := range sv.execs {
		want, ok := fold.Execs[id]
		if !ok {
			problems = append(problems, fmt.Errorf("exec session %s is in the view but not in the journal", id))
			continue
		}
		got, _ := json.Marshal(x)
		wantJSON, _ := json.Marshal(want)
		if string(got) != string(wantJSON) {
			problems = append(problems, fmt.Errorf("exec session %s: view %s, journal folds to %s", id, got, wantJSON))
		}
	}
	for id := range fold.Execs {
		if _, ok := sv.execs[id]; !ok {
			problems = append(problems, fmt.Errorf("exec session %s is in the journal but not in the view", id))
		}
	}
	for id, v := range sv.images {
		want, ok := fold.Images[id]
		if !ok {
			problems = append(problems, fmt.Errorf("image %s is in the view but not in the journal", id))
			continue
		}
		got, _ := json.Marshal(v)
		wantJSON, _ := json.Marshal(want)
		if string(got) != string(wantJSON) {
			problems = append(problems, fmt.Errorf("image %s: view %s, journal folds to %s", id, got, wantJSON))
		}
	}
	for id := range fold.Images {
		if _, ok := sv.images[id]; !ok {
			problems = append(problems, fmt.Errorf("image %s is in the journal but not in the view", id))
		}
	}
	problems = append(problems, compareViews("attachment", sv.netAttachs, fold.NetAttachs)...)
	problems = append(problems, compareViews("network", sv.networks, fold.Networks)...)
	problems = append(problems, compareViews("volume", sv.volumes, fold.Volumes)...)
	if len(problems) > 0 {
		return fmt.Errorf("%w: %w", ErrViewMismatch, errors.Join(problems...))
	}
	return nil
}

// Report is what an offline check of a journal file found.
type Report struct {
	Records    int
	Containers int
	Images     int
	Volumes    int
	// Schema is the file's stored schema version; an older one is migrated
	// by the next Open (the check verified the migrated result).
	Schema        int
	CleanShutdown bool
}

// errRollback ends a transaction that must not commit.
var errRollback = errors.New("rolled back")

// CheckFile checks a journal file without a daemon, exactly as Open does
// before it accepts a file: bbolt's meta pages and page-level check, the
// schema, the replay of the whole journal against the stored view, and
// checks (pass the same list as Options.Checks of the daemon). A file of an
// older schema is migrated in a scratch copy and the result verified. The
// file is opened read-only and never changed; a file in use by a running
// cairnd is ErrLocked.
func CheckFile(path string, lockTimeout time.Duration, checks ...schema.Check) (rep Report, err error) {
	if _, err := os.Stat(path); err != nil {
		return rep, fmt.Errorf("journal %s: %w", path, err)
	}
	opts := Options{LockTimeout: lockTimeout, Checks: checks}
	var old *os.File // a copy of an older file, to migrate
	defer func() {
		if old != nil {
			_ = old.Close()
			_ = os.Remove(old.Name())
		}
	}()
	version, err := inspectReadOnly(path, opts, nil, func(tx *bolt.Tx, version int) error {
		rep.Schema = version
		if version == 0 {
			return fmt.Errorf("%w: no buckets: not a journal", ErrCorrupt)
		}
		if version == schema.Version {
			rep.fill(tx)
			return nil
		}
		f, err := os.CreateTemp("", "cairn-check-*.db")
		if err != nil {
			return err
		}
		old = f
		_, err = tx.WriteTo(f)
		return err
	})
	if err != nil || version == schema.Version {
		return rep, err
	}
	defer guard(path, &err)()
	db, err := bolt.Open(old.Name(), 0o600, &bolt.Options{Timeout: lockTimeout})
	if err != nil {
		return rep, fmt.Errorf("journal %s: copy to migrate: %w", path, err)
	}
	defer func() { _ = db.Close() }()
	err = db.Update(func(tx *bolt.Tx) error {
		if _, err := schema.Migrate(tx); err != nil {
			return fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		if err := verify(tx, checks, nil); err != nil {
			return err
		}
		rep.fill(tx)
		return errRollback
	})
	if !errors.Is(err, errRollback) {
		return rep, fmt.Errorf("journal %s: %w", path, err)
	}
	return rep, nil
}

func (rep *Report) fill(tx *bolt.Tx) {
	rep.Records = journalBucket(tx).Stats().KeyN
	rep.Containers = containersBucket(tx).Stats().KeyN
	rep.Images = imageViewsBucket(tx).Stats().KeyN
	if b := volumesBucket(tx); b != nil { // a file of schema 3 or older, migrated at the next start
		rep.Volumes = b.Stats().KeyN
	}
	rep.CleanShutdown = metaBucket(tx).Get(schema.MetaCleanShutdown) != nil
}

// compareViews compares stored views with folded ones, by their JSON.
func compareViews[V any](what string, stored map[string]*V, folded map[string]V) []error {
	var problems []error
	for id, v := range stored {
		want, ok := folded[id]
		if !ok {
			problems = append(problems, fmt.Errorf("%s %s is in the view but not in the journal", what, id))
			continue
		}
		got, _ := json.Marshal(v)
		wantJSON, _ := json.Marshal(want)
		if string(got) != string(wantJSON) {
			problems = append(problems, fmt.Errorf("%s %s: view %s, journal folds to %s", what, id, got, wantJSON))
		}
	}
	for id := range folded {
		if _, ok := stored[id]; !ok {
			problems = append(problems, fmt.Errorf("%s %s is in the journal but not in the view", what, id))
		}
	}
	return problems
}
