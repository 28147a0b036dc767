package daemon_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/sys/unix"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/internal/daemon"
	"github.com/cairn-run/cairn/internal/inspect"
	"github.com/cairn-run/cairn/internal/testenv/scratch"
	"github.com/cairn-run/cairn/journal"
)

const trapped = "trap 'exit 42' TERM; while true; do sleep 0.05; done"

func list(t testing.TB, e *scratch.Env) []*cairnv1.Container {
	t.Helper()
	res, err := e.Containers.List(bg, connect.NewRequest(&cairnv1.ListRequest{All: true}))
	if err != nil {
		t.Fatal(err)
	}
	return res.Msg.Containers
}

func pause(t testing.TB, e *scratch.Env, id string) {
	t.Helper()
	if _, err := e.Containers.Pause(bg, connect.NewRequest(&cairnv1.PauseRequest{Id: id})); err != nil {
		t.Fatal(err)
	}
}

// assertWorldMatchesJournal checks every invariant recovery promises: each
// container is in the state the machine shows, no transition is left
// unfinished, there is exactly one rootfs mount per running or paused
// container and none for others, and no cgroup, shim or process but theirs
// (and the daemon's standby shim).
func assertWorldMatchesJournal(t testing.TB, e *scratch.Env) {
	t.Helper()
	liveRootfs := map[string]bool{}
	liveIDs := map[string]bool{}
	liveShims := map[int]bool{}
	for _, c := range list(t, e) {
		if c.PendingEvent != "" {
			t.Errorf("%s: unfinished %s after recovery", c.Id[:12], c.PendingEvent)
		}
		switch c.State {
		case running, paused:
			if !inspect.Alive(int(c.Pid), c.PidStartTime) {
				t.Errorf("%s is %s but pid %d (start %d) is not alive", c.Id[:12], stateName(c.State), c.Pid, c.PidStartTime)
			}
			want := map[cairnv1.ContainerState]string{running: "THAWED", paused: "FROZEN"}[c.State]
			if got, _ := inspect.FreezerState(e.CgroupParent, c.Id); got != want {
				t.Errorf("%s is %s but its freezer is %q", c.Id[:12], stateName(c.State), got)
			}
			liveRootfs[c.Layers.Rootfs] = true
			liveIDs[c.Id] = true
			liveShims[int(c.ShimPid)] = true
		default:
			if c.Pid != 0 {
				t.Errorf("%s is %s with pid %d", c.Id[:12], stateName(c.State), c.Pid)
			}
		}
	}
	mounts := inspect.MountsUnder(e.Root)
	for _, m := range mounts {
		if !liveRootfs[m] {
			t.Errorf("mount %s belongs to no running or paused container", m)
		}
	}
	for rootfs := range liveRootfs {
		if n := countOf(mounts, rootfs); n != 1 {
			t.Errorf("rootfs %s is mounted %d times, want once", rootfs, n)
		}
	}
	for _, dir := range inspect.CgroupDirs(e.CgroupParent) {
		if id, ok := inspect.CgroupOwner(e.CgroupParent, dir); !ok || !liveIDs[id] {
			t.Errorf("cgroup %s belongs to no running or paused container", dir)
		}
	}
	standby := filepath.Join(e.Config.Root, "exec")
	for _, pid := range inspect.ProcessesOf(e.Root, e.CgroupParent) {
		cmd := inspect.Cmdline(pid)
		if strings.Contains(cmd, " shim ") && !liveShims[pid] && inspect.Cwd(pid) != standby {
			t.Errorf("shim %d belongs to no running or paused container: %s", pid, cmd)
		}
	}
}

func countOf(list []string, s string) int {
	n := 0
	for _, x := range list {
		if x == s {
			n++
		}
	}
	return n
}

// checkJournalOffline stops the daemon, checks the journal file as `cairn
// journal check` does, and starts the daemon again.
func checkJournalOffline(t testing.TB, e *scratch.Env) journal.Report {
	t.Helper()
	e.Stop()
	rep, err := journal.CheckFile(filepath.Join(e.Config.Root, "cairn.db"), time.Second)
	if err != nil {
		t.Fatalf("journal check: %v", err)
	}
	e.Start()
	return rep
}

