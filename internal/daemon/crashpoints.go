package daemon

import (
	"slices"

	"github.com/cairn-run/cairn/journal"
	"github.com/cairn-run/cairn/recovery"
	sm "github.com/cairn-run/cairn/statemachine"
)

// CrashPoints is every crash point cairnd can reach, in one list: the
// container driver's, the image driver's and the volume driver's (derived from their step
// lists), the journal's and recovery's.
// cairnd refuses to start with CAIRN_CRASH_AT naming anything else, and the
// full-matrix crash test walks this list.
func CrashPoints() []string {
	return slices.Concat(sm.CrashPoints(), sm.ImageCrashPoints(), sm.NetCrashPoints(), sm.VolumeCrashPoints(), journal.CrashPoints(), recovery.CrashPoints())
}
