package statemachine

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/looplab/fsm"

	"github.com/cairn-run/cairn/internal/errdefs"
)

// Images are journaled objects of kind "image" (ObjectImage), keyed by
// image id ("sha256:<hex>" of the config), with their own events, rule
// table, steps and crash points, and the same protocol as containers: the
// rule is checked, the INTENT is durable before anything lands in the
// layer store, the steps run, and DONE commits together with the store's
// registration (or removal) in one transaction, or FAILED after undoing.
//
// Reading and verifying what a load brings (the archive, every layer
// extracted into the store's scratch directory and checked against its
// digests) happens before the intent, as reading a create request does: a
// refused archive writes nothing, not even a record. What the intent
// covers is what lands in the store: layers/ and the records. A commit
// stages its layer (the container's changes) before its intent in the
// same way. A pull is the exception: its manifest and config are checked
// before the intent, but its layers are downloaded after it, in its
// "fetch" step, into the store's scratch directory (which every start
// wipes), so that a long download is visible as an unfinished pull and a
// crash during it is rolled back like any other, except that each layer
// fetched whole and verified is kept under a cacheID the intent claims
// (layer.KeepVerified) for the next pull to resume with.

// Image events, Docker's names for them.
const (
	EventLoad   Event = "load"   // an archive's image (cairn image load)
	EventImport Event = "import" // a rootfs tar as an image (cairn image import)
	EventTag    Event = "tag"    // a name given to an image
	EventUntag  Event = "untag"  // a name removed; the image keeps its others
	EventDelete Event = "delete" // the image removed with every name
	EventPull   Event = "pull"   // an image fetched from a registry (cairn pull)
	EventCommit Event = "commit" // a container's changes as a new image (cairn commit)
)

// ImageEvents are the image events, in the order ImageCrashPoints lists them.
var ImageEvents = []Event{EventLoad, EventImport, EventTag, EventUntag, EventDelete, EventPull, EventCommit}

// StatePresent is the state of a registered image. An image without a
// view (StateNone) is one the journal has no record of: one registered
// before images were journaled, or none at all; the store says which.
const StatePresent State = "present"

// imageRules is the rule table of images. An image the journal does not
// know (StateNone) may be tagged, untagged and deleted: it may be one
// imported before images were journaled.
var imageRules = fsm.Events{
	{Name: string(EventLoad), Src: []string{string(StateNone), string(StatePresent)}, Dst: string(StatePresent)},
	{Name: string(EventImport), Src: []string{string(StateNone), string(StatePresent)}, Dst: string(StatePresent)},
	{Name: string(EventTag), Src: []string{string(StateNone), string(StatePresent)}, Dst: string(StatePresent)},
	{Name: string(EventUntag), Src: []string{string(StateNone), string(StatePresent)}, Dst: string(StatePresent)},
	{Name: string(EventDelete), Src: []string{string(StateNone), string(StatePresent)}, Dst: string(StateRemoved)},
	{Name: string(EventPull), Src: []string{string(StateNone), string(StatePresent)}, Dst: string(StatePresent)},
	{Name: string(EventCommit), Src: []string{string(StateNone), string(StatePresent)}, Dst: string(StatePresent)},
}

// ImageTarget returns the state an image event leads to from state from,
// or ErrFailedPrecondition when the rules forbid it.
func ImageTarget(from State, event Event) (State, error) {
	f := fsm.NewFSM(string(from), imageRules, nil)
	if !f.Can(string(event)) {
		return from, fmt.Errorf("cannot %s an image that is %q: %w", event, from, errdefs.ErrFailedPrecondition)
	}
	if err := f.Event(context.Background(), string(event)); err != nil && !isSelfTransition(err) {
		return from, fmt.Errorf("%s from %s: %w", event, from, err)
	}
	return State(f.Current()), nil
}

// IsImageEvent reports whether event is one of ImageEvents.
func IsImageEvent(event Event) bool { return slices.Contains(ImageEvents, event) }

// ImageView is the journal's view of one image: the fold of its records.
// The layer store holds what the image is (names, layers, config); the
// view says what the journal proves about it and what is unfinished.
type ImageView struct {
	ID    string `json:"id"`
	State State  `json:"state"`
	// Pending is an intent recorded without its outcome.
	Pending *Pending `json:"pending,omitempty"`
	// CreatedAt is when the journal first registered the image.
	CreatedAt time.Time `json:"created_at"`
	Seq       uint64    `json:"seq"`
}

