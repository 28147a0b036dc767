// Package drill is `cairn drill`: a crash-recovery drill an operator can
// run against a cairnd build. It starts its own daemon on a scratch root,
// drives random lifecycle and image operations (load, tag, rm of its own
// images, and pulls of them from a docker-registry it starts on 127.0.0.1
// when Debian's docker-registry is installed) through the API, kills the daemon with SIGKILL while they are in
// flight (sometimes a shim or a container process too), restarts it, and
// checks that what the daemon says after recovery is what the machine
// shows: states, processes, exit codes, files in writable layers, every
// image whole with one layer directory per chain position, nothing
// leaked, no container started twice and every restart count exact (some
// of its containers have restart policies; see restarts.go).
//
// It never touches a daemon it did not start: everything it creates lives
// under its own scratch directory and cgroup parent, and it removes both at
// the end.
package drill

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"connectrpc.com/connect"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/internal/apiclient"
	"github.com/cairn-run/cairn/internal/busybox"
)

// Config is a drill's configuration.
type Config struct {
	Cycles     int
	Containers int // at most this many containers at a time
	Seed       uint64
	// Keep leaves the scratch directory (journal, logs, layers) in place.
	Keep    bool
	Cairnd  string // the daemon binary to drill
	Cairn   string // the CLI binary, for `cairn journal check`
	Busybox string // a static busybox, for the image
	Out     io.Writer
}

// imageName is the image every drill container runs.
const imageName = "busybox"

// ErrViolations is returned when a drill found broken invariants.
var ErrViolations = errors.New("recovery invariants violated")

// run is one drill in progress.
type run struct {
	cfg          Config
	dir          string // scratch directory: daemon root, socket, log
	root         string // the daemon's --root
	cgroupParent string
	daemon       *daemonProc
	registry     *registryProc // nil without docker-registry
	ops          *operator
	observer     observer
	// shimLost maps containers whose shim the drill killed to the pid
	// the shim ran then: until that container runs another process, its
	// exit code may be unknown.
	shimLost map[string]int64
	reported map[string]bool // keys of the violations reported so far
}

// Run runs a drill and returns its summary; the error is non-nil when an
// invariant was violated, the daemon did not come back, or ctx ended it.
// It always cleans up after itself.
func Run(ctx context.Context, cfg Config) (sum Summary, err error) {
	if cfg.Cycles < 1 || cfg.Containers < 1 {
		return sum, fmt.Errorf("drill: need at least one cycle and one container, got %d and %d", cfg.Cycles, cfg.Containers)
	}
	if cfg.Busybox == "" {
		cfg.Busybox = busybox.DefaultPath
	}
	dir, err := os.MkdirTemp("", "cairn-drill-")
	if err != nil {
		return sum, fmt.Errorf("drill: scratch directory: %w", err)
	}
	r := &run{cfg: cfg, dir: dir, root: filepath.Join(dir, "root"), cgroupParent: "cairn-drill-" + randomHex(6), shimLost: map[string]int64{}, reported: map[string]bool{}}
	r.daemon = newDaemonProc(cfg.Cairnd, r.root, filepath.Join(dir, "s.sock"), r.cgroupParent, filepath.Join(dir, "cairnd.log"))
	r.daemon.net = newDrillNet()
	r.observer = observer{dir: dir, execDir: filepath.Join(r.root, "exec"), layerDir: filepath.Join(r.root, "layer"), cgroupParent: r.cgroupParent, netnsDir: filepath.Join(r.daemon.net.runDir, "netns")}
	r.ops = newOperator(r.daemon.clients.Containers, imageName, cfg.Containers)
	r.ops.images = r.daemon.clients.Images
	r.ops.volumes = r.daemon.clients.Volumes
	r.observer.volumeDir = filepath.Join(r.root, "volumes")
	fmt.Fprintf(cfg.Out, "drill: %s, %d cycles, up to %d containers, seed %d, root %s, cgroup parent %s\n",
		cfg.Cairnd, cfg.Cycles, cfg.Containers, cfg.Seed, dir, r.cgroupParent)
	defer func() {
		leftovers := r.cleanup()
		for _, l := range leftovers {
			fmt.Fprintf(cfg.Out, "  VIOLATION after the drill: leak: expected nothing left once every container was removed and the daemon stopped; seen %s\n", l)
		}
		sum.Violations += len(leftovers)
		sum.print(cfg.Out)
		if cfg.Keep {
			fmt.Fprintf(cfg.Out, "drill: kept %s (daemon root in root/, its log in cairnd.log)\n", dir)
		}
		if err == nil && sum.Violations > 0 {
			err = fmt.Errorf("%d violations: %w", sum.Violations, ErrViolations)
		}
	}()

	if _, err := r.daemon.start(ctx); err != nil {
		return sum, fmt.Errorf("drill: first start: %w", err)
	}
	if err := r.importImage(ctx); err != nil {
		return sum, err
	}
	if err := r.loadImages(ctx); err != nil {
		return sum, err
	}
	if r.registry, err = r.startRegistry(ctx); err != nil {
		return sum, err
	}
	if err := r.pushImages(ctx); err != nil {
		return sum, err
	}
	if err := r.seedVolume(ctx); err != nil {
		return sum, err
	}
	master := mrand.New(mrand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))
	for n := 1; n <= cfg.Cycles; n++ {
		res, cycleErr := r.cycle(ctx, n, master)
		if ctx.Err() != nil {
			// What an interrupted cycle saw is the interruption's doing.
			return sum, fmt.Errorf("drill interrupted in cycle %d: %w", n, ctx.Err())
		}
		r.dropRepeated(&res)
		sum.add(res)
		printCycle(cfg.Out, cfg.Cycles, res)
		if cycleErr != nil {
			return sum, fmt.Errorf("cycle %d: %w", n, cycleErr)
		}
	}
	return sum, nil
}

