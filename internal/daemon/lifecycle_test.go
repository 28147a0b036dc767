package daemon_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"connectrpc.com/connect"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/internal/testenv/scratch"
)

const forever = "trap 'exit 0' TERM; while true; do sleep 0.05; done"

func TestContainer_ExitCodesAreReal(t *testing.T) {
	e := scratch.NewDaemon(t)
	cases := []struct {
		cmd  []string
		kill bool
		want string
	}{
		{[]string{"true"}, false, "0"},
		{[]string{"sh", "-c", "exit 3"}, false, "3"},
		{[]string{"sleep", "1000"}, true, "137"},
	}
	for _, tc := range cases {
		c := runDetached(t, e, tc.cmd...)
		if tc.kill {
			if _, err := e.Containers.Kill(bg, connect.NewRequest(&cairnv1.KillRequest{Id: c.Id, Signal: "KILL"})); err != nil {
				t.Fatal(err)
			}
		}
		if got := exitCode(wait(t, e, c.Id)); got != tc.want {
			t.Errorf("%v: exit code %s, want %s", tc.cmd, got, tc.want)
		}
		if got := get(t, e, c.Id); got.State != cairnv1.ContainerState_CONTAINER_STATE_STOPPED || got.Pid != 0 || got.FinishedAt == nil {
			t.Errorf("%v: after exit %+v", tc.cmd, got)
		}
	}
}

func TestContainer_PauseFreezesAndUnpauseThaws(t *testing.T) {
	e := scratch.NewDaemon(t)
	c := runDetached(t, e, "sh", "-c", forever)
	if _, err := e.Containers.Pause(bg, connect.NewRequest(&cairnv1.PauseRequest{Id: c.Id})); err != nil {
		t.Fatal(err)
	}
	if got := freezerState(t, e, c.Id); got != "FROZEN" {
		t.Fatalf("freezer.state after pause = %s", got)
	}
	if got := get(t, e, c.Id).State; got != cairnv1.ContainerState_CONTAINER_STATE_PAUSED {
		t.Fatalf("state after pause = %s", got)
	}
	if _, err := e.Containers.Unpause(bg, connect.NewRequest(&cairnv1.UnpauseRequest{Id: c.Id})); err != nil {
		t.Fatal(err)
	}
	if got := freezerState(t, e, c.Id); got != "THAWED" {
		t.Fatalf("freezer.state after unpause = %s", got)
	}
	// Stop of a paused container thaws it first, so the TERM trap runs.
	if _, err := e.Containers.Pause(bg, connect.NewRequest(&cairnv1.PauseRequest{Id: c.Id})); err != nil {
		t.Fatal(err)
	}
	if got := stop(t, e, c.Id, 10); got.ExitCode == nil || *got.ExitCode != 0 {
		t.Fatalf("stop of paused container: exit %v, want 0 from the TERM trap", got.ExitCode)
	}
}

func TestContainer_StopSendsTermThenKill(t *testing.T) {
	e := scratch.NewDaemon(t)
	trapped := runDetached(t, e, "sh", "-c", "trap 'exit 42' TERM; while true; do sleep 0.05; done")
	if got := stop(t, e, trapped.Id, 10); *got.ExitCode != 42 {
		t.Fatalf("trapped TERM: exit %d, want 42", *got.ExitCode)
	}
	ignoring := runDetached(t, e, "sleep", "1000") // PID 1 ignores TERM
	if got := stop(t, e, ignoring.Id, 1); *got.ExitCode != 137 {
		t.Fatalf("ignored TERM: exit %d, want 137 after the grace period", *got.ExitCode)
	}
}

