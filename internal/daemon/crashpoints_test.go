package daemon_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/internal/apiclient"
	"github.com/cairn-run/cairn/internal/busybox"
	"github.com/cairn-run/cairn/internal/crashpoint"
	"github.com/cairn-run/cairn/internal/daemon"
	"github.com/cairn-run/cairn/internal/testenv"
	"github.com/cairn-run/cairn/internal/testenv/scratch"
	sm "github.com/cairn-run/cairn/statemachine"
)

// gone is the expected outcome of a container that must not exist.
const gone = cairnv1.ContainerState_CONTAINER_STATE_UNSPECIFIED

// crashOutcome is the state a container must be in after the daemon died at
// a crash point and recovered: what the world shows, per the decision table.
var crashOutcome = map[string]cairnv1.ContainerState{
	"create.after-intent": gone, "create.after-layers": sm2p(sm.StateCreated), "create.before-done": sm2p(sm.StateCreated), "create.after-done": sm2p(sm.StateCreated),
	"start.after-intent": sm2p(sm.StateCreated), "start.after-mount": sm2p(sm.StateCreated), "start.after-exec": running, "start.before-done": running, "start.after-done": running,
	"stop.after-intent": running, "stop.after-signal": stopped, "stop.after-exit": stopped, "stop.after-release": stopped, "stop.before-done": stopped, "stop.after-done": stopped,
	"pause.after-intent": running, "pause.after-freeze": paused, "pause.before-done": paused, "pause.after-done": paused,
	"unpause.after-intent": paused, "unpause.after-thaw": running, "unpause.before-done": running, "unpause.after-done": running,
	"restart.after-intent": running, "restart.after-signal": stopped, "restart.after-exit": stopped, "restart.after-release": stopped, "restart.after-mount": stopped, "restart.after-exec": running, "restart.before-done": running, "restart.after-done": running,
	"kill.after-intent": running, "kill.after-signal": running, "kill.before-done": running, "kill.after-done": running,
	"remove.after-intent": gone, "remove.after-files": gone, "remove.before-done": gone, "remove.after-done": gone,
	"force-remove.after-intent": gone, "force-remove.after-kill": gone, "force-remove.after-release": gone, "force-remove.after-files": gone, "force-remove.before-done": gone, "force-remove.after-done": gone,
	"exit.after-intent": stopped, "exit.after-release": stopped, "exit.before-done": stopped, "exit.after-done": stopped,
	"journal.mid-commit":  gone,
	"update.after-intent": running, "update.after-cgroup": running, "update.before-done": running, "update.after-done": running,
	// A policy restart cut short anywhere ends running, restarted once:
	// rolled forward if its process started, else rolled back and decided
	// again by the policy (restartCrashCount checks the count).
	"policy-restart.after-intent": running, "policy-restart.after-mount": running, "policy-restart.after-exec": running,
	"policy-restart.before-done": running, "policy-restart.after-done": running,
	// A stop during a policy restart's delay: stopped for good, whether or
	// not the cancel's record made it.
	"cancel-restart.after-intent": stopped, "cancel-restart.before-done": stopped, "cancel-restart.after-done": stopped,
	"set-restart-policy.after-intent": sm2p(sm.StateCreated), "set-restart-policy.before-done": sm2p(sm.StateCreated), "set-restart-policy.after-done": sm2p(sm.StateCreated),
}

func sm2p(s sm.State) cairnv1.ContainerState {
	return map[sm.State]cairnv1.ContainerState{sm.StateCreated: cairnv1.ContainerState_CONTAINER_STATE_CREATED}[s]
}