// cycle runs operations, crashes the daemon among them, kills what the plan
// says, checks the journal, restarts the daemon and judges the recovery.
// The error is set when the daemon did not come back.
func (r *run) cycle(ctx context.Context, n int, master *mrand.Rand) (cycleResult, error) {
	p := newPlan(master, r.cfg.Containers)
	res := cycleResult{Cycle: n}
	cr := Crash{Cycle: n, KilledProc: map[string]bool{}, KilledShim: map[string]bool{}, ShimLost: map[string]bool{}}
	for id := range r.shimLost {
		cr.ShimLost[id] = true
	}
	var killErr error
	res.Ops = r.ops.runCycle(ctx, mrand.New(mrand.NewPCG(p.opsSeed, uint64(n))), p.crashAfter, p.crashDelay, func() {
		r.ops.markTouched()
		listCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		list, err := r.daemon.clients.Containers.List(listCtx, connect.NewRequest(&cairnv1.ListRequest{All: true}))
		cancel()
		if err == nil {
			cr.Before = list.Msg.Containers
		}
		r.ops.crashed.Store(true)
		killErr = r.daemon.kill()
		res.Crashed = true
	})
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	cr.Touched, cr.Signaled, cr.Execs = r.ops.touchedSet(), r.ops.signaledSet(), r.ops.execSet()
	if killErr != nil {
		res.Violations = append(res.Violations, Violation{Cycle: n, Invariant: "daemon", Expected: "alive until the drill killed it", Seen: oneLine(killErr.Error() + "; " + r.daemon.logTail(5))})
	}
	r.killVictims(p, &cr, &res)
	var jv *Violation
	res.Journal, jv = r.checkJournal(ctx, n)
	if jv != nil {
		res.Violations = append(res.Violations, *jv)
	}
	recovery, err := r.daemon.start(ctx)
	if err != nil {
		// The error, with the tail of the daemon's log, ends the drill's output.
		first, _, _ := strings.Cut(err.Error(), "\n")
		res.Violations = append(res.Violations, Violation{Cycle: n, Invariant: "daemon", Expected: "SERVING again after the crash", Seen: first})
		return res, err
	}
	res.Recovery = recovery
	obs, violations := r.judge(ctx, cr)
	res.Violations = append(res.Violations, violations...)
	res.States = countStates(obs.Containers)
	r.forgetLostShims(obs.Containers)
	for _, id := range r.ops.settle(obs.Containers) {
		rmCtx, cancel := context.WithTimeout(ctx, opTimeout)
		_, _ = r.daemon.clients.Containers.Remove(rmCtx, connect.NewRequest(&cairnv1.RemoveRequest{Id: id, Force: true}))
		cancel()
	}
	return res, nil
}

// forgetLostShims drops the lost-shim mark of containers that run another
// process by now, or are gone.
func (r *run) forgetLostShims(cs []*cairnv1.Container) {
	listed := byID(cs)
	for id, pid := range r.shimLost {
		if c := listed[id]; c == nil || (hasProcess(c.State) && c.Pid != pid) {
			delete(r.shimLost, id)
		}
	}
}

