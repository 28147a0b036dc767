package recovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cairn-run/cairn/resources"
	sm "github.com/cairn-run/cairn/statemachine"
)

// workers bounds how many containers are recovered at once: observing one
// may wait on its shim, and their records share group commits.
const workers = 16

// Runner carries out recovery at daemon start.
type Runner struct {
	Journal   Journal
	Runtime   Runtime
	Layers    Layers
	Lifecycle Lifecycle
	// Rebooted: the machine booted since the journal's last start.
	Rebooted bool
	Log      *slog.Logger
	// CrashPoint, if set, is called at named places (crash drills).
	CrashPoint func(name string)
	// Images and ImageJournal, if set, recover images with an unfinished
	// intent, before the containers.
	Images       ImageStore
	ImageJournal ImageJournal
	// Execs, if set, recovers exec sessions too (exec.go).
	Execs ExecPorts
	// Volumes and VolumeJournal, if set, recover volumes with an
	// unfinished intent, after the images and before the containers.
	Volumes       VolumeStore
	VolumeJournal VolumeJournal
	// Restarts, if set, applies the restart policies once every container
	// is recovered.
	Restarts Restarter
}

// Report is what one recovery did.
type Report struct {
	Containers int
	// Images is how many unfinished image intents were decided.
	Images int
	// Volumes is how many unfinished volume intents were decided.
	Volumes      int
	Actions      map[string]int
	UnknownExits int
	Duration     time.Duration
}

// Run recovers every container of the view, then removes what removed
// containers left behind. Containers whose recovery fails keep their
// unfinished intent and are tried again at the next start.
func (r *Runner) Run(ctx context.Context) (Report, error) {
	start := time.Now()
	if r.Log == nil {
		r.Log = slog.Default()
	}
	rep := Report{Actions: map[string]int{}}
	var errs []error
	if err := r.recoverImages(ctx, &rep); err != nil {
		errs = append(errs, err)
	}
	if err := r.recoverVolumes(ctx, &rep); err != nil {
		errs = append(errs, err)
	}
	views := r.Journal.Containers()
	rep.Containers = len(views)

	var mu sync.Mutex
	var reattach []sm.Container
	jobs := make(chan sm.Container)
	var wg sync.WaitGroup
	for range min(workers, max(1, len(views))) {
		wg.Go(func() {
			for c := range jobs {
				plan := Decide(c, r.observe(ctx, c))
				after, err := r.carryOut(ctx, c, plan)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				}
				for _, a := range plan.Actions {
					rep.Actions[string(a)]++
				}
				if plan.UnknownExit && err == nil {
					rep.UnknownExits++
				}
				if after != nil {
					reattach = append(reattach, *after)
				}
				mu.Unlock()
			}
		})
	}
	for _, c := range views {
		jobs <- c
	}
	close(jobs)
	wg.Wait()
	// Exec sessions are decided once their containers are (a container
	// whose run ended has no shim to ask), and before any auto-remove
	// takes their exit records away.
	execs, err := r.recoverExecs(ctx, &rep)
	if err != nil {
		errs = append(errs, err)
	}
	// Watched only once every decision is recorded, so an exit seen by a
	// watcher never races the record that reattached its container; the
	// sessions first, so a container's exit finds them watched.
	if r.Execs.Lifecycle != nil {
		r.Execs.Lifecycle.ReattachExecs(execs)
	}
	r.Lifecycle.Reattach(reattach)
	r.removeAutoRemoved(ctx, views, &errs)
	if r.Restarts != nil {
		// After every decision is recorded: a policy restart reads the
		// exit recovery recorded, and an unfinished one is rolled back first.
		r.Restarts.ResumeRestarts(r.Journal.Containers(), r.Rebooted)
	}
	if err := r.removeLeftovers(&rep); err != nil {
		errs = append(errs, err)
	}
	rep.Duration = time.Since(start)
	return rep, errors.Join(errs...)
}

// Recovery's crash points: around the record of each decision.
const (
	CrashBeforeRecord = "recovery.before-record"
	CrashAfterRecord  = "recovery.after-record"
)

// CrashPoints lists recovery's crash points.
func CrashPoints() []string { return []string{CrashBeforeRecord, CrashAfterRecord} }

func (r *Runner) crash(name string) {
	if r.CrashPoint != nil {
		r.CrashPoint(name)
	}
}

