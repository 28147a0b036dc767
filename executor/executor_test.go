package executor

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cairn-run/cairn/internal/crilog"
	"github.com/cairn-run/cairn/internal/errdefs"
	"github.com/cairn-run/cairn/internal/procstat"
)

func TestStartWait_ExitCodes(t *testing.T) {
	env := newTestEnv(t)
	for _, tc := range []struct {
		name string
		args []string
		want int
	}{
		{"true", []string{"true"}, 0},
		{"exit3", []string{"sh", "-c", "exit 3"}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := env.start(tc.name, tc.args...)
			x := env.wait(env.ex, tc.name, p)
			if x.Code == nil || *x.Code != tc.want || x.Signal != "" {
				t.Fatalf("exit = %s signal %q, want %d", codeOf(x), x.Signal, tc.want)
			}
			if x.FinishedAt.Before(p.StartedAt) {
				t.Errorf("FinishedAt %v before StartedAt %v", x.FinishedAt, p.StartedAt)
			}
			if err := env.ex.Cleanup(tc.name, p); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestSignal_KillGives137(t *testing.T) {
	env := newTestEnv(t)
	p := env.start("k", "sleep", "100")
	if err := env.ex.Signal("k", p, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	x := env.wait(env.ex, "k", p)
	if x.Code == nil || *x.Code != 137 || x.Signal != "SIGKILL" {
		t.Fatalf("exit = %s signal %q, want 137 SIGKILL", codeOf(x), x.Signal)
	}
}

func TestSignal_TrappedTermExits42(t *testing.T) {
	env := newTestEnv(t)
	p := env.start("trap", "sh", "-c", `trap "exit 42" TERM; echo ready; while true; do sleep 0.1; done`)
	waitForLog(t, env.ex.LogPath("trap"), "ready")
	if err := env.ex.Signal("trap", p, unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if x := env.wait(env.ex, "trap", p); x.Code == nil || *x.Code != 42 {
		t.Fatalf("exit = %s, want 42", codeOf(x))
	}
}

func TestPauseResume_Freezer(t *testing.T) {
	env := newTestEnv(t)
	p := env.start("fz", "sleep", "100")
	stateFile := filepath.Join(env.cgroupDir("freezer", "fz"), "freezer.state")

	// The second Pause replays the first, from a caller without the handle.
	for _, handle := range []Process{p, {}} {
		if err := env.ex.Pause("fz", handle); err != nil {
			t.Fatal(err)
		}
	}
	if got := strings.TrimSpace(readFile(t, stateFile)); got != "FROZEN" {
		t.Fatalf("freezer.state after Pause = %q", got)
	}
	if got, err := env.ex.FreezerState("fz"); err != nil || got != "FROZEN" {
		t.Fatalf("FreezerState = %q, %v", got, err)
	}
	if err := env.ex.Resume("fz", p); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(readFile(t, stateFile)); got != "THAWED" {
		t.Fatalf("freezer.state after Resume = %q", got)
	}
	if err := env.ex.Resume("fz", Process{}); err != nil {
		t.Errorf("Resume replayed on a running container: %v", err)
	}
	if err := env.ex.Signal("fz", p, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	env.wait(env.ex, "fz", p)
	for name, err := range map[string]error{"Pause": env.ex.Pause("fz", p), "Resume": env.ex.Resume("fz", p)} {
		if !errors.Is(err, errdefs.ErrFailedPrecondition) || errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("%s after exit: %v, want ErrFailedPrecondition", name, err)
		}
	}
	// The shim answers Wait before it destroys the container; Cleanup waits
	// for the shim to finish.
	if err := env.ex.Cleanup("fz", p); err != nil {
		t.Fatal(err)
	}
	if _, err := env.ex.FreezerState("fz"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("FreezerState after exit and Cleanup: %v, want ErrNotFound", err)
	}
}

func TestSignal_KillsPausedContainer(t *testing.T) {
	env := newTestEnv(t)
	p := env.start("pk", "sleep", "100")
	if err := env.ex.Pause("pk", p); err != nil {
		t.Fatal(err)
	}
	if err := env.ex.Signal("pk", p, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if x := env.wait(env.ex, "pk", p); x.Code == nil || *x.Code != 137 {
		t.Fatalf("exit = %s, want 137", codeOf(x))
	}
}

func TestContainer_LogsHostnameAndPIDNamespace(t *testing.T) {
	env := newTestEnv(t)
	spec := env.spec("look", "sh", "-c", `echo out; echo err >&2; echo "host=$(hostname)"; echo "pid=$$"; exit 0`)
	spec.Hostname = "cairn-box"
	p, err := env.ex.Start(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if x := env.wait(env.ex, "look", p); x.Code == nil || *x.Code != 0 {
		t.Fatalf("exit = %s", codeOf(x))
	}
	if err := env.ex.Cleanup("look", p); err != nil {
		t.Fatal(err)
	}
	// Kept by Cleanup, each stream on its own.
	if out := logOutput(t, env.ex.LogPath("look"), crilog.Stdout); out != "out\nhost=cairn-box\npid=1\n" {
		t.Errorf("stdout in container.log = %q", out)
	}
	if errOut := logOutput(t, env.ex.LogPath("look"), crilog.Stderr); errOut != "err\n" {
		t.Errorf("stderr in container.log = %q", errOut)
	}
}

func TestWait_FromFreshExecutorOnRunningContainer(t *testing.T) {
	env := newTestEnv(t)
	p := env.start("re", "sh", "-c", `trap "exit 7" TERM; while true; do sleep 0.1; done`)

	restarted := env.freshExecutor()
	if obs := restarted.Observe("re", p); !obs.ShimAlive || !obs.ProcessAlive || obs.Exit != nil || obs.Freezer != "THAWED" || !obs.StateDirExists {
		t.Fatalf("Observe on a running container = %+v", obs)
	}
	got := make(chan Exit, 1)
	go func() {
		x, err := restarted.Wait(context.Background(), "re", p)
		if err != nil {
			t.Error(err)
		}
		got <- x
	}()
	select {
	case x := <-got:
		t.Fatalf("Wait returned %s while the container runs", codeOf(x))
	case <-time.After(300 * time.Millisecond):
	}
	if err := restarted.Signal("re", p, unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case x := <-got:
		if x.Code == nil || *x.Code != 7 {
			t.Fatalf("exit = %s, want 7", codeOf(x))
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Wait did not return")
	}
	if err := restarted.Cleanup("re", p); err != nil {
		t.Fatal(err)
	}
}

func TestWait_ShimKilledThenContainerKilled_CodeUnknown(t *testing.T) {
	env := newTestEnv(t)
	p := env.start("lost", "sleep", "100")
	if err := unix.Kill(p.ShimPID, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := waitProcessGone(ctx, p.ShimPID, p.ShimStartTime); err != nil {
		t.Fatal(err)
	}
	if obs := env.ex.Observe("lost", p); obs.ShimAlive || !obs.ProcessAlive {
		t.Fatalf("Observe after shim kill = %+v", obs)
	}

	got := make(chan Exit, 1)
	go func() {
		x, err := env.ex.Wait(context.Background(), "lost", p)
		if err != nil {
			t.Error(err)
		}
		got <- x
	}()
	select {
	case x := <-got:
		t.Fatalf("Wait returned %s while the container runs", codeOf(x))
	case <-time.After(300 * time.Millisecond):
	}
	if err := env.ex.Signal("lost", p, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case x := <-got:
		if x.Code != nil || x.Reason == "" {
			t.Fatalf("exit = %+v, want unknown code with a reason", x)
		}
		t.Logf("reason: %s", x.Reason)
	case <-time.After(30 * time.Second):
		t.Fatal("Wait did not return")
	}
	if err := env.ex.Cleanup("lost", p); err != nil {
		t.Fatal(err)
	}
	if env.ex.mounts.exists(env.ex.cgroupPath("lost")) {
		t.Error("cgroup left after Cleanup")
	}
}

func TestExit_WhileNobodyWaits_RecordedInExitFile(t *testing.T) {
	env := newTestEnv(t)
	p := env.start("gone", "sh", "-c", "exit 5")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := waitProcessGone(ctx, p.ShimPID, p.ShimStartTime); err != nil {
		t.Fatal(err)
	}
	rec, ok, err := readExitFile(env.ex.containerDir("gone"), p)
	if err != nil || !ok || rec.ExitCode != 5 {
		t.Fatalf("exit.json = %+v, %v, %v", rec, ok, err)
	}
	obs := env.freshExecutor().Observe("gone", p)
	if obs.ShimAlive || obs.ProcessAlive || obs.Exit == nil || obs.Exit.Code == nil || *obs.Exit.Code != 5 {
		t.Fatalf("Observe = %+v", obs)
	}
	if obs.StateDirExists || obs.Freezer != "" {
		t.Errorf("the shim should have destroyed the container: %+v", obs)
	}
	if x := env.wait(env.ex, "gone", p); x.Code == nil || *x.Code != 5 {
		t.Fatalf("Wait = %s, want 5 from exit.json", codeOf(x))
	}
}

func TestSignal_WrongStartTimeRefused(t *testing.T) {
	env := newTestEnv(t)
	p := env.start("reuse", "sleep", "100")
	stale := p
	stale.StartTime++
	if err := env.ex.Signal("reuse", stale, unix.SIGKILL); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("Signal with wrong start time: %v, want ErrNotFound", err)
	}
	if !procstat.Alive(p.PID, p.StartTime) {
		t.Fatal("container was signalled through a stale handle")
	}
	if err := env.ex.Signal("nope", p, unix.SIGKILL); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("Signal of unknown container: %v, want ErrNotFound", err)
	}
	if err := env.ex.Signal("reuse", p, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	env.wait(env.ex, "reuse", p)
	if err := env.ex.Signal("reuse", p, unix.SIGKILL); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("Signal after exit: %v, want ErrNotFound", err)
	}
}

func TestStart_NonexistentCommandLeavesNothing(t *testing.T) {
	env := newTestEnv(t)
	_, err := env.ex.Start(context.Background(), env.spec("bad", "/no/such/command"))
	if err == nil {
		t.Fatal("Start succeeded")
	}
	t.Logf("error: %v", err)
	if !strings.Contains(err.Error(), "no/such/command") {
		t.Errorf("error does not name the command: %v", err)
	}
	assertNothingLeft(t, env, "bad")
}

func TestStart_CancelledContextLeavesNothing(t *testing.T) {
	env := newTestEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := env.ex.Start(ctx, env.spec("cx", "sleep", "100")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Start with cancelled context: %v", err)
	}
	assertNothingLeft(t, env, "cx")
}

func assertNothingLeft(t *testing.T, env *testEnv, id string) {
	t.Helper()
	for _, d := range env.ex.mounts.dirs(env.ex.cgroupPath(id)) {
		if fileExists(d) {
			t.Errorf("cgroup dir left: %s", d)
		}
	}
	if fileExists(filepath.Join(env.ex.runtimeRoot(), id)) {
		t.Error("libcontainer state left")
	}
	if fileExists(env.ex.containerDir(id)) {
		entries, _ := os.ReadDir(env.ex.containerDir(id))
		t.Errorf("container dir left: %v", entries)
	}
	if pids := shimsUnder(env.dir); len(pids) > 0 {
		t.Errorf("shims left: %v", pids)
	}
	if pids := env.ex.mounts.pids(env.parent); len(pids) > 0 {
		t.Errorf("processes left in cgroup parent: %v", pids)
	}
}

func TestCleanupAndRemove_Idempotent(t *testing.T) {
	env := newTestEnv(t)
	p := env.start("idem", "sh", "-c", "echo hello")
	env.wait(env.ex, "idem", p)
	for i := range 2 {
		if err := env.ex.Cleanup("idem", p); err != nil {
			t.Fatalf("Cleanup #%d: %v", i+1, err)
		}
	}
	if !strings.Contains(readFile(t, env.ex.LogPath("idem")), "hello") {
		t.Error("Cleanup lost container.log")
	}
	for _, name := range []string{socketName, shimFileName} {
		if fileExists(filepath.Join(env.ex.containerDir("idem"), name)) {
			t.Errorf("Cleanup left %s", name)
		}
	}
	if !fileExists(filepath.Join(env.ex.containerDir("idem"), exitFileName)) {
		t.Error("Cleanup deleted the exit record, the only evidence of the exit until it is journaled")
	}
	for i := range 2 {
		if err := env.ex.Remove("idem"); err != nil {
			t.Fatalf("Remove #%d: %v", i+1, err)
		}
	}
	if err := env.ex.Cleanup("idem", p); err != nil {
		t.Fatalf("Cleanup after Remove: %v", err)
	}
	assertNothingLeft(t, env, "idem")
	if ids, _ := env.ex.IDs(); len(ids) != 0 {
		t.Errorf("IDs after Remove = %v", ids)
	}
}

func TestCleanup_RefusesRunningProcess(t *testing.T) {
	env := newTestEnv(t)
	p := env.start("busy", "sleep", "100")
	if err := env.ex.Cleanup("busy", p); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("Cleanup of a running container: %v", err)
	}
	if !procstat.Alive(p.PID, p.StartTime) {
		t.Fatal("Cleanup hurt a running container")
	}
}

func TestRemove_KillsRunningPausedContainer(t *testing.T) {
	env := newTestEnv(t)
	p := env.start("rm", "sleep", "100")
	if err := env.ex.Pause("rm", p); err != nil {
		t.Fatal(err)
	}
	if ids, err := env.ex.IDs(); err != nil || len(ids) != 1 || ids[0] != "rm" {
		t.Fatalf("IDs = %v, %v", ids, err)
	}
	if err := env.ex.Remove("rm"); err != nil {
		t.Fatal(err)
	}
	if procstat.Alive(p.PID, p.StartTime) || procstat.Alive(p.ShimPID, p.ShimStartTime) {
		t.Fatal("Remove left the container or its shim running")
	}
	assertNothingLeft(t, env, "rm")
}

func TestStart_LongDirUsesShortSocketPath(t *testing.T) {
	long := filepath.Join(t.TempDir(), strings.Repeat("d", 60), strings.Repeat("e", 60))
	env := newTestEnvIn(t, long)
	id := strings.Repeat("ab", 32) // 64 hex characters, like a real id
	if n := len(filepath.Join(env.ex.containerDir(id), socketName)); n <= 108 {
		t.Fatalf("socket path only %d bytes; test needs > 108", n)
	}
	spec := env.spec(id, "sh", "-c", `hostname; exit 9`)
	spec.Hostname = ""
	p, err := env.ex.Start(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if x := env.wait(env.ex, id, p); x.Code == nil || *x.Code != 9 {
		t.Fatalf("exit = %s, want 9", codeOf(x))
	}
	if got := logOutput(t, env.ex.LogPath(id), ""); got != id[:12]+"\n" {
		t.Errorf("default hostname = %q, want the id's first 12 characters", got)
	}
}

func TestStart_RefusesDuplicateWhileRunning(t *testing.T) {
	env := newTestEnv(t)
	env.start("dup", "sleep", "100")
	if _, err := env.ex.Start(context.Background(), env.spec("dup", "true")); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Fatalf("second Start: %v, want ErrAlreadyExists", err)
	}
}

func TestStart_AgainAfterCleanupAppendsLog(t *testing.T) {
	env := newTestEnv(t)
	for _, word := range []string{"first", "second"} {
		p := env.start("again", "echo", word)
		env.wait(env.ex, "again", p)
		if err := env.ex.Cleanup("again", p); err != nil {
			t.Fatal(err)
		}
	}
	if got := logOutput(t, env.ex.LogPath("again"), ""); got != "first\nsecond\n" {
		t.Fatalf("container.log = %q", got)
	}
}

// logOutput is what the container wrote to stream (both when "") as its
// log at path (every file of it) has it.
func logOutput(t testing.TB, path, stream string) string {
	t.Helper()
	var out strings.Builder
	for _, file := range crilog.Files(path) {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.SplitAfter(string(data), "\n") {
			if line == "" {
				continue
			}
			if !strings.HasSuffix(line, "\n") {
				t.Fatalf("%s ends in a torn line %q", file, line)
			}
			e, err := crilog.ParseLine([]byte(strings.TrimSuffix(line, "\n")))
			if err != nil {
				t.Fatalf("%s: %v: %q", file, err, line)
			}
			if stream == "" || e.Stream == stream {
				out.Write(e.Bytes())
			}
		}
	}
	return out.String()
}

func waitForLog(t *testing.T, path, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if data, _ := os.ReadFile(path); strings.Contains(string(data), want) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%q never appeared in %s", want, path)
}

func TestShim_SurvivesTermButContainerDoesNotInheritIgnore(t *testing.T) {
	env := newTestEnv(t)
	p := env.start("term", "sleep", "100")
	for _, sig := range []unix.Signal{unix.SIGTERM, unix.SIGINT, unix.SIGHUP} {
		if err := unix.Kill(p.ShimPID, sig); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(100 * time.Millisecond)
	if !procstat.Alive(p.ShimPID, p.ShimStartTime) {
		t.Fatal("shim died of SIGTERM/SIGINT/SIGHUP")
	}
	// SigIgn is the hex mask of ignored signals; bit n-1 is signal n.
	for _, line := range strings.Split(readFile(t, "/proc/"+strconv.Itoa(p.PID)+"/status"), "\n") {
		if mask, ok := strings.CutPrefix(line, "SigIgn:"); ok {
			ign, err := strconv.ParseUint(strings.TrimSpace(mask), 16, 64)
			if err != nil {
				t.Fatal(err)
			}
			for _, sig := range []unix.Signal{unix.SIGTERM, unix.SIGINT, unix.SIGHUP} {
				if ign&(1<<(sig-1)) != 0 {
					t.Errorf("container init ignores %v (SigIgn %s)", sig, strings.TrimSpace(mask))
				}
			}
		}
	}
	if err := env.ex.Signal("term", p, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if x := env.wait(env.ex, "term", p); x.Code == nil || *x.Code != 137 {
		t.Fatalf("exit = %s, want 137", codeOf(x))
	}
}

func TestShim_WritesItsFilesInTheCurrentProtocolVersion(t *testing.T) {
	env := newTestEnv(t)
	p := env.start("ver", "sh", "-c", "sleep 0.2; exit 4")
	dir := env.ex.containerDir("ver")
	var shimFile map[string]any
	if err := json.Unmarshal([]byte(readFile(t, filepath.Join(dir, shimFileName))), &shimFile); err != nil {
		t.Fatal(err)
	}
	if shimFile["version"] != float64(protocolVersion) || shimFile["pid"] != float64(p.ShimPID) {
		t.Errorf("shim.json = %v", shimFile)
	}
	if x := env.wait(env.ex, "ver", p); x.Code == nil || *x.Code != 4 {
		t.Fatalf("exit = %s, want 4", codeOf(x))
	}
	var exitFile map[string]any
	if err := json.Unmarshal([]byte(readFile(t, filepath.Join(dir, exitFileName))), &exitFile); err != nil {
		t.Fatal(err)
	}
	if exitFile["version"] != float64(protocolVersion) || exitFile["exec_id"] != "" || exitFile["exit_code"] != float64(4) {
		t.Errorf("exit.json = %v", exitFile)
	}
}

func TestShim_RefusesAnAssignmentOfANewerVersion(t *testing.T) {
	env := newTestEnv(t)
	sp, err := env.ex.launchShim()
	if err != nil {
		t.Fatal(err)
	}
	defer sp.kill()
	spec := env.spec("newer", "true")
	if err := json.NewEncoder(sp.ctl).Encode(assignment{Version: protocolVersion + 1, Spec: spec,
		Dir: env.ex.containerDir("newer"), Runtime: env.ex.runtimeRoot(), CgroupParent: env.parent}); err != nil {
		t.Fatal(err)
	}
	_ = sp.ctl.SetReadDeadline(time.Now().Add(30 * time.Second))
	var msg readyMessage
	if err := json.NewDecoder(sp.ctl).Decode(&msg); err != nil {
		t.Fatal(err)
	}
	if msg.Version != protocolVersion || msg.PID != 0 || !strings.Contains(msg.Error, "version 4") {
		t.Fatalf("ready = %+v, want a refusal naming version 4", msg)
	}
	<-sp.exited
	assertNothingLeft(t, env, "newer")
}

// A SIGTERM sent the moment Start returns must reach the user's command,
// not the init stub still about to exec it (whose Go runtime would end the
// container with status 2). busybox sleep as a PID namespace's init ignores
// SIGTERM, so the container must keep running.
func TestSignal_RightAfterStartWaitsForTheExec(t *testing.T) {
	env := newTestEnv(t)
	for i := range 10 {
		id := "early-" + strconv.Itoa(i)
		p := env.start(id, "sleep", "100")
		if err := env.ex.Signal(id, p, unix.SIGTERM); err != nil {
			t.Fatalf("SIGTERM right after the start: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
		if !procstat.Alive(p.PID, p.StartTime) {
			t.Fatalf("run %d: SIGTERM right after the start ended the container (%s): it met the init stub", i, codeOf(env.wait(env.ex, id, p)))
		}
		if err := env.ex.Signal(id, p, unix.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if x := env.wait(env.ex, id, p); x.Code == nil || *x.Code != 137 {
			t.Fatalf("run %d: exit = %s, want 137", i, codeOf(x))
		}
		if err := env.ex.Cleanup(id, p); err != nil {
			t.Fatal(err)
		}
	}
}
