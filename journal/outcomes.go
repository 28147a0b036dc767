package journal

import (
	"encoding/json"
	"fmt"
	"maps"

	bolt "go.etcd.io/bbolt"

	"github.com/cairn-run/cairn/internal/schema"
	sm "github.com/cairn-run/cairn/statemachine"
)

// Outcome is the kind of a finished container transition: its event and
// how it ended (DONE or FAILED).
type Outcome struct {
	Event string
	Kind  string
}

// Outcomes counts finished transitions. Open counts those the journal
// holds, and adds those compaction deleted (kept in meta/), so a daemon's
// transition counters continue across restarts instead of starting at 0.
type Outcomes map[Outcome]int

func (o Outcomes) add(rec sm.Record) {
	if o != nil && (rec.Kind == sm.KindDone || rec.Kind == sm.KindFailed) && rec.Normalized().Object == sm.ObjectContainer {
		o[Outcome{Event: string(rec.Event), Kind: string(rec.Kind)}]++
	}
}

// compactedOutcomes is meta/compacted-outcomes: "event kind" -> count.
func compactedOutcomes(tx *bolt.Tx) (map[string]int, error) {
	out := map[string]int{}
	if v := schema.Meta(tx).Get(schema.MetaCompactedOutcomes); v != nil {
		if err := json.Unmarshal(v, &out); err != nil {
			return nil, fmt.Errorf("meta %s: %w: %w", schema.MetaCompactedOutcomes, ErrCorrupt, err)
		}
	}
	return out, nil
}

func (o Outcomes) addCompacted(tx *bolt.Tx) error {
	compacted, err := compactedOutcomes(tx)
	if err != nil {
		return err
	}
	for key, n := range compacted {
		var oc Outcome
		if _, err := fmt.Sscanf(key, "%s %s", &oc.Event, &oc.Kind); err != nil {
			return fmt.Errorf("meta %s: key %q: %w", schema.MetaCompactedOutcomes, key, ErrCorrupt)
		}
		o[oc] += n
	}
	return nil
}

// recordCompacted adds the outcomes of records compaction deletes in tx.
func recordCompacted(tx *bolt.Tx, deleted Outcomes) error {
	if len(deleted) == 0 {
		return nil
	}
	compacted, err := compactedOutcomes(tx)
	if err != nil {
		return err
	}
	for oc, n := range deleted {
		compacted[oc.Event+" "+oc.Kind] += n
	}
	data, err := json.Marshal(compacted)
	if err != nil {
		return err
	}
	return schema.Meta(tx).Put(schema.MetaCompactedOutcomes, data)
}

// Outcomes returns the transitions the journal had finished when it was
// opened, compacted ones included.
func (j *Journal) Outcomes() Outcomes { return maps.Clone(j.outcomes) }
