// Package storecheck is the one list of the checks of the stores that keep
// records in cairnd's bbolt file besides the journal. cairnd passes it to
// journal.Open and `cairn journal check` to journal.CheckFile, so the
// startup check and the offline one can never drift apart. A store that
// adds buckets (volumes, network attachments, exec sessions, sandboxes)
// adds its check here.
package storecheck

import (
	"github.com/cairn-run/cairn/internal/schema"
	"github.com/cairn-run/cairn/layer"
)

// All returns the checks, in the order they run.
func All() []schema.Check {
	return []schema.Check{layer.Check}
}