// carryOut performs a plan: the actions that must precede its record, the
// record, then the rest (see afterRecord). It returns the container's new
// view when it is to be reattached.
func (r *Runner) carryOut(ctx context.Context, c sm.Container, plan Plan) (*sm.Container, error) {
	if plan.Uncertain != "" {
		err := fmt.Errorf("recover %s: nothing decided: %s", c.ID, plan.Uncertain)
		r.Log.Error("recovery left a container as the journal has it", "container", c.ID, "reason", plan.Uncertain)
		return nil, err
	}
	if plan.Record == nil {
		return nil, nil
	}
	var failures []error
	for _, a := range plan.Actions {
		if !a.afterRecord() {
			if err := r.act(ctx, c, plan, a); err != nil {
				failures = append(failures, fmt.Errorf("%s: %w", a, err))
			}
		}
	}
	if len(failures) > 0 && plan.Fallback != nil {
		r.Log.Warn("recovery falls back", "container", c.ID, "error", errors.Join(failures...))
		return r.carryOut(ctx, c, *plan.Fallback)
	}
	if len(failures) > 0 {
		// Recording a create or remove that did not happen would be a lie;
		// the intent stays for the next start to finish.
		err := fmt.Errorf("recover %s: %w", c.ID, errors.Join(failures...))
		r.Log.Error("recovery left an intent unfinished", "container", c.ID, "error", err)
		return nil, err
	}
	rec := *plan.Record
	r.crash(CrashBeforeRecord)
	if _, err := r.Journal.Append(rec); err != nil {
		return nil, fmt.Errorf("record recovery of %s: %w", c.ID, err)
	}
	r.crash(CrashAfterRecord)
	r.Log.Info("recovered", "container", c.ID, "event", rec.Event, "from", rec.From, "to", rec.To, "actions", plan.Actions, "reason", rec.Error)
	reattach := false
	for _, a := range plan.Actions {
		switch a {
		case ActionReattach:
			reattach = true
		case ActionAutoRemove:
			// Through the driver once every container is recovered; see
			// removeAutoRemoved.
		case ActionCleanupRun, ActionUnmount:
			if err := r.act(ctx, c, plan, a); err != nil {
				// The record stands; the next start cleans what is left.
				r.Log.Warn("recovery cleanup", "container", c.ID, "action", a, "error", err)
			}
		}
	}
	if !reattach {
		return nil, nil
	}
	if v, ok := r.Journal.Container(c.ID); ok {
		return &v, nil
	}
	return nil, nil
}

// Limiter is implemented by a Runtime that can change a live container's
// limits (for unfinished updates).
type Limiter interface {
	UpdateLimits(id string, p sm.Process, r resources.Resources) error
}

func (r *Runner) act(ctx context.Context, c sm.Container, plan Plan, a Action) error {
	var p sm.Process
	if plan.Process != nil {
		p = *plan.Process
	}
	switch a {
	case ActionCleanupRun:
		return r.Runtime.Cleanup(c.ID, p)
	case ActionUnmount:
		return r.Layers.Unmount(c.MountID)
	case ActionFinishFreeze:
		return r.Runtime.FinishFreeze(c.ID, p)
	case ActionCompleteCreate:
		return r.Layers.CreateMount(ctx, c.MountID, c.Image, c.Hostname)
	case ActionRemoveLayers:
		return r.Layers.RemoveMount(c.MountID)
	case ActionRemoveRuntime:
		return r.Runtime.Remove(c.ID)
	case ActionApplyLimits, ActionRestoreLimits:
		lim, ok := r.Runtime.(Limiter)
		if !ok {
			return errors.New("the runtime cannot change limits")
		}
		limits := resources.Resources{}
		if c.Config != nil {
			limits = c.Config.Resources
		}
		if a == ActionApplyLimits {
			limits = *c.Pending.Args.Resources
		}
		return lim.UpdateLimits(c.ID, p, limits)
	}
	return fmt.Errorf("unknown action %q", a)
}

// removeAutoRemoved removes stopped auto-remove containers, whether they
// exited while cairnd was down or their removal was interrupted before it
// began.
func (r *Runner) removeAutoRemoved(ctx context.Context, views []sm.Container, errs *[]error) {
	for _, before := range views {
		if !before.AutoRemove {
			continue
		}
		if c, ok := r.Journal.Container(before.ID); ok && c.State == sm.StateStopped && c.Pending == nil {
			if _, err := r.Lifecycle.Remove(ctx, c.ID, false); err != nil {
				*errs = append(*errs, fmt.Errorf("auto-remove %s: %w", c.ID, err))
			}
		}
	}
}
