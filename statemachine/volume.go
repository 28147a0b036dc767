package statemachine

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/looplab/fsm"

	"github.com/cairn-run/cairn/internal/errdefs"
)

// Volumes are journaled objects of kind "volume" (ObjectVolume), keyed by
// their name, with the protocol of every other object: the rule is
// checked, the INTENT is durable before the volume's directory is made or
// its data deleted, the step runs, and DONE commits, or FAILED after
// undoing. The view (VolumeView) is all the file holds of a volume; its
// data is a directory the volume service owns.
//
// A volume some container mounts cannot be removed: the journal's fold
// refuses a remove intent while any container's view names the volume, and
// a container create that names a volume that is not present (or is being
// removed), so the check and the record are one step.

// Volume events. They carry a "volume-" prefix so that their crash points
// ("volume-create.after-intent") are apart from the containers'.
const (
	EventVolumeCreate Event = "volume-create"
	EventVolumeRemove Event = "volume-remove"
)

// VolumeEvents are the volume events, in the order VolumeCrashPoints lists them.
var VolumeEvents = []Event{EventVolumeCreate, EventVolumeRemove}

// volumeRules is the rule table of volumes: created once, removed once.
var volumeRules = fsm.Events{
	{Name: string(EventVolumeCreate), Src: []string{string(StateNone)}, Dst: string(StatePresent)},
	{Name: string(EventVolumeRemove), Src: []string{string(StatePresent)}, Dst: string(StateRemoved)},
}

// VolumeTarget returns the state a volume event leads to from state from,
// or ErrFailedPrecondition when the rules forbid it.
func VolumeTarget(from State, event Event) (State, error) {
	f := fsm.NewFSM(string(from), volumeRules, nil)
	if !f.Can(string(event)) {
		return from, fmt.Errorf("cannot %s a volume that is %q: %w", event, from, errdefs.ErrFailedPrecondition)
	}
	if err := f.Event(context.Background(), string(event)); err != nil && !isSelfTransition(err) {
		return from, fmt.Errorf("%s from %s: %w", event, from, err)
	}
	return State(f.Current()), nil
}

// IsVolumeEvent reports whether event is one of VolumeEvents.
func IsVolumeEvent(event Event) bool { return slices.Contains(VolumeEvents, event) }

// VolumeSpec is what a volume create's intent records about the volume.
type VolumeSpec struct {
	Labels map[string]string `json:"labels,omitempty"`
	// Anonymous: made for an image's VOLUME (or a -v without a name); a
	// container's `rm -v` removes it, never a named one.
	Anonymous bool `json:"anonymous,omitempty"`
}