func reconciledReasons(t testing.TB, e *scratch.Env, id string) []string {
	t.Helper()
	stream, err := e.Journal.History(bg, connect.NewRequest(&cairnv1.HistoryRequest{Id: id}))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for stream.Receive() {
		for _, r := range stream.Msg().Records {
			if r.Kind == cairnv1.RecordKind_RECORD_KIND_RECONCILED {
				out = append(out, r.Event+": "+r.Error)
			}
		}
	}
	return out
}

func TestRecover_KilledDaemonReattachesRunningAndPausedKeepsPIDs(t *testing.T) {
	e := scratch.NewBinaryDaemon(t)
	run := runDetached(t, e, "sh", "-c", "echo hello; "+trapped)
	frozen := runDetached(t, e, "sh", "-c", trapped)
	pause(t, e, frozen.Id)
	// The shim is hard to lose: its own session, spared by the OOM killer
	// (lowering the score needs CAP_SYS_RESOURCE, which some sandboxes
	// withhold even from root).
	adj, _ := os.ReadFile(fmt.Sprintf("/proc/%d/oom_score_adj", run.ShimPid))
	switch {
	case !hasCapSysResource(t):
		t.Logf("no CAP_SYS_RESOURCE here: the shim's oom_score_adj stays %s", strings.TrimSpace(string(adj)))
	case strings.TrimSpace(string(adj)) != "-999":
		t.Errorf("shim oom_score_adj = %q, want -999", adj)
	}
	if sid, _ := unix.Getsid(int(run.ShimPid)); sid != int(run.ShimPid) {
		t.Errorf("shim %d is in session %d, want its own", run.ShimPid, sid)
	}
	e.Kill()
	e.Start()
	for _, c := range []*cairnv1.Container{run, frozen} {
		got := get(t, e, c.Id)
		if got.Pid != c.Pid || got.PidStartTime != c.PidStartTime {
			t.Errorf("%s: pid %d/%d after recovery, was %d/%d", c.Id[:12], got.Pid, got.PidStartTime, c.Pid, c.PidStartTime)
		}
		if reasons := reconciledReasons(t, e, c.Id); len(reasons) != 1 || !strings.Contains(reasons[0], "reattached") {
			t.Errorf("%s: history shows %v, want one reattach", c.Id[:12], reasons)
		}
	}
	if got := get(t, e, frozen.Id).State; got != paused {
		t.Fatalf("paused container is %s after recovery", stateName(got))
	}
	assertWorldMatchesJournal(t, e)
	// Reattached containers are fully usable: pause, logs follow, stop, rm.
	pause(t, e, run.Id)
	if got, _ := inspect.FreezerState(e.CgroupParent, run.Id); got != "FROZEN" {
		t.Fatalf("pause of a reattached container: freezer %s", got)
	}
	if _, err := e.Containers.Unpause(bg, connect.NewRequest(&cairnv1.UnpauseRequest{Id: run.Id})); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(100 * time.Millisecond)
		stop(t, e, run.Id, 10)
	}()
	if got := logs(t, e, run.Id, true); got != "hello\n" {
		t.Errorf("logs -f of a reattached container: %q", got)
	}
	if got := exitCode(wait(t, e, run.Id)); got != "42" {
		t.Errorf("stop of a reattached container: exit %s, want 42", got)
	}
	if _, err := e.Containers.Unpause(bg, connect.NewRequest(&cairnv1.UnpauseRequest{Id: frozen.Id})); err != nil {
		t.Fatal(err)
	}
	remove(t, e, frozen.Id, true)
	rep := checkJournalOffline(t, e)
	if !rep.CleanShutdown {
		t.Error("a stopped daemon left no clean-shutdown marker")
	}
}

