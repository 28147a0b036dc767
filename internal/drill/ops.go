package drill

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/api/cairn/v1/cairnv1connect"
	"github.com/cairn-run/cairn/internal/apiclient"
)

// The commands the drill runs. Both append a line to /marker first, so the
// writable layer has something to lose; the long one turns SIGTERM into
// exit 42 (a shell as pid 1 of its namespace ignores an untrapped TERM),
// the short one exits with 3 by itself.
var (
	longCommand  = []string{"sh", "-c", `echo start >> /marker; trap "exit 42" TERM; while true; do sleep 0.05; done`}
	shortCommand = []string{"sh", "-c", `echo start >> /marker; exit 3`}
)

// endsByItself reports whether a container's command exits on its own.
func endsByItself(command []string) bool { return slices.Equal(command, shortCommand) }

type opKind int

const (
	opCreate opKind = iota
	opStart
	opStop
	opPause
	opUnpause
	opRestart
	opKill
	opRemove
	opForceRemove
	opLoad    // image load of one of the drill's archives
	opTag     // image tag of one of the drill's images
	opRmImage // image rm of a drill image or tag (refused while a container uses it)
	opPull    // pull of a drill image from the drill's registry
	opExec    // exec -d of a short command into a slot's container
	opVolume  // volume create or rm of one of the drill's scratch volumes
	numOpKinds
)

var opNames = [numOpKinds]string{"create", "start", "stop", "pause", "unpause", "restart", "kill", "rm", "rm -f", "image load", "image tag", "image rm", "pull", "exec", "volume"}

// opWeights favour the verbs that keep containers alive, so that most
// crashes find running and paused containers to recover; image and volume
// operations come now and then, so that some crashes find a load, tag,
// remove, pull or volume operation in flight.
var opWeights = [numOpKinds]int{4, 20, 6, 10, 10, 8, 4, 3, 4, 3, 2, 2, 3, 12, 3}

// isImageOp reports the operations on images, which need no slot.
func isImageOp(k opKind) bool { return k == opLoad || k == opTag || k == opRmImage || k == opPull }

// needsNoSlot reports the operations on images and volumes.
func needsNoSlot(k opKind) bool { return isImageOp(k) || k == opVolume }

// The drill's volumes: one every container mounts read-only at /v, whose
// bytes must survive every crash, and scratch volumes that volume ops
// create and remove.
const (
	drillVolume         = "drill-data"
	drillVolumeMount    = "/v"
	drillScratchVolumes = 2
)

// volumeOp creates the scratch volume it names if the daemon lists none of
// that name, and removes it otherwise.
func (o *operator) volumeOp(ctx context.Context, next op) error {
	if o.volumes == nil {
		return nil
	}
	name := fmt.Sprintf("drill-scratch-%d", next.tag%drillScratchVolumes)
	if _, err := o.volumes.Get(ctx, connect.NewRequest(&cairnv1.VolumeServiceGetRequest{Name: name})); connect.CodeOf(err) == connect.CodeNotFound {
		_, err := o.volumes.Create(ctx, connect.NewRequest(&cairnv1.VolumeServiceCreateRequest{Name: name}))
		return err
	}
	_, err := o.volumes.Remove(ctx, connect.NewRequest(&cairnv1.VolumeServiceRemoveRequest{Name: name}))
	return err
}

// op is one lifecycle operation on a slot. On an empty slot every op is a
// create; a create on an occupied slot is a start.
type op struct {
	kind    opKind
	slot    int
	timeout int32  // stop, restart: grace period in seconds
	signal  string // kill
	short   bool   // create: the command that exits by itself
	start   bool   // create: start it right away
	image   int    // create: which image (0: busybox); load, tag, rm: which of the drill's images
	tag     int    // tag, rm: which tag
}