// dropRepeated keeps in a cycle's result only the violations no earlier
// cycle reported: a container left broken stays broken for the rest of the
// drill, and one line says so.
func (r *run) dropRepeated(res *cycleResult) {
	res.Violations = slices.DeleteFunc(res.Violations, func(v Violation) bool {
		if r.reported[v.key()] {
			res.Repeated++
			return true
		}
		r.reported[v.key()] = true
		return false
	})
}

// Observation races the daemon's own asynchronous work (an exit being
// recorded, a standby shim being started), so a finding is reported only if
// every one of a few looks, a moment apart, finds it.
const (
	judgeLooks = 4
	judgePause = 250 * time.Millisecond
)

// judge observes the daemon and the machine and checks the invariants,
// looking again while anything is found; it returns the last observation
// and the findings every look made.
func (r *run) judge(ctx context.Context, cr Crash) (Observed, []Violation) {
	var obs Observed
	var last []Violation
	seen := map[string]int{}
	looks := 0
	for ; looks < judgeLooks; looks++ {
		if looks > 0 {
			select {
			case <-ctx.Done():
				return obs, nil
			case <-time.After(judgePause):
			}
		}
		var err error
		if obs, err = r.observe(ctx); err != nil {
			last = []Violation{{Cycle: cr.Cycle, Invariant: "daemon", Expected: "the API to answer after recovery", Seen: oneLine(err.Error())}}
		} else {
			last = Check(cr, obs)
		}
		if len(last) == 0 {
			return obs, nil
		}
		counted := map[string]bool{}
		for _, v := range last {
			if k := v.key(); !counted[k] {
				counted[k] = true
				seen[k]++
			}
		}
	}
	return obs, slices.DeleteFunc(last, func(v Violation) bool { return seen[v.key()] < looks })
}

// observe reads the daemon's list and journal, then the machine.
func (r *run) observe(ctx context.Context) (Observed, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	list, err := r.daemon.clients.Containers.List(ctx, connect.NewRequest(&cairnv1.ListRequest{All: true}))
	if err != nil {
		return Observed{}, fmt.Errorf("list: %w", err)
	}
	history, err := r.history(ctx)
	if err != nil {
		return Observed{}, err
	}
	imgs, err := r.daemon.clients.Images.List(ctx, connect.NewRequest(&cairnv1.ImageServiceListRequest{}))
	if err != nil {
		return Observed{}, fmt.Errorf("image list: %w", err)
	}
	var images []*cairnv1.Image
	for _, img := range imgs.Msg.Images {
		got, err := r.daemon.clients.Images.Get(ctx, connect.NewRequest(&cairnv1.ImageServiceGetRequest{Ref: img.Id}))
		if err != nil {
			return Observed{}, fmt.Errorf("image get %s: %w", img.Id, err)
		}
		images = append(images, got.Msg.Image)
	}
	vols, err := r.daemon.clients.Volumes.List(ctx, connect.NewRequest(&cairnv1.VolumeServiceListRequest{}))
	if err != nil {
		return Observed{}, fmt.Errorf("volume list: %w", err)
	}
	volumes := append([]*cairnv1.Volume{}, vols.Msg.Volumes...) // never nil: the drill has volumes
	cs := list.Msg.Containers
	execs := map[string]*cairnv1.ExecSession{}
	for _, c := range cs {
		for _, id := range c.ExecIds {
			res, err := r.daemon.clients.Containers.ExecInspect(ctx, connect.NewRequest(&cairnv1.ExecInspectRequest{Id: id}))
			if err != nil {
				return Observed{}, fmt.Errorf("exec inspect %s: %w", id, err)
			}
			execs[id] = res.Msg.Session
		}
	}
	w := r.observer.observe(r.daemon.pid(), cs)
	r.observer.observeExecProcs(w, execs)
	return Observed{Containers: cs, Images: images, Volumes: volumes, History: history, Execs: execs, World: w}, nil
}

// history reads the whole journal, by container.
func (r *run) history(ctx context.Context) (map[string][]*cairnv1.JournalRecord, error) {
	stream, err := r.daemon.clients.Journal.History(ctx, connect.NewRequest(&cairnv1.HistoryRequest{}))
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	defer stream.Close()
	out := map[string][]*cairnv1.JournalRecord{}
	for stream.Receive() {
		for _, rec := range stream.Msg().Records {
			out[rec.ContainerId] = append(out[rec.ContainerId], rec)
		}
	}
	if err := stream.Err(); err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	return out, nil
}