func TestRecover_ExitsWhileDownGetTheirRealCodes(t *testing.T) {
	e := scratch.NewBinaryDaemon(t)
	three := runDetached(t, e, "sh", "-c", "sleep 0.3; exit 3")
	killed := runDetached(t, e, "sh", "-c", trapped)
	e.Kill()
	if err := syscall.Kill(int(killed.Pid), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, "both containers to exit", func() bool {
		return !inspect.Alive(int(three.Pid), three.PidStartTime) && !inspect.Alive(int(killed.Pid), killed.PidStartTime)
	})
	bothDead := time.Now()
	e.Start()
	for c, want := range map[*cairnv1.Container]string{three: "3", killed: "137"} {
		got := get(t, e, c.Id)
		if got.State != stopped || got.ExitCode == nil || fmt.Sprint(*got.ExitCode) != want || got.FinishedAt == nil {
			t.Errorf("%s: %s exit %v finished %v, want stopped with %s", c.Id[:12], stateName(got.State), got.ExitCode, got.FinishedAt, want)
		}
		if got.FinishedAt.AsTime().After(bothDead) {
			t.Errorf("%s: finished_at %v is after the exit was seen (%v): the recovery time, not the exit's", c.Id[:12], got.FinishedAt.AsTime(), bothDead)
		}
	}
	assertWorldMatchesJournal(t, e)
}

