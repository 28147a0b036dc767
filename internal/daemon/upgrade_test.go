package daemon_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-run/cairn/internal/daemon"
	"github.com/cairn-run/cairn/internal/inspect"
	"github.com/cairn-run/cairn/internal/testenv"
	"github.com/cairn-run/cairn/internal/testenv/scratch"
)

// previousRelease is the last commit whose daemon and shims speak shim
// protocol version 1 (no version fields). A new daemon must take over its
// containers.
const previousRelease = "85b056e"

// buildRelease builds cairnd and cairn of commit rev from this repository's
// git history into a temporary directory. A missing commit (a shallow clone)
// fails the test: the upgrade path must never go untested silently.
func buildRelease(t *testing.T, rev string) (cairnd, cairn string) {
	t.Helper()
	repo := testenv.RepoRoot()
	if out, err := exec.Command("git", "-C", repo, "cat-file", "-e", rev+"^{commit}").CombinedOutput(); err != nil {
		t.Fatalf("commit %s, the previous release this test upgrades from, is not in the git history of %s (%v: %s); "+
			"a shallow clone lacks it: fetch the full history (git fetch --unshallow)", rev, repo, err, strings.TrimSpace(string(out)))
	}
	dir := t.TempDir()
	src, bin := filepath.Join(dir, "src"), filepath.Join(dir, "bin")
	for _, d := range []string{src, bin} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	archive := exec.Command("git", "-C", repo, "archive", "--format=tar", rev)
	untar := exec.Command("tar", "-x", "-C", src)
	pipe, err := archive.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	untar.Stdin = pipe
	var archiveErr, untarErr strings.Builder
	archive.Stderr, untar.Stderr = &archiveErr, &untarErr
	if err := untar.Start(); err != nil {
		t.Fatal(err)
	}
	if err := archive.Run(); err != nil {
		t.Fatalf("git archive %s: %v: %s", rev, err, archiveErr.String())
	}
	if err := untar.Wait(); err != nil {
		t.Fatalf("untar %s: %v: %s", rev, err, untarErr.String())
	}
	build := exec.Command("go", "build", "-buildvcs=false", "-o", bin+"/", "./cmd/cairnd", "./cmd/cairn")
	build.Dir = src
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", rev, err, out)
	}
	return filepath.Join(bin, "cairnd"), filepath.Join(bin, "cairn")
}

// fileVersion returns the "version" field of a shim's JSON file, 0 when it
// has none (protocol version 1).
func fileVersion(t *testing.T, path string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Version int `json:"version"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return v.Version
}

func TestUpgrade_NewDaemonTakesOverShimsOfThePreviousRelease(t *testing.T) {
	testenv.RequireRoot(t)
	oldCairnd, oldCairn := buildRelease(t, previousRelease)
	e := scratch.NewBinaryDaemonOf(t, oldCairnd, func(c *daemon.Config) { c.ShimBinary = oldCairn })

	run := runDetached(t, e, "sh", "-c", trapped)
	frozen := runDetached(t, e, "sh", "-c", trapped)
	pause(t, e, frozen.Id)
	// Exits with 7 once told to, which happens while no daemon runs.
	short := runDetached(t, e, "sh", "-c", "while [ ! -e /exit-now ]; do sleep 0.05; done; exit 7")

	e.Kill()
	if err := os.WriteFile(filepath.Join(short.Layers.Rootfs, "exit-now"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the short container to exit", func() bool { return !inspect.Alive(int(short.Pid), short.PidStartTime) })
	containers := filepath.Join(e.Config.Root, "exec", "containers")
	eventually(t, "the old shim to record the exit", func() bool {
		_, err := os.Stat(filepath.Join(containers, short.Id, "exit.json"))
		return err == nil
	})
	// What is on disk really is of protocol version 1, or this test would
	// prove nothing about reading it.
	for _, f := range []string{filepath.Join(short.Id, "exit.json"), filepath.Join(run.Id, "shim.json")} {
		if v := fileVersion(t, filepath.Join(containers, f)); v != 0 {
			t.Fatalf("%s written by %s has version %d, want none (protocol version 1)", f, previousRelease, v)
		}
	}

	e.Cairnd, e.Config.ShimBinary = testenv.Binaries(t)
	e.Start()

	for _, c := range []struct {
		id    string
		pid   int64
		start uint64
		state string
	}{{run.Id, run.Pid, run.PidStartTime, "RUNNING"}, {frozen.Id, frozen.Pid, frozen.PidStartTime, "PAUSED"}} {
		got := get(t, e, c.id)
		if stateName(got.State) != c.state || got.Pid != c.pid || got.PidStartTime != c.start {
			t.Errorf("%s: %s pid %d/%d after the upgrade, want %s pid %d/%d", c.id[:12], stateName(got.State), got.Pid, got.PidStartTime, c.state, c.pid, c.start)
		}
		if reasons := reconciledReasons(t, e, c.id); len(reasons) != 1 || !strings.Contains(reasons[0], "reattached") {
			t.Errorf("%s: history shows %v, want one reattach", c.id[:12], reasons)
		}
	}
	if got := freezerState(t, e, frozen.Id); got != "FROZEN" {
		t.Errorf("paused container's freezer is %s after the upgrade", got)
	}
	if got := get(t, e, short.Id); got.State != stopped || got.ExitCode == nil || *got.ExitCode != 7 {
		t.Errorf("container that exited while no daemon ran: %s exit %v, want stopped with 7", stateName(got.State), got.ExitCode)
	}

	// The new daemon drives the old shims: the stop's exit code comes from
	// the old shim's answer to wait.
	stop(t, e, run.Id, 10)
	if got := exitCode(wait(t, e, run.Id)); got != "42" {
		t.Errorf("stop of a container under an old shim: exit %s, want 42", got)
	}
	if got := get(t, e, run.Id); got.State != stopped || got.ExitCode == nil || *got.ExitCode != 42 {
		t.Errorf("after stop: %s exit %v, want stopped with 42 recorded", stateName(got.State), got.ExitCode)
	}
	for _, id := range []string{run.Id, frozen.Id, short.Id} {
		remove(t, e, id, true)
	}
	if n := len(list(t, e)); n != 0 {
		t.Errorf("%d containers left after rm -f of all", n)
	}
	// Stopped, the daemon's own process and its standby shim are gone too:
	// whatever is left is a leak.
	e.Stop()
	e.AssertNoLeaks(t)
}