// VolumeView is the journal's view of one volume: the fold of its records.
type VolumeView struct {
	Name      string            `json:"name"`
	State     State             `json:"state"`
	Labels    map[string]string `json:"labels,omitempty"`
	Anonymous bool              `json:"anonymous,omitempty"`
	// Pending is an intent recorded without its outcome.
	Pending   *Pending  `json:"pending,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	Seq       uint64    `json:"seq"`
}

// Clone returns a deep copy.
func (v VolumeView) Clone() VolumeView {
	v.Labels = maps.Clone(v.Labels)
	if v.Pending != nil {
		p := *v.Pending
		if p.Args != nil {
			a := p.Args.clone()
			p.Args = &a
		}
		v.Pending = &p
	}
	return v
}

// The named steps of volume events: a create makes the directory, a
// remove deletes it with the data.
const (
	volumeStepDirectory = "directory"
	volumeStepDelete    = "delete"
)

// volumeStepsOf names the steps of a volume event, in order.
func volumeStepsOf(event Event) []string {
	switch event {
	case EventVolumeCreate:
		return []string{volumeStepDirectory}
	case EventVolumeRemove:
		return []string{volumeStepDelete}
	}
	return nil
}

// VolumeCrashPoints lists the crash points of volume transitions, derived
// from their steps as CrashPoints derives the containers'.
func VolumeCrashPoints() []string {
	var names []string
	for _, ev := range VolumeEvents {
		names = append(names, string(ev)+"."+stepAfterIntent)
		for _, s := range volumeStepsOf(ev) {
			names = append(names, string(ev)+".after-"+s)
		}
		names = append(names, string(ev)+"."+stepBeforeDone, string(ev)+"."+stepAfterDone)
	}
	return names
}

// VolumeOp is one volume transition: what its intent records and what its
// steps do. The driver knows no directories; the volume service builds the
// op.
type VolumeOp struct {
	Event Event
	Name  string
	// Spec is recorded with a create's intent.
	Spec *VolumeSpec
	// Do and Undo carry out and reverse the steps volumeStepsOf(Event)
	// names. Undo must also clean up after a Do that failed half-way.
	Do, Undo map[string]func() error
}

// VolumeJournal is the journal as the volume driver uses it.
type VolumeJournal interface {
	Commit(recs []Record, writes ...Write) ([]Record, error)
	Volume(name string) (VolumeView, bool)
}

// VolumeDeps are what the volume driver works through.
type VolumeDeps struct {
	Journal VolumeJournal
	Logger  *slog.Logger
	// CrashPoint, if set, is called at every named step (VolumeCrashPoints).
	CrashPoint func(name string)
}

// Volumes drives volume transitions: one at a time per volume, different
// volumes in parallel.
type Volumes struct {
	d     VolumeDeps
	mu    sync.Mutex
	slots map[string]chan struct{}
}

// NewVolumes returns a volume driver over d.
func NewVolumes(d VolumeDeps) *Volumes {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	return &Volumes{d: d, slots: map[string]chan struct{}{}}
}

// Lock holds volume name's slot until the returned function is called: a
// caller that must check and act on a volume (create it if it is missing)
// does both under it. Run must then be called as RunLocked.
func (vs *Volumes) Lock(ctx context.Context, name string) (func(), error) {
	vs.mu.Lock()
	s, ok := vs.slots[name]
	if !ok {
		s = make(chan struct{}, 1)
		vs.slots[name] = s
	}
	vs.mu.Unlock()
	select {
	case s <- struct{}{}:
		return func() { <-s }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for volume %s to finish its transition: %w", name, ctx.Err())
	}
}

func (vs *Volumes) crash(event Event, point string) {
	if vs.d.CrashPoint != nil {
		vs.d.CrashPoint(string(event) + "." + point)
	}
}

// Run runs op under the volume's slot: see RunLocked.
func (vs *Volumes) Run(ctx context.Context, op VolumeOp) (VolumeView, error) {
	unlock, err := vs.Lock(ctx, op.Name)
	if err != nil {
		return VolumeView{}, err
	}
	defer unlock()
	return vs.RunLocked(ctx, op)
}

// RunLocked runs op, its caller holding the volume's slot (Lock): the rule
// check and the intent (nothing done when either fails), the steps, and
// the DONE, or FAILED after undoing the steps. Once the intent is durable,
// the transition finishes even if ctx ends.
func (vs *Volumes) RunLocked(ctx context.Context, op VolumeOp) (VolumeView, error) {
	if !IsVolumeEvent(op.Event) || op.Name == "" {
		return VolumeView{}, fmt.Errorf("volume op %q of %q: %w", op.Event, op.Name, errdefs.ErrInvalidArgument)
	}
	view, _ := vs.d.Journal.Volume(op.Name)
	if view.Pending != nil {
		return view, fmt.Errorf("volume %s has an unfinished %s (intent %d) waiting for recovery: %w", errdefs.Quote(op.Name), view.Pending.Event, view.Pending.Seq, errdefs.ErrFailedPrecondition)
	}
	from := view.State
	to, err := VolumeTarget(from, op.Event)
	if err != nil {
		if op.Event == EventVolumeRemove && from == StateNone {
			return view, fmt.Errorf("no such volume: %s: %w", errdefs.Quote(op.Name), errdefs.ErrNotFound)
		}
		return view, err
	}
	if err := ctx.Err(); err != nil {
		return view, err
	}
	start := time.Now()
	var args *Args
	if op.Spec != nil {
		spec := *op.Spec
		spec.Labels = maps.Clone(spec.Labels)
		args = &Args{Volume: &spec}
	}
	recs, err := vs.d.Journal.Commit([]Record{{Kind: KindIntent, Object: ObjectVolume, ObjectID: op.Name, Event: op.Event, From: from, To: to, Args: args}})
	if err != nil {
		return view, fmt.Errorf("record intent to %s volume %s: %w", op.Event, errdefs.Quote(op.Name), err)
	}
	intent := recs[0]
	vs.crash(op.Event, stepAfterIntent)
	var done []string
	fail := func(cause error) (VolumeView, error) {
		for i := len(done) - 1; i >= 0; i-- {
			if undo := op.Undo[done[i]]; undo != nil {
				if uerr := undo(); uerr != nil {
					cause = fmt.Errorf("%w (and undoing %s: %w)", cause, done[i], uerr)
				}
			}
		}
		vs.crash(op.Event, stepBeforeDone)
		_, rerr := vs.d.Journal.Commit([]Record{{Kind: KindFailed, Object: ObjectVolume, ObjectID: op.Name, Event: op.Event, From: from, To: from, Intent: intent.Seq, Error: cause.Error()}})
		if rerr != nil {
			return view, fmt.Errorf("%w (and recording the failure: %w)", cause, rerr)
		}
		vs.crash(op.Event, stepAfterDone)
		vs.d.Logger.Warn("volume transition failed", "volume", op.Name, "event", op.Event, "intent", intent.Seq, "error", cause)
		v, _ := vs.d.Journal.Volume(op.Name)
		return v, cause
	}
	for _, name := range volumeStepsOf(op.Event) {
		if do := op.Do[name]; do != nil {
			if err := do(); err != nil {
				done = append(done, name) // an undo cleans up after a partial do
				return fail(fmt.Errorf("%s volume %s: %w", op.Event, errdefs.Quote(op.Name), err))
			}
		}
		done = append(done, name)
		vs.crash(op.Event, "after-"+name)
	}
	vs.crash(op.Event, stepBeforeDone)
	recs, err = vs.d.Journal.Commit([]Record{{Kind: KindDone, Object: ObjectVolume, ObjectID: op.Name, Event: op.Event, From: from, To: to, Intent: intent.Seq}})
	if err != nil {
		return fail(fmt.Errorf("%s volume %s: %w", op.Event, errdefs.Quote(op.Name), err))
	}
	vs.crash(op.Event, stepAfterDone)
	vs.d.Logger.Info("volume transition", "volume", op.Name, "event", op.Event, "seq", recs[0].Seq, "intent", intent.Seq, "duration", time.Since(start))
	v, ok := vs.d.Journal.Volume(op.Name)
	if !ok {
		v = VolumeView{Name: op.Name, State: to, Seq: recs[0].Seq}
	}
	return v, nil
}

// volumeNamePattern is Docker's rule for volume names, for error messages.
const volumeNamePattern = `[a-zA-Z0-9][a-zA-Z0-9_.-]+`

// maxVolumeName bounds a name: it is a directory name under the root.
const maxVolumeName = 255

// ValidateVolumeName refuses a name Docker would refuse (two characters at
// least: alphanumeric, then alphanumerics, '_', '.' or '-').
func ValidateVolumeName(name string) error {
	ok := len(name) >= 2 && len(name) <= maxVolumeName
	for i := 0; ok && i < len(name); i++ {
		c := name[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		ok = alnum || i > 0 && (c == '_' || c == '.' || c == '-')
	}
	if !ok {
		return fmt.Errorf("invalid volume name %s: must match %s (at most %d bytes): %w", errdefs.Quote(name), volumeNamePattern, maxVolumeName, errdefs.ErrInvalidArgument)
	}
	return nil
}