func TestContainer_WritableLayerSurvivesStopStartRestartAndGoesWithRemove(t *testing.T) {
	e := scratch.NewDaemon(t)
	c := create(t, e, "data", "sh", "-c", "echo run >> /data.txt; rm -f /bin/vi; "+forever)
	start(t, e, c.Id)
	eventually(t, "first write", func() bool { return countRuns(t, e, c.Id) == 1 })
	stop(t, e, c.Id, 10)
	upper := get(t, e, c.Id).Layers.Upper
	if isMounted(get(t, e, c.Id).Layers.Rootfs) {
		t.Fatal("rootfs still mounted after stop")
	}
	start(t, e, c.Id)
	eventually(t, "second write", func() bool { return countRuns(t, e, c.Id) == 2 })
	if _, err := e.Containers.Restart(bg, connect.NewRequest(&cairnv1.RestartRequest{Id: c.Id})); err != nil {
		t.Fatal(err)
	}
	eventually(t, "third write", func() bool { return countRuns(t, e, c.Id) == 3 })
	// RestartCount counts policy restarts only: a user's restart resets it, as Docker's does.
	if got := get(t, e, c.Id); got.RestartCount != 0 || got.State != cairnv1.ContainerState_CONTAINER_STATE_RUNNING {
		t.Fatalf("after restart: %+v", got)
	}
	if _, err := os.Lstat(filepath.Join(upper, "bin", "vi")); err != nil {
		t.Fatalf("whiteout of deleted /bin/vi missing from the writable layer: %v", err)
	}
	remove(t, e, c.Id, true)
	if _, err := os.Stat(upper); !os.IsNotExist(err) {
		t.Fatalf("writable layer still on disk after rm: %v", err)
	}
	again := runDetached(t, e, "sh", "-c", "test -e /data.txt && echo leaked || echo clean")
	wait(t, e, again.Id)
	if got := logs(t, e, again.Id, false); got != "clean\n" {
		t.Fatalf("a new container saw another's files: %q", got)
	}
}

// countRuns reads how many lines the container appended to /data.txt.
func countRuns(t testing.TB, e *scratch.Env, id string) int {
	c := get(t, e, id)
	if c.Layers == nil {
		return -1
	}
	data, err := os.ReadFile(filepath.Join(c.Layers.Upper, "data.txt"))
	if err != nil {
		return 0
	}
	return strings.Count(string(data), "run\n")
}

func TestContainer_LogsAndIsolation(t *testing.T) {
	e := scratch.NewDaemon(t)
	c := runDetached(t, e, "sh", "-c", "echo out; echo err >&2; echo pid=$$; hostname; cat /etc/hostname; ls /sys/class/net")
	wait(t, e, c.Id)
	got := logs(t, e, c.Id, false)
	short := c.Id[:12]
	for _, want := range []string{"out\n", "err\n", "pid=1\n", short + "\n" + short + "\n", "lo\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("logs %q lack %q", got, want)
		}
	}
	if strings.Contains(got, "eth0") {
		t.Errorf("container sees host interfaces: %q", got)
	}
}

func TestContainer_LogsFollowEndsWithTheExit(t *testing.T) {
	e := scratch.NewDaemon(t)
	c := runDetached(t, e, "sh", "-c", "for i in 1 2 3; do echo line$i; sleep 0.05; done; exit 5")
	if got := logs(t, e, c.Id, true); got != "line1\nline2\nline3\n" {
		t.Fatalf("followed logs = %q", got)
	}
	if got := exitCode(wait(t, e, c.Id)); got != "5" {
		t.Fatalf("exit %s", got)
	}
}

func TestContainer_InitLayerFiles(t *testing.T) {
	e := scratch.NewDaemon(t)
	c := runDetached(t, e, "sh", "-c", "cat /etc/hosts; readlink /etc/mtab; test -e /etc/resolv.conf && echo resolv")
	wait(t, e, c.Id)
	got := logs(t, e, c.Id, false)
	for _, want := range []string{"127.0.0.1", "localhost", c.Id[:12], "/proc/mounts", "resolv"} {
		if !strings.Contains(got, want) {
			t.Errorf("init layer: output %q lacks %q", got, want)
		}
	}
}
