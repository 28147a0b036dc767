package journal

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"

	sm "github.com/cairn-run/cairn/statemachine"
)

// Check runs bbolt's page-level integrity check on the file at path through
// a read-only handle and reports every problem found. It never writes.
func Check(path string, lockTimeout time.Duration) error {
	return checkReadOnly(path, lockTimeout, nil)
}

// checkReadOnly opens path read-only, runs bbolt's integrity check and then
// more, if given, in the same read transaction.
func checkReadOnly(path string, lockTimeout time.Duration, more func(*bolt.Tx) error) (err error) {
	defer func() {
		// bbolt may panic on a damaged file before Check gets to run.
		if r := recover(); r != nil {
			err = fmt.Errorf("journal %s: %w: %v", path, ErrCorrupt, r)
		}
	}()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: lockTimeout})
	if err != nil {
		return openError(path, err)
	}
	defer func() { _ = db.Close() }()
	return db.View(func(tx *bolt.Tx) error {
		var errs []error
		for e := range tx.Check() {
			errs = append(errs, e)
		}
		if len(errs) > 0 {
			return fmt.Errorf("journal %s: %w: %w", path, ErrCorrupt, errors.Join(errs...))
		}
		if more == nil {
			return nil
		}
		if err := more(tx); err != nil {
			return fmt.Errorf("journal %s: %w", path, err)
		}
		return nil
	})
}

// Replay folds every record of the journal from scratch.
func Replay(records func(fn func(sm.Record) error) error) (map[string]sm.Container, map[string]string, error) {
	containers := map[string]sm.Container{}
	names := map[string]string{}
	err := records(func(rec sm.Record) error {
		var prev *sm.Container
		if c, ok := containers[rec.Container]; ok {
			prev = &c
		}
		next, err := Apply(prev, rec)
		if err != nil {
			return err
		}
		if prev != nil && prev.Name != "" && names[prev.Name] == prev.ID && next == nil {
			delete(names, prev.Name)
		}
		if next == nil {
			delete(containers, rec.Container)
			return nil
		}
		containers[rec.Container] = *next
		if next.Name != "" {
			names[next.Name] = next.ID
		}
		return nil
	})
	return containers, names, err
}

// ErrViewMismatch means the stored view is not the fold of the journal.
var ErrViewMismatch = errors.New("stored view differs from the fold of the journal")

// Verify replays the whole journal and compares the result with the stored
// view, container by container and name by name.
func (j *Journal) Verify() error {
	return j.db.View(verifyView)
}

// verifyView is Verify inside a read transaction.
func verifyView(tx *bolt.Tx) error {
	folded, names, err := Replay(func(fn func(sm.Record) error) error {
		return journalBucket(tx).ForEach(func(k, v []byte) error {
			rec, err := decodeRecord(k, v)
			if err != nil {
				return err
			}
			return fn(rec)
		})
	})
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	stored, storedNames, err := readViews(tx)
	if err != nil {
		return err
	}
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
	if len(problems) > 0 {
		return fmt.Errorf("%w: %w", ErrViewMismatch, errors.Join(problems...))
	}
	return nil
}

// Report is what an offline check of a journal file found.
type Report struct {
	Records       int
	Containers    int
	CleanShutdown bool
}

// CheckFile checks a journal file without a daemon: bbolt's integrity
// check, then the replay of the whole journal against the stored view. It
// opens the file read-only and never changes it; a file in use by a running
// cairnd is ErrLocked.
func CheckFile(path string, lockTimeout time.Duration) (Report, error) {
	var rep Report
	if _, err := os.Stat(path); err != nil {
		return rep, fmt.Errorf("journal %s: %w", path, err)
	}
	err := checkReadOnly(path, lockTimeout, func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketJournal, bucketContainers, bucketPending, bucketNames, bucketMeta} {
			if tx.Bucket(b) == nil {
				return fmt.Errorf("bucket %s is missing: %w", b, ErrCorrupt)
			}
		}
		if err := verifyView(tx); err != nil {
			return err
		}
		rep.Records = journalBucket(tx).Stats().KeyN
		rep.Containers = containersBucket(tx).Stats().KeyN
		rep.CleanShutdown = metaBucket(tx).Get(metaCleanShutdown) != nil
		return nil
	})
	return rep, err
}