// randomOp draws an operation. It always draws the same number of values,
// so that a seed gives the same sequence whatever the slots hold.
func randomOp(r *rand.Rand, slots int) op {
	total := 0
	for _, w := range opWeights {
		total += w
	}
	pick, kind := r.IntN(total), opKind(0)
	for pick >= opWeights[kind] {
		pick -= opWeights[kind]
		kind++
	}
	o := op{kind: kind, slot: r.IntN(slots), timeout: int32(r.IntN(3)), signal: "KILL", short: r.IntN(5) == 0, start: r.IntN(5) != 0,
		image: r.IntN(1 << 16), tag: r.IntN(1 << 16)}
	if r.IntN(2) == 0 {
		o.signal = "TERM"
	}
	return o
}

// opStats counts the outcomes of a cycle's operations.
type opStats struct {
	Done    int // returned
	OK      int
	Refused int // FailedPrecondition, NotFound, AlreadyExists: expected from racing operations
	Cut     int // failed because the daemon was killed
	Odd     []string
	// Images and ImagesOK count the image operations among them (load,
	// tag, rm) and those that succeeded.
	Images, ImagesOK int
	// Execs and ExecsOK count the exec sessions asked for and started.
	Execs, ExecsOK int
}

// operator issues random operations on up to len(slots) containers and
// keeps what the checks need to know: which containers an operation was in
// flight on at the crash, which were signaled.
type operator struct {
	api   cairnv1connect.ContainerServiceClient
	image string
	// images and archives are the drill's own images: loaded, tagged and
	// removed among the containers' operations, and run by some of them.
	images   cairnv1connect.ImageServiceClient
	archives []drillImage
	// registry, when the drill has one, serves the drill's images to pulls.
	registry *registryProc
	// volumes, if set, makes the containers mount the drill's volume and
	// the volume ops run.
	volumes cairnv1connect.VolumeServiceClient

	mu       sync.Mutex
	slots    []string // container id per slot, "" when empty
	creating []bool
	inflight map[string]int
	marking  bool
	touched  map[string]bool
	signaled map[string]int64
	// execs are the exec sessions whose start the daemon answered, by
	// session id: their container.
	execs   map[string]string
	stats   opStats
	crashed atomic.Bool
}

func newOperator(api cairnv1connect.ContainerServiceClient, image string, slots int) *operator {
	return &operator{
		api: api, image: image, slots: make([]string, slots), creating: make([]bool, slots),
		inflight: map[string]int{}, touched: map[string]bool{}, signaled: map[string]int64{},
		execs: map[string]string{},
	}
}

// workers is how many operations may be in flight at once.
const workers = 3

// opTimeout bounds one operation: a stop's grace is at most 2 s.
const opTimeout = 15 * time.Second

// runCycle issues operations until the crash: once crashAfter operations
// were issued it waits crashDelay and calls crash, still issuing while crash
// runs, so that operations are in flight when the daemon dies. It returns
// once crash has returned and every operation has.
func (o *operator) runCycle(ctx context.Context, r *rand.Rand, crashAfter int, crashDelay time.Duration, crash func()) opStats {
	o.mu.Lock()
	o.stats, o.marking, o.touched = opStats{}, false, map[string]bool{}
	o.mu.Unlock()
	o.crashed.Store(false)

	work := make(chan op)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for next := range work {
				o.do(ctx, next)
			}
		})
	}
	var timer <-chan time.Time
	crashed := make(chan struct{})
	crashing := false
	next := randomOp(r, len(o.slots))
loop:
	for issued := 0; ; {
		if issued == crashAfter && timer == nil && !crashing {
			timer = time.After(crashDelay)
		}
		select {
		case work <- next:
			issued++
			next = randomOp(r, len(o.slots))
		case <-timer:
			timer, crashing = nil, true
			go func() { crash(); close(crashed) }()
		case <-crashed:
			break loop
		case <-ctx.Done():
			if crashing {
				<-crashed // the caller must not go on while the kill is under way
			}
			break loop
		}
	}
	close(work)
	wg.Wait()
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.stats
}

