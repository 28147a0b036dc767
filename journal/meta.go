package journal

import (
	"bytes"

	bolt "go.etcd.io/bbolt"

	"github.com/cairn-run/cairn/internal/schema"
)

// StartInfo is what the previous daemon left in meta/ about how it ended.
type StartInfo struct {
	// CleanShutdown is false when the previous daemon crashed or was killed.
	CleanShutdown bool
	// FirstStart is true for a new journal.
	FirstStart bool
	// Rebooted is true when the machine booted since the previous start.
	Rebooted bool
}

// MarkStarted records that a daemon is running with kernel boot id bootID,
// clearing the clean-shutdown marker, and reports how the previous one ended.
func (j *Journal) MarkStarted(bootID string) (StartInfo, error) {
	var info StartInfo
	err := j.db.Update(func(tx *bolt.Tx) error {
		meta := metaBucket(tx)
		prevBoot := meta.Get(schema.MetaBootID)
		info.FirstStart = prevBoot == nil
		info.CleanShutdown = info.FirstStart || meta.Get(schema.MetaCleanShutdown) != nil
		info.Rebooted = !info.FirstStart && !bytes.Equal(prevBoot, []byte(bootID))
		if err := meta.Delete(schema.MetaCleanShutdown); err != nil {
			return err
		}
		return meta.Put(schema.MetaBootID, []byte(bootID))
	})
	return info, err
}

// MarkCleanShutdown records that the daemon is stopping in an orderly way.
func (j *Journal) MarkCleanShutdown() error {
	return j.db.Update(func(tx *bolt.Tx) error {
		return metaBucket(tx).Put(schema.MetaCleanShutdown, []byte("1"))
	})
}