func TestRecover_ShimAndProcessLostGivesAnUnknownExitNotANumber(t *testing.T) {
	e := scratch.NewBinaryDaemon(t)
	c := runDetached(t, e, "sh", "-c", trapped)
	e.Kill()
	for _, pid := range []int64{c.ShimPid, c.Pid} {
		if err := syscall.Kill(int(pid), syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "the container to die", func() bool { return !inspect.Alive(int(c.Pid), c.PidStartTime) })
	e.Start()
	got := get(t, e, c.Id)
	if got.State != stopped || got.ExitCode != nil || !strings.Contains(got.ExitReason, "unknown") {
		t.Fatalf("after losing shim and process: %s exit %v reason %q, want stopped, no code, a reason", stateName(got.State), got.ExitCode, got.ExitReason)
	}
	w := wait(t, e, c.Id)
	if w.ExitCode != nil || w.ExitReason == "" {
		t.Fatalf("wait: %+v", w)
	}
	if n := metricValue(t, e, "cairn_exit_code_unknown_total"); n != 1 {
		t.Fatalf("cairn_exit_code_unknown_total = %v, want 1", n)
	}
	assertWorldMatchesJournal(t, e)
}

func metricValue(t testing.TB, e *scratch.Env, name string) float64 {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://cairnd/metrics", nil)
	resp, err := e.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			var v float64
			fmt.Sscan(rest, &v)
			return v
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}

func TestRecover_TwentyContainersRunningPausedAndExitedWhileDown(t *testing.T) {
	e := scratch.NewBinaryDaemon(t)
	var runningCs, pausedCs, exitedCs []*cairnv1.Container
	for i := range 20 {
		switch {
		case i < 8:
			runningCs = append(runningCs, runDetached(t, e, "sh", "-c", trapped))
		case i < 14:
			c := runDetached(t, e, "sh", "-c", trapped)
			pause(t, e, c.Id)
			pausedCs = append(pausedCs, c)
		default:
			exitedCs = append(exitedCs, runDetached(t, e, "sh", "-c", fmt.Sprintf("sleep 0.5; exit %d", i)))
		}
	}
	e.Kill()
	eventually(t, "the short containers to exit", func() bool {
		for _, c := range exitedCs {
			if inspect.Alive(int(c.Pid), c.PidStartTime) {
				return false
			}
		}
		return true
	})
	e.Start()
	for _, c := range runningCs {
		if got := get(t, e, c.Id); got.State != running || got.Pid != c.Pid {
			t.Errorf("running %s: %s pid %d, was %d", c.Id[:12], stateName(got.State), got.Pid, c.Pid)
		}
	}
	for _, c := range pausedCs {
		if got := get(t, e, c.Id); got.State != paused || got.Pid != c.Pid {
			t.Errorf("paused %s: %s pid %d", c.Id[:12], stateName(got.State), got.Pid)
		}
	}
	for i, c := range exitedCs {
		got := get(t, e, c.Id)
		if got.State != stopped || got.ExitCode == nil || int(*got.ExitCode) != 14+i {
			t.Errorf("exited %s: %s exit %v, want %d", c.Id[:12], stateName(got.State), got.ExitCode, 14+i)
		}
	}
	assertWorldMatchesJournal(t, e)
	checkJournalOffline(t, e)
}

func TestRecover_CrashesDuringRecoveryItselfConverge(t *testing.T) {
	e := scratch.NewBinaryDaemon(t)
	live := runDetached(t, e, "sh", "-c", trapped)
	frozen := runDetached(t, e, "sh", "-c", trapped)
	pause(t, e, frozen.Id)
	short := runDetached(t, e, "sh", "-c", "sleep 0.3; exit 7")
	e.Kill()
	eventually(t, "the short container to exit", func() bool { return !inspect.Alive(int(short.Pid), short.PidStartTime) })
	for _, point := range []string{"recovery.before-record", "recovery.after-record", "recovery.after-record"} {
		e.StartWith("CAIRN_CRASH_AT=" + point)
		e.WaitCrash(30 * time.Second)
	}
	e.Start()
	if got := get(t, e, live.Id); got.State != running || got.Pid != live.Pid {
		t.Errorf("live: %s pid %d", stateName(got.State), got.Pid)
	}
	if got := get(t, e, frozen.Id); got.State != paused {
		t.Errorf("paused: %s", stateName(got.State))
	}
	if got := get(t, e, short.Id); got.ExitCode == nil || *got.ExitCode != 7 {
		t.Errorf("short: exit %v, want 7", got.ExitCode)
	}
	assertWorldMatchesJournal(t, e)
	checkJournalOffline(t, e)
}

func TestShutdown_LiveRestoreKeepsContainersAndWithoutItStopsThem(t *testing.T) {
	for _, liveRestore := range []bool{true, false} {
		t.Run(fmt.Sprintf("live-restore=%v", liveRestore), func(t *testing.T) {
			e := scratch.NewBinaryDaemon(t, func(c *daemon.Config) { c.LiveRestore = liveRestore })
			c := runDetached(t, e, "sh", "-c", trapped)
			e.Stop()
			rep, err := journal.CheckFile(filepath.Join(e.Config.Root, "cairn.db"), time.Second)
			if err != nil || !rep.CleanShutdown {
				t.Fatalf("after a clean stop: %+v %v", rep, err)
			}
			if alive := inspect.Alive(int(c.Pid), c.PidStartTime); alive != liveRestore {
				t.Fatalf("container alive=%v after shutdown, want %v", alive, liveRestore)
			}
			e.Start()
			got := get(t, e, c.Id)
			if liveRestore && (got.State != running || got.Pid != c.Pid) {
				t.Errorf("live restore: %s pid %d", stateName(got.State), got.Pid)
			}
			if !liveRestore && (got.State != stopped || got.ExitCode == nil || *got.ExitCode != 42) {
				t.Errorf("without live restore: %s exit %v, want stopped by SIGTERM with 42", stateName(got.State), got.ExitCode)
			}
			if !liveRestore && !slices.ContainsFunc(historyEvents(t, e, c.Id), func(s string) bool { return s == "DONE stop" }) {
				t.Errorf("the shutdown stop was not journaled: %v", historyEvents(t, e, c.Id))
			}
			assertWorldMatchesJournal(t, e)
		})
	}
}

func historyEvents(t testing.TB, e *scratch.Env, id string) []string {
	t.Helper()
	stream, err := e.Journal.History(context.Background(), connect.NewRequest(&cairnv1.HistoryRequest{Id: id}))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for stream.Receive() {
		for _, r := range stream.Msg().Records {
			out = append(out, strings.TrimPrefix(r.Kind.String(), "RECORD_KIND_")+" "+r.Event)
		}
	}
	return out
}

// hasCapSysResource reports whether this process may lower oom_score_adj.
func hasCapSysResource(t testing.TB) bool {
	t.Helper()
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "CapEff:"); ok {
			var caps uint64
			fmt.Sscanf(strings.TrimSpace(rest), "%x", &caps)
			return caps&(1<<unix.CAP_SYS_RESOURCE) != 0
		}
	}
	return false
}