// markTouched starts recording the containers operations touch: those in
// flight now and any started later. The list read after it is then exact
// for every container not recorded.
func (o *operator) markTouched() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.marking = true
	for id := range o.inflight {
		o.touched[id] = true
	}
}

// touchedSet returns the containers recorded since markTouched.
func (o *operator) touchedSet() map[string]bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return maps.Clone(o.touched)
}

func (o *operator) signaledSet() map[string]int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return maps.Clone(o.signaled)
}

// resolve claims a slot for an operation: its container id, or a create.
func (o *operator) resolve(next op) (id string, kind opKind, ok bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.creating[next.slot] {
		return "", 0, false // a create on this slot has not returned: its id is not known yet
	}
	id, kind = o.slots[next.slot], next.kind
	switch {
	case id == "":
		kind = opCreate
		o.creating[next.slot] = true
	case kind == opCreate:
		kind = opStart
	}
	if id != "" {
		o.enter(id)
	}
	return id, kind, true
}

// enter and leave track operations in flight; o.mu is held.
func (o *operator) enter(id string) {
	o.inflight[id]++
	if o.marking {
		o.touched[id] = true
	}
}

func (o *operator) leave(id string) {
	if o.inflight[id]--; o.inflight[id] <= 0 {
		delete(o.inflight, id)
	}
}

func (o *operator) do(ctx context.Context, next op) {
	if o.crashed.Load() {
		return // the daemon is being killed: an operation now could only fail
	}
	if needsNoSlot(next.kind) {
		ctx, cancel := context.WithTimeout(ctx, opTimeout)
		defer cancel()
		var err error
		if next.kind == opVolume {
			err = o.volumeOp(ctx, next)
		} else {
			err = o.imageOp(ctx, next)
		}
		o.mu.Lock()
		defer o.mu.Unlock()
		o.count(next.kind, "", err)
		return
	}
	id, kind, ok := o.resolve(next)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	if kind == opCreate {
		o.create(ctx, next)
		return
	}
	err := o.call(ctx, kind, id, next)
	o.mu.Lock()
	defer o.mu.Unlock()
	o.leave(id)
	o.count(kind, id, err)
	// Only a removal says the container is gone: NotFound may be about its
	// process (a kill racing an exit), and the slots are brought in line
	// with the daemon's list after each recovery anyway.
	if err == nil && (kind == opRemove || kind == opForceRemove) {
		o.forget(id)
	}
}

// forget empties the slot of a container that is gone; o.mu is held.
func (o *operator) forget(id string) {
	if i := slices.Index(o.slots, id); i >= 0 {
		o.slots[i] = ""
	}
	delete(o.signaled, id)
}

func (o *operator) create(ctx context.Context, next op) {
	command := longCommand
	if next.short {
		command = shortCommand
	}
	req := &cairnv1.CreateRequest{Image: o.imageFor(next), Command: command, RestartPolicy: policyFor(next)}
	if o.volumes != nil {
		req.Mounts = []*cairnv1.Mount{{Type: cairnv1.MountType_MOUNT_TYPE_VOLUME, Source: drillVolume, Destination: drillVolumeMount, ReadOnly: true}}
	}
	res, err := o.api.Create(ctx, connect.NewRequest(req))
	o.mu.Lock()
	o.creating[next.slot] = false
	o.count(opCreate, "", err)
	if err != nil || !next.start {
		if err == nil {
			o.slots[next.slot] = res.Msg.Container.Id
		}
		o.mu.Unlock()
		return
	}
	id := res.Msg.Container.Id
	o.slots[next.slot] = id
	o.enter(id)
	o.mu.Unlock()
	err = o.call(ctx, opStart, id, next)
	o.mu.Lock()
	defer o.mu.Unlock()
	o.leave(id)
	o.count(opStart, id, err)
}