// reach performs the operations that lead to the crash point's event, and
// returns the container they are about.
func reach(ctx context.Context, e *scratch.Env, point string) (string, error) {
	event := event(point)
	// The trap is in place before "ready" is written: a SIGTERM before it
	// would be ignored by the container's init, and the stop would end in
	// SIGKILL instead of the exit the table expects.
	cmd := []string{"sh", "-c", "trap 'exit 42' TERM; echo ready; while true; do sleep 0.05; done"}
	policy := ""
	switch event {
	case "exit":
		cmd = []string{"sh", "-c", "sleep 0.2; exit 5"}
	case "policy-restart":
		// Fails once, then runs: one policy restart, at which it crashes.
		cmd = []string{"sh", "-c", "if [ -f /ran ]; then echo ready; while true; do sleep 0.05; done; fi; touch /ran; sleep 0.2; exit 3"}
		policy = "on-failure:1"
	case "cancel-restart":
		cmd, policy = []string{"sh", "-c", "exit 0"}, "always"
	}
	res, err := e.Containers.Create(ctx, connect.NewRequest(&cairnv1.CreateRequest{Image: "busybox", Command: cmd, RestartPolicy: policy}))
	if err != nil {
		return "", fmt.Errorf("create: %w", err)
	}
	id := res.Msg.Container.Id
	five := int32(5)
	steps := map[string][]string{
		"create": nil, "start": {"start"}, "stop": {"start", "stop"}, "pause": {"start", "pause"},
		"unpause": {"start", "pause", "unpause"}, "restart": {"start", "restart"}, "kill": {"start", "kill"},
		"remove": {"remove"}, "force-remove": {"start", "force-remove"}, "exit": {"start", "wait"}, "journal": nil,
		"update":         {"start", "update"},
		"policy-restart": {"start"}, "set-restart-policy": {"set-policy"}, "cancel-restart": {"start", "backoff", "stop"},
	}
	for _, step := range steps[event] {
		switch step {
		case "start":
			_, err = e.Containers.Start(ctx, connect.NewRequest(&cairnv1.StartRequest{Id: id}))
			if err == nil && event != "exit" && event != "cancel-restart" {
				err = untilLogged(ctx, e, id, "ready")
			}
		case "stop":
			_, err = e.Containers.Stop(ctx, connect.NewRequest(&cairnv1.StopRequest{Id: id, TimeoutSeconds: &five}))
		case "pause":
			_, err = e.Containers.Pause(ctx, connect.NewRequest(&cairnv1.PauseRequest{Id: id}))
		case "unpause":
			_, err = e.Containers.Unpause(ctx, connect.NewRequest(&cairnv1.UnpauseRequest{Id: id}))
		case "restart":
			_, err = e.Containers.Restart(ctx, connect.NewRequest(&cairnv1.RestartRequest{Id: id, TimeoutSeconds: &five}))
		case "kill":
			_, err = e.Containers.Kill(ctx, connect.NewRequest(&cairnv1.KillRequest{Id: id, Signal: "USR1"}))
		case "remove", "force-remove":
			_, err = e.Containers.Remove(ctx, connect.NewRequest(&cairnv1.RemoveRequest{Id: id, Force: step == "force-remove"}))
		case "wait":
			_, err = e.Containers.Wait(ctx, connect.NewRequest(&cairnv1.WaitRequest{Id: id}))
		case "update":
			pids := int64(77)
			_, err = e.Resources.Update(ctx, connect.NewRequest(&cairnv1.UpdateRequest{Id: id, PidsLimit: &pids}))
		case "backoff":
			// Stopped in a delay of 800 ms or more: time for the stop.
			for {
				g, gerr := e.Containers.Get(ctx, connect.NewRequest(&cairnv1.GetRequest{Id: id}))
				if gerr != nil {
					return id, gerr
				}
				if c := g.Msg.Container; c.State == stopped && c.PendingEvent == "" && c.RestartDelayMs >= 800 {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
		case "set-policy":
			_, err = e.Restarts.UpdateRestartPolicy(ctx, connect.NewRequest(&cairnv1.UpdateRestartPolicyRequest{Id: id, RestartPolicy: "always"}))
		}
		if err != nil {
			return id, fmt.Errorf("%s: %w", step, err)
		}
	}
	return id, nil
}

// untilLogged waits until the container's log holds want.
func untilLogged(ctx context.Context, e *scratch.Env, id, want string) error {
	for {
		stream, err := e.Containers.Logs(ctx, connect.NewRequest(&cairnv1.LogsRequest{Id: id}))
		if err != nil {
			return err
		}
		var got strings.Builder
		for stream.Receive() {
			got.Write(entriesData(stream.Msg().Entries))
		}
		if err := stream.Err(); err != nil {
			return err
		}
		if strings.Contains(got.String(), want) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %q in the log: %w", want, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// stateAfterCrash is the container's state, or gone; when the create itself
// crashed, the client never learnt the id, so it is looked up.
func stateAfterCrash(t *testing.T, e *scratch.Env, id string) (cairnv1.ContainerState, string) {
	t.Helper()
	if id == "" {
		cs := list(t, e)
		if len(cs) == 0 {
			return gone, ""
		}
		id = cs[0].Id
	}
	res, err := e.Containers.Get(context.Background(), connect.NewRequest(&cairnv1.GetRequest{Id: id}))
	var ce *connect.Error
	switch {
	case err == nil:
		return res.Msg.Container.State, id
	case errors.As(err, &ce) && ce.Code() == connect.CodeNotFound:
		return gone, id
	}
	t.Fatal(err)
	return gone, id
}

func event(point string) string { return point[:len(point)-len(pointStep(point))-1] }

func pointStep(point string) string {
	for i := len(point) - 1; i >= 0; i-- {
		if point[i] == '.' {
			return point[i+1:]
		}
	}
	return point
}

func TestCrashPoints_EveryOneRecoversToTheWorldsState(t *testing.T) {
	var points []string
	for _, point := range daemon.CrashPoints() {
		if strings.HasPrefix(point, "recovery.") {
			continue // crashes during recovery itself: recovery_test.go
		}
		if slices.Contains(sm.ImageCrashPoints(), point) {
			continue // image operations: TestCrashPoints_ImageOperationsRecoverWhole
		}
		if slices.Contains(sm.NetCrashPoints(), point) {
			continue // network operations: TestNetwork_CrashPointsLeakNothing
		}
		if slices.Contains(sm.ExecCrashPoints(), point) {
			continue // exec sessions: TestCrashPoints_ExecSessionsNoneLostNoneLeaked
		}
		if slices.Contains(sm.VolumeCrashPoints(), point) {
			continue // volume operations: TestCrashPoints_VolumeOperationsLeaveNothingHalfMade
		}
		if _, ok := crashOutcome[point]; !ok {
			t.Errorf("crash point %s has no expected outcome in this test", point)
		}
		points = append(points, point)
	}
	for _, point := range points {
		t.Run(point, func(t *testing.T) {
			t.Parallel() // each on its own root, socket and cgroup parent
			e := scratch.NewBinaryDaemon(t)
			e.Stop()
			e.StartWith("CAIRN_CRASH_AT=" + point)
			e.WaitServing()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			id, err := reach(ctx, e, point)
			e.WaitCrash(30 * time.Second)
			if err == nil {
				t.Logf("the operations completed before the crash (%s fires after the reply)", point)
			}
			e.Start()
			want := crashOutcome[point]
			// A process signalled just before the crash may still be dying
			// when recovery looks; then its exit comes a moment later, so
			// the state must settle to the expected one.
			var got cairnv1.ContainerState
			deadline := time.Now().Add(10 * time.Second)
			for {
				got, id = stateAfterCrash(t, e, id)
				if got == want || time.Now().After(deadline) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if got != want {
				t.Errorf("after a crash at %s the container is %v, want %v; recovery said %v", point, got, want, reconciledReasons(t, e, id))
			}
			if event(point) == "policy-restart" {
				// Exactly one restart, however far it got: never two starts.
				if c := get(t, e, id); c.RestartCount != 1 {
					t.Errorf("restart count %d after a crash at %s, want 1; recovery said %v", c.RestartCount, point, reconciledReasons(t, e, id))
				}
			}
			if got == stopped && event(point) == "exit" {
				if c := get(t, e, id); c.ExitCode == nil || *c.ExitCode != 5 {
					t.Errorf("exit code %v, want the real 5", c.ExitCode)
				}
			}
			assertWorldMatchesJournal(t, e)
			checkJournalOffline(t, e)
		})
	}
}

func TestCrashPoints_AnUnknownNameIsRefusedAtStart(t *testing.T) {
	e := scratch.NewBinaryDaemon(t)
	e.Stop()
	e.StartWith(crashpoint.Env + "=stop.after-sginal")
	e.WaitCrash(30 * time.Second) // it exits at once, refusing
	log := e.Log()
	if !strings.Contains(log, "stop.after-sginal") || !strings.Contains(log, "unknown crash points") {
		t.Fatalf("cairnd did not refuse the misspelt crash point; its log:\n%s", log)
	}
	e.Start()
}

// imageCrashOutcome says, for each crash point of an image operation,
// whether the name the operation is about names an image once the daemon
// has crashed there and recovered: an operation whose DONE is not durable
// did nothing, one whose DONE is did all of it.
var imageCrashOutcome = map[string]bool{
	"load.after-intent": false, "load.after-layers": false, "load.before-done": false, "load.after-done": true,
	"import.after-intent": false, "import.after-layers": false, "import.before-done": false, "import.after-done": true,
	"tag.after-intent": false, "tag.before-done": false, "tag.after-done": true,
	"untag.after-intent": true, "untag.before-done": true, "untag.after-done": false,
	"delete.after-intent": true, "delete.before-done": true, "delete.after-done": false,
	"pull.after-intent": false, "pull.after-kept-layer": false, "pull.after-fetch": false, "pull.after-layers": false, "pull.before-done": false, "pull.after-done": true,
	"commit.after-intent": false, "commit.after-layers": false, "commit.before-done": false, "commit.after-done": true,
}

// reachImage performs the image operations that lead to the crash point's
// event and returns the name the last one is about.
func reachImage(ctx context.Context, t testing.TB, e *scratch.Env, point string) (string, error) {
	var archive bytes.Buffer
	if err := busybox.WriteArchive(&archive, busybox.DefaultPath, "crash:1", []string{"true"}, busybox.LayerTar(busybox.File{Name: "crash", Body: point})); err != nil {
		return "", err
	}
	load := func() error {
		_, err := apiclient.LoadImage(ctx, e.Images, bytes.NewReader(archive.Bytes()))
		return err
	}
	tag := func(src, dst string) error {
		_, err := e.Images.Tag(ctx, connect.NewRequest(&cairnv1.ImageServiceTagRequest{Source: src, Target: dst}))
		return err
	}
	rm := func(ref string) error {
		_, err := e.Images.Remove(ctx, connect.NewRequest(&cairnv1.ImageServiceRemoveRequest{Name: ref}))
		return err
	}
	switch event(point) {
	case "load":
		return "crash:1", load()
	case "import":
		_, err := apiclient.ImportImage(ctx, e.Images, "imported", bytes.NewReader(busybox.LayerTar(busybox.File{Name: "f", Body: point})))
		return "imported", err
	case "tag":
		return "tagged", tag("busybox", "tagged")
	case "untag":
		if err := tag("busybox", "second"); err != nil {
			return "", err
		}
		return "second", rm("second")
	case "delete":
		if err := load(); err != nil {
			return "", err
		}
		return "crash:1", rm("crash:1")
	case "pull":
		// From a registry of its own, which skopeo filled; the image
		// shares the busybox layer the daemon has, so only its own layer
		// is fetched.
		reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
		path := filepath.Join(t.TempDir(), "crash.tar")
		if err := os.WriteFile(path, archive.Bytes(), 0o600); err != nil {
			return "", err
		}
		reg.SkopeoCopy(t, "docker-archive:"+path, "crash:1")
		name := reg.Host + "/crash:1"
		_, err := apiclient.PullImage(ctx, e.Images, &cairnv1.ImageServicePullRequest{Ref: name, Auth: &cairnv1.RegistryAuth{Insecure: true}}, nil)
		return name, err
	case "commit":
		res, err := e.Containers.Create(ctx, connect.NewRequest(&cairnv1.CreateRequest{Image: "busybox", Command: []string{"true"}}))
		if err != nil {
			return "", err
		}
		_, err = e.Images.Commit(ctx, connect.NewRequest(&cairnv1.ImageServiceCommitRequest{Container: res.Msg.Container.Id, Ref: "committed:1"}))
		return "committed:1", err
	}
	return "", fmt.Errorf("no image operation for %s", point)
}

func TestCrashPoints_ImageOperationsRecoverWhole(t *testing.T) {
	for _, point := range sm.ImageCrashPoints() {
		if _, ok := imageCrashOutcome[point]; !ok {
			t.Errorf("image crash point %s has no expected outcome in this test", point)
		}
		if !slices.Contains(daemon.CrashPoints(), point) {
			t.Errorf("image crash point %s is not in daemon.CrashPoints", point)
		}
	}
	for _, point := range sm.ImageCrashPoints() {
		t.Run(point, func(t *testing.T) {
			t.Parallel()
			e := scratch.NewBinaryDaemon(t)
			e.Stop()
			e.StartWith("CAIRN_CRASH_AT=" + point)
			e.WaitServing()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			name, err := reachImage(ctx, t, e, point)
			e.WaitCrash(30 * time.Second)
			if err == nil {
				t.Logf("the operation completed before the crash (%s fires after the reply)", point)
			}
			e.Start()
			_, err = e.Images.Get(bg, connect.NewRequest(&cairnv1.ImageServiceGetRequest{Ref: name}))
			if present := err == nil; present != imageCrashOutcome[point] {
				t.Errorf("after a crash at %s, %s names an image: %v (%v), want %v", point, name, present, err, imageCrashOutcome[point])
			} else if err != nil && codeOf(err) != connect.CodeNotFound {
				t.Errorf("get %s: %v", name, err)
			}
			res, err := e.Images.List(bg, connect.NewRequest(&cairnv1.ImageServiceListRequest{}))
			if err != nil {
				t.Fatal(err)
			}
			for _, img := range res.Msg.Images {
				got, err := e.Images.Get(bg, connect.NewRequest(&cairnv1.ImageServiceGetRequest{Ref: img.Id}))
				if err != nil || got.Msg.Image.PendingEvent != "" {
					t.Errorf("image %s after recovery: %v, pending %q", img.Id, err, got.Msg.GetImage().GetPendingEvent())
				}
			}
			// No half-registered image, no orphan layer, no scratch file.
			assertStoreWhole(t, e)
			// An image that stayed (or came) runs. (The imported one is a
			// single file, nothing to run.)
			if imageCrashOutcome[point] && event(point) != "untag" && event(point) != "import" {
				if _, code, err := runOutput(t, e, &cairnv1.CreateRequest{Image: name, AutoRemove: true, Command: []string{"true"}}); err != nil || code != 0 {
					t.Errorf("run of %s after recovery: code %d %v", name, code, err)
				}
			}
			checkJournalOffline(t, e)
		})
	}
}
