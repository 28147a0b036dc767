package journal

import (
	"errors"
	"fmt"

	sm "github.com/cairn-run/cairn/statemachine"
)

// ErrInconsistent marks a record that does not fit the view it is folded
// into: a bug in the caller or a damaged journal, never a client error.
var ErrInconsistent = errors.New("record inconsistent with the journal")

// validate checks that rec can follow the view prev. The driver serialises
// transitions per container, so a violation is a bug; refusing it keeps the
// journal foldable.
func validate(prev *sm.Container, rec sm.Record) error {
	if rec.Container == "" {
		return fmt.Errorf("no container id: %w", ErrInconsistent)
	}
	switch rec.Kind {
	case sm.KindIntent:
		if rec.Event == sm.EventCreate {
			if prev != nil {
				return fmt.Errorf("container exists already: %w", ErrInconsistent)
			}
			if rec.Args == nil {
				return fmt.Errorf("create without arguments: %w", ErrInconsistent)
			}
			return nil
		}
		if prev == nil {
			return fmt.Errorf("unknown container: %w", ErrInconsistent)
		}
		if prev.Pending != nil {
			return fmt.Errorf("intent %d is still pending: %w", prev.Pending.Seq, ErrInconsistent)
		}
	case sm.KindDone, sm.KindFailed:
		if prev == nil {
			return fmt.Errorf("unknown container: %w", ErrInconsistent)
		}
		if prev.Pending == nil || prev.Pending.Seq != rec.Intent {
			return fmt.Errorf("finishes intent %d, which is not pending: %w", rec.Intent, ErrInconsistent)
		}
	case sm.KindReconciled:
		// Recovery may clean leftovers of a container the view no longer
		// knows; such a record changes no view.
		if prev == nil {
			if rec.To != sm.StateRemoved {
				return fmt.Errorf("unknown container: %w", ErrInconsistent)
			}
			return nil
		}
		pending := uint64(0)
		if prev.Pending != nil {
			pending = prev.Pending.Seq
		}
		if rec.Intent != pending {
			return fmt.Errorf("reconciles intent %d, but intent %d is pending: %w", rec.Intent, pending, ErrInconsistent)
		}
	default:
		return fmt.Errorf("unknown record kind %q: %w", rec.Kind, ErrInconsistent)
	}
	return nil
}