// call issues one RPC.
func (o *operator) call(ctx context.Context, kind opKind, id string, next op) error {
	var err error
	switch kind {
	case opStart:
		_, err = o.api.Start(ctx, connect.NewRequest(&cairnv1.StartRequest{Id: id}))
	case opStop:
		_, err = o.api.Stop(ctx, connect.NewRequest(&cairnv1.StopRequest{Id: id, TimeoutSeconds: &next.timeout}))
	case opPause:
		_, err = o.api.Pause(ctx, connect.NewRequest(&cairnv1.PauseRequest{Id: id}))
	case opUnpause:
		_, err = o.api.Unpause(ctx, connect.NewRequest(&cairnv1.UnpauseRequest{Id: id}))
	case opRestart:
		_, err = o.api.Restart(ctx, connect.NewRequest(&cairnv1.RestartRequest{Id: id, TimeoutSeconds: &next.timeout}))
	case opKill:
		// Whatever the answer, the signal may have gone out: the process
		// may die later, asynchronously. The pid, when known, says which
		// process was meant.
		var res *connect.Response[cairnv1.KillResponse]
		res, err = o.api.Kill(ctx, connect.NewRequest(&cairnv1.KillRequest{Id: id, Signal: next.signal}))
		var pid int64
		if err == nil && res.Msg.Container != nil {
			pid = res.Msg.Container.Pid
		}
		o.mu.Lock()
		o.signaled[id] = pid
		o.mu.Unlock()
	case opRemove, opForceRemove:
		_, err = o.api.Remove(ctx, connect.NewRequest(&cairnv1.RemoveRequest{Id: id, Force: kind == opForceRemove}))
	case opExec:
		err = o.exec(ctx, id, next)
	default:
		err = fmt.Errorf("drill: no call for %s", opNames[kind])
	}
	return err
}

// execCode is what the drill's exec sessions exit with by themselves.
const execCode = 5

// exec starts a detached exec session that ends by itself within half a
// second, and keeps its id once the daemon answered.
func (o *operator) exec(ctx context.Context, id string, next op) error {
	stream := o.api.Exec(ctx)
	defer func() { _ = stream.CloseResponse() }()
	sleep := fmt.Sprintf("0.%d", next.tag%6)
	start := &cairnv1.ExecStart{Container: id, Detach: true,
		Command: []string{"sh", "-c", fmt.Sprintf("sleep %s; exit %d", sleep, execCode)}}
	if err := stream.Send(&cairnv1.ExecRequest{Start: start}); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	msg, err := stream.Receive()
	if err != nil {
		return err
	}
	if msg.Session != nil {
		o.mu.Lock()
		o.execs[msg.Session.Id] = id
		o.mu.Unlock()
	}
	return nil
}

// execSet returns the exec sessions the daemon said it started.
func (o *operator) execSet() map[string]string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return maps.Clone(o.execs)
}

// drillImage is one of the drill's images: its archive and its name.
type drillImage struct {
	name    string
	archive []byte
}

// drillTags are the names the drill's tag operations give.
const drillTags = 3

func (o *operator) tagName(n int) string { return fmt.Sprintf("drill/tag-%d:latest", n%drillTags) }

// imageFor picks the image a create runs: busybox, or one of the drill's
// (which may be gone: then the create is refused, NotFound).
func (o *operator) imageFor(next op) string {
	if n := next.image % (len(o.archives) + 2); n < len(o.archives) {
		return o.archives[n].name
	}
	return o.image
}

// imageOp loads, tags or removes one of the drill's images.
func (o *operator) imageOp(ctx context.Context, next op) error {
	if len(o.archives) == 0 || o.images == nil {
		return nil
	}
	img := o.archives[next.image%len(o.archives)]
	switch next.kind {
	case opLoad:
		_, err := apiclient.LoadImage(ctx, o.images, bytes.NewReader(img.archive))
		return err
	case opTag:
		_, err := o.images.Tag(ctx, connect.NewRequest(&cairnv1.ImageServiceTagRequest{Source: img.name, Target: o.tagName(next.tag)}))
		return err
	case opPull:
		if o.registry == nil {
			return nil
		}
		_, err := apiclient.PullImage(ctx, o.images, &cairnv1.ImageServicePullRequest{Ref: o.registry.remoteName(img.name), Auth: &cairnv1.RegistryAuth{Insecure: true}}, nil)
		return err
	case opRmImage:
		ref := img.name
		if next.tag%2 == 0 {
			ref = o.tagName(next.tag / 2)
		}
		_, err := o.images.Remove(ctx, connect.NewRequest(&cairnv1.ImageServiceRemoveRequest{Name: ref}))
		return err
	}
	return fmt.Errorf("drill: no image call for %s", opNames[next.kind])
}