// checkJournal runs `cairn journal check` on the crashed root. A CLI
// without that command skips the check rather than failing the drill.
func (r *run) checkJournal(ctx context.Context, cycle int) (journalCheck, *Violation) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, r.cfg.Cairn, "journal", "check", "--root", r.root).CombinedOutput()
	switch {
	case err == nil:
		return journalOK, nil
	case strings.Contains(string(out), "unknown command"):
		return journalSkipped, nil
	}
	return journalFailed, &Violation{Cycle: cycle, Invariant: "journal", Expected: "`cairn journal check` to pass on the crashed journal",
		Seen: oneLine(fmt.Sprintf("%v: %s", err, out))}
}

// importImage imports a busybox image built on the fly.
func (r *run) importImage(ctx context.Context) error {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(busybox.WriteRootfsTar(pw, r.cfg.Busybox)) }()
	defer pr.Close()
	if _, err := apiclient.ImportImage(ctx, r.daemon.clients.Images, imageName, pr); err != nil {
		return fmt.Errorf("drill: import image: %w", err)
	}
	return nil
}

// drillImages is how many images of its own (busybox and a small layer
// each, so they share their first layer) the drill loads, tags and removes.
const drillImages = 3

// loadImages builds the drill's image archives and loads them once.
func (r *run) loadImages(ctx context.Context) error {
	for i := range drillImages {
		name := fmt.Sprintf("drill/image-%d:latest", i)
		var buf bytes.Buffer
		layer := busybox.LayerTar(busybox.File{Name: "drill", Body: name + "\n"}, busybox.File{Name: "bin/.wh.vi"})
		if err := busybox.WriteArchive(&buf, r.cfg.Busybox, name, []string{"sh"}, layer); err != nil {
			return fmt.Errorf("drill: image archive: %w", err)
		}
		r.ops.archives = append(r.ops.archives, drillImage{name: name, archive: buf.Bytes()})
		if _, err := apiclient.LoadImage(ctx, r.daemon.clients.Images, bytes.NewReader(buf.Bytes())); err != nil {
			return fmt.Errorf("drill: load image: %w", err)
		}
	}
	return nil
}

// seedVolume makes the drill's volume: a container writes a random blob
// into it and the blob's sha256 beside it. Every container of the drill
// then mounts it read-only, and every recovery checks the bytes.
func (r *run) seedVolume(ctx context.Context) error {
	script := "head -c 65536 /dev/urandom > " + drillVolumeMount + "/blob && cd " + drillVolumeMount + " && sha256sum blob > blob.sha256"
	res, err := r.daemon.clients.Containers.Create(ctx, connect.NewRequest(&cairnv1.CreateRequest{Image: imageName, Command: []string{"sh", "-c", script},
		Mounts: []*cairnv1.Mount{{Type: cairnv1.MountType_MOUNT_TYPE_VOLUME, Source: drillVolume, Destination: drillVolumeMount}}}))
	if err != nil {
		return fmt.Errorf("drill: create the volume's writer: %w", err)
	}
	id := res.Msg.Container.Id
	if _, err := r.daemon.clients.Containers.Start(ctx, connect.NewRequest(&cairnv1.StartRequest{Id: id})); err != nil {
		return fmt.Errorf("drill: start the volume's writer: %w", err)
	}
	w, err := r.daemon.clients.Containers.Wait(ctx, connect.NewRequest(&cairnv1.WaitRequest{Id: id}))
	if err != nil || w.Msg.ExitCode == nil || *w.Msg.ExitCode != 0 {
		return fmt.Errorf("drill: the volume's writer: %v %v", w, err)
	}
	if _, err := r.daemon.clients.Containers.Remove(ctx, connect.NewRequest(&cairnv1.RemoveRequest{Id: id})); err != nil {
		return fmt.Errorf("drill: remove the volume's writer: %w", err)
	}
	if b := readVolumeBlob(filepath.Join(r.observer.volumeDir, drillVolume, "_data")); b.Err != "" || b.Sum != b.Want {
		return fmt.Errorf("drill: the volume's blob as written: %+v", b)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails on Linux
	return hex.EncodeToString(b)
}

// oneLine folds a multi-line message (a log tail) into one report line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " | ")), " ")
}