// Clone returns a deep copy.
func (v ImageView) Clone() ImageView {
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

// LayerClaim is a layer a load installs: the chain position and the
// directory (cacheID) it takes. An unfinished load's claims are what
// recovery removes.
type LayerClaim struct {
	ChainID string `json:"chain_id"`
	CacheID string `json:"cache_id"`
}

// The named steps of image events. A load's or import's only side effect
// before its DONE is moving its verified layers into the store; the
// registration, like the name changes of tag, untag and delete, rides with
// the DONE.
const imageStepLayers = "layers"

// imageStepFetch is a pull's download of the layers the store lacks into
// the store's scratch directory, each checked against its digests as it
// is extracted, then kept in the store's verified/ under the cacheID its
// claim names (recovery keeps the complete ones and its record lists
// them). (A commit stages its layer before its intent, as a load does.)
const imageStepFetch = "fetch"

// imageStepsOf names the steps of an image event, in order.
func imageStepsOf(event Event) []string {
	switch event {
	case EventLoad, EventImport, EventCommit:
		return []string{imageStepLayers}
	case EventPull:
		return []string{imageStepFetch, imageStepLayers}
	}
	return nil
}

// CrashPullAfterKeptLayer is the crash point a pull reaches inside its
// fetch step each time a layer is verified and kept (layer.KeepVerified):
// a crash there leaves whole layers for the next pull to resume with.
const CrashPullAfterKeptLayer = "pull.after-kept-layer"

// ImageCrashPoints lists the crash points of image transitions, derived
// from their steps as CrashPoints derives the containers'.
func ImageCrashPoints() []string {
	var names []string
	for _, ev := range ImageEvents {
		names = append(names, string(ev)+"."+stepAfterIntent)
		for _, s := range imageStepsOf(ev) {
			if ev == EventPull && s == imageStepFetch {
				names = append(names, CrashPullAfterKeptLayer)
			}
			names = append(names, string(ev)+".after-"+s)
		}
		names = append(names, string(ev)+"."+stepBeforeDone, string(ev)+"."+stepAfterDone)
	}
	return names
}

// ImageOp is one image transition to run: what its intent records and
// what its steps and outcome do. The driver knows no layer store; the
// image service builds the op from it.
type ImageOp struct {
	Event Event
	ID    string
	// Refs are the names the operation gives or takes.
	Refs []string
	// Layers are the directories a load or import installs.
	Layers []LayerClaim
	// Do and Undo carry out and reverse the steps imageStepsOf(Event)
	// names; a step without Do does nothing. Undo must also clean up after
	// a Do that failed half-way.
	Do, Undo map[string]func() error
	// Outcome returns the store write committed with the DONE (the
	// registration, the untag, the delete), called once the steps are done.
	Outcome func() (Write, error)
	// After runs once the DONE is durable: removing what the write freed.
	After func()
}

// ImageJournal is the journal as the image driver uses it.
type ImageJournal interface {
	Commit(recs []Record, writes ...Write) ([]Record, error)
	Image(id string) (ImageView, bool)
}

// ImageDeps are what the image driver works through.
type ImageDeps struct {
	Journal ImageJournal
	Logger  *slog.Logger
	// CrashPoint, if set, is called at every named step (ImageCrashPoints).
	CrashPoint func(name string)
}

// Images drives image transitions: one at a time per image, different
// images in parallel.
type Images struct {
	d     ImageDeps
	mu    sync.Mutex
	slots map[string]chan struct{}
}

// NewImages returns an image driver over d.
func NewImages(d ImageDeps) *Images {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	return &Images{d: d, slots: map[string]chan struct{}{}}
}

func (im *Images) lock(ctx context.Context, id string) (func(), error) {
	im.mu.Lock()
	s, ok := im.slots[id]
	if !ok {
		s = make(chan struct{}, 1)
		im.slots[id] = s
	}
	im.mu.Unlock()
	select {
	case s <- struct{}{}:
		return func() { <-s }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for image %s to finish its transition: %w", id, ctx.Err())
	}
}

func (im *Images) crash(event Event, point string) {
	if im.d.CrashPoint != nil {
		im.d.CrashPoint(string(event) + "." + point)
	}
}

// Run runs op: the rule check and the intent (nothing done when either
// fails), the steps, and the DONE with the outcome's write, or FAILED
// after undoing the steps. Once the intent is durable, the transition
// finishes even if ctx ends.
func (im *Images) Run(ctx context.Context, op ImageOp) (ImageView, error) {
	if !IsImageEvent(op.Event) || op.ID == "" || op.Outcome == nil {
		return ImageView{}, fmt.Errorf("image op %q of %q: %w", op.Event, op.ID, errdefs.ErrInvalidArgument)
	}
	unlock, err := im.lock(ctx, op.ID)
	if err != nil {
		return ImageView{}, err
	}
	defer unlock()
	view, _ := im.d.Journal.Image(op.ID)
	if view.Pending != nil {
		return view, fmt.Errorf("image %s has an unfinished %s (intent %d) waiting for recovery: %w", op.ID, view.Pending.Event, view.Pending.Seq, errdefs.ErrFailedPrecondition)
	}
	from := view.State
	to, err := ImageTarget(from, op.Event)
	if err != nil {
		return view, err
	}
	if err := ctx.Err(); err != nil {
		return view, err
	}
	start := time.Now()
	args := &Args{Refs: op.Refs, Layers: op.Layers}
	recs, err := im.d.Journal.Commit([]Record{{Kind: KindIntent, Object: ObjectImage, ObjectID: op.ID, Event: op.Event, From: from, To: to, Args: args}})
	if err != nil {
		return view, fmt.Errorf("record intent to %s image %s: %w", op.Event, op.ID, err)
	}
	intent := recs[0]
	im.crash(op.Event, stepAfterIntent)
	var done []string
	fail := func(cause error) (ImageView, error) {
		for i := len(done) - 1; i >= 0; i-- {
			if undo := op.Undo[done[i]]; undo != nil {
				if uerr := undo(); uerr != nil {
					cause = fmt.Errorf("%w (and undoing %s: %w)", cause, done[i], uerr)
				}
			}
		}
		im.crash(op.Event, stepBeforeDone)
		_, rerr := im.d.Journal.Commit([]Record{{Kind: KindFailed, Object: ObjectImage, ObjectID: op.ID, Event: op.Event, From: from, To: from, Intent: intent.Seq, Error: cause.Error()}})
		if rerr != nil {
			return view, fmt.Errorf("%w (and recording the failure: %w)", cause, rerr)
		}
		im.crash(op.Event, stepAfterDone)
		im.d.Logger.Warn("image transition failed", "image", op.ID, "event", op.Event, "intent", intent.Seq, "error", cause)
		v, _ := im.d.Journal.Image(op.ID)
		return v, cause
	}
	for _, name := range imageStepsOf(op.Event) {
		if do := op.Do[name]; do != nil {
			if err := do(); err != nil {
				// A step that failed half-way is undone too: an image
				// step's undo cleans up after a partial do.
				done = append(done, name)
				return fail(fmt.Errorf("%s image %s: %w", op.Event, op.ID, err))
			}
		}
		done = append(done, name)
		im.crash(op.Event, "after-"+name)
	}
	write, err := op.Outcome()
	if err != nil {
		return fail(err)
	}
	im.crash(op.Event, stepBeforeDone)
	var writes []Write
	if write != nil {
		writes = append(writes, write)
	}
	recs, err = im.d.Journal.Commit([]Record{{Kind: KindDone, Object: ObjectImage, ObjectID: op.ID, Event: op.Event, From: from, To: to, Intent: intent.Seq}}, writes...)
	if err != nil {
		// A refused write refuses the DONE with it: nothing was registered.
		return fail(fmt.Errorf("%s image %s: %w", op.Event, op.ID, err))
	}
	im.crash(op.Event, stepAfterDone)
	im.d.Logger.Info("image transition", "image", op.ID, "event", op.Event, "refs", op.Refs, "seq", recs[0].Seq, "intent", intent.Seq, "duration", time.Since(start))
	if op.After != nil {
		op.After()
	}
	v, ok := im.d.Journal.Image(op.ID)
	if !ok {
		v = ImageView{ID: op.ID, State: to, Seq: recs[0].Seq}
	}
	return v, nil
}