// count files an operation's outcome; o.mu is held.
func (o *operator) count(kind opKind, id string, err error) {
	o.stats.Done++
	if isImageOp(kind) {
		o.stats.Images++
		if err == nil {
			o.stats.ImagesOK++
		}
	}
	if kind == opExec {
		o.stats.Execs++
		if err == nil {
			o.stats.ExecsOK++
		}
	}
	switch code := connect.CodeOf(err); {
	case err == nil:
		o.stats.OK++
	case code == connect.CodeFailedPrecondition || code == connect.CodeNotFound || code == connect.CodeAlreadyExists:
		o.stats.Refused++
	case o.crashed.Load() || errors.Is(err, context.Canceled):
		o.stats.Cut++
	default:
		o.stats.Odd = append(o.stats.Odd, fmt.Sprintf("%s %s: %v", opNames[kind], shortID(id), err))
	}
}

// settle brings the slots in line with the daemon's list after a recovery:
// containers gone leave their slot, containers the drill lost track of
// (a create cut by the crash) take an empty one. It returns those that
// found no slot.
func (o *operator) settle(cs []*cairnv1.Container) (extra []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	listed := byID(cs)
	for i, id := range o.slots {
		if listed[id] == nil || listed[id].State == stateRemoved {
			o.slots[i] = ""
		}
		o.creating[i] = false
	}
	ids := make([]string, 0, len(cs))
	for _, c := range cs {
		if c.State != stateRemoved && !slices.Contains(o.slots, c.Id) {
			ids = append(ids, c.Id)
		}
	}
	sort.Strings(ids)
	for _, id := range ids {
		if i := slices.Index(o.slots, ""); i >= 0 {
			o.slots[i] = id
		} else {
			extra = append(extra, id)
		}
	}
	// A signal is spent once its process is gone.
	for id, pid := range o.signaled {
		if c := listed[id]; c == nil || !hasProcess(c.State) || (pid != 0 && c.Pid != pid) {
			delete(o.signaled, id)
		}
	}
	o.inflight = map[string]int{}
	return extra
}

// slotOf returns a container's slot, or len(slots) when it has none: the
// order victims are drawn in, stable for a given seed.
func (o *operator) slotOf(id string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	if i := slices.Index(o.slots, id); i >= 0 {
		return i
	}
	return len(o.slots)
}

// plan is what a cycle draws from the drill's generator before it starts,
// always the same number of values, so that a seed replays the same
// choices: the operations' own generator, when to crash, what else to kill.
type plan struct {
	opsSeed    uint64
	crashAfter int           // operations issued before the crash timer starts
	crashDelay time.Duration // then this long, with operations still going
	killShim   bool
	killProc   bool
	sameVictim bool // kill shim and process of one container
	shimPick   int  // index (mod the candidates) of the shim victim
	procPick   int  // and of the process victim
}

func newPlan(r *rand.Rand, containers int) plan {
	return plan{
		opsSeed:    r.Uint64(),
		crashAfter: 1 + r.IntN(3*containers+2),
		crashDelay: time.Duration(r.IntN(40)) * time.Millisecond,
		killShim:   r.IntN(10) < 4,
		killProc:   r.IntN(10) < 5,
		sameVictim: r.IntN(2) == 0,
		shimPick:   r.IntN(1 << 16),
		procPick:   r.IntN(1 << 16),
	}
}
