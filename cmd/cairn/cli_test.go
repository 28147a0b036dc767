package main_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cairn-run/cairn/api"
	"github.com/cairn-run/cairn/internal/testenv"
	"github.com/cairn-run/cairn/internal/testenv/scratch"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// cli runs the cairn binary against e's daemon, through CAIRN_SOCKET.
func cli(t *testing.T, e *scratch.Env, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return cliWithInput(t, e, nil, args...)
}

// cliWithInput is cli with stdin read from in.
func cliWithInput(t *testing.T, e *scratch.Env, in io.Reader, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	_, cairn := testenv.Binaries(t)
	cmd := exec.Command(cairn, args...)
	cmd.Stdin = in
	cmd.Env = append(os.Environ(), "CAIRN_SOCKET="+e.Socket)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("cairn %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

func TestCLI_RunAttachedStreamsOutputAndExitsWithTheCode(t *testing.T) {
	e := scratch.NewDaemon(t)
	out, errOut, code := cli(t, e, "run", "--rm", "busybox", "sh", "-c", "echo hello; echo oops >&2; exit 7")
	if code != 7 || out != "hello\n" || errOut != "oops\n" {
		t.Fatalf("run: code %d, stdout %q, stderr %q", code, out, errOut)
	}
	ps, _, _ := cli(t, e, "ps", "-a", "--format", "json")
	if ps != "" {
		t.Fatalf("--rm left a container: %s", ps)
	}
}

func TestCLI_LifecycleByNameAndPrefix(t *testing.T) {
	e := scratch.NewDaemon(t)
	id, _, code := cli(t, e, "run", "-d", "--name", "web", "busybox", "sh", "-c", "trap 'exit 5' TERM; while true; do sleep 0.05; done")
	id = strings.TrimSpace(id)
	if code != 0 || len(id) != 64 {
		t.Fatalf("run -d: %q code %d", id, code)
	}
	for _, args := range [][]string{{"pause", "web"}, {"unpause", id[:6]}, {"stop", "-t", "5", "web"}} {
		if out, errOut, code := cli(t, e, args...); code != 0 {
			t.Fatalf("%v: code %d, %s %s", args, code, out, errOut)
		}
	}
	out, _, code := cli(t, e, "wait", "web")
	if code != 5 || strings.TrimSpace(out) != "5" {
		t.Fatalf("wait: %q code %d", out, code)
	}
	var row map[string]any
	ps, _, _ := cli(t, e, "ps", "-a", "--format", "json")
	if err := json.Unmarshal([]byte(ps), &row); err != nil {
		t.Fatalf("ps json %q: %v", ps, err)
	}
	for _, key := range []string{"id", "name", "image", "state", "pid", "exit_code", "created_at", "started_at", "finished_at"} {
		if _, ok := row[key]; !ok {
			t.Errorf("ps --format json lacks %q: %v", key, row)
		}
	}
	if row["state"] != "stopped" || row["exit_code"] != float64(5) {
		t.Errorf("ps row: %v", row)
	}
	var inspected []map[string]any
	raw, _, _ := cli(t, e, "inspect", "web")
	if err := json.Unmarshal([]byte(raw), &inspected); err != nil || len(inspected) != 1 {
		t.Fatalf("inspect %q: %v", raw, err)
	}
	inspect := inspected[0]
	if inspect["mount_id"] == "" || inspect["layers"] == nil || inspect["exit_code"] != float64(5) {
		t.Errorf("inspect: %v", inspect)
	}
	history, _, _ := cli(t, e, "history", "web")
	for _, want := range []string{"INTENT", "DONE", "create", "pause", "unpause", "stop"} {
		if !strings.Contains(history, want) {
			t.Errorf("history lacks %q:\n%s", want, history)
		}
	}
	if _, errOut, code := cli(t, e, "rm", "web"); code != 0 {
		t.Fatalf("rm: %s", errOut)
	}
}

func TestCLI_ErrorsNameTheCodeAndExitNonZero(t *testing.T) {
	e := scratch.NewDaemon(t)
	cases := map[string][]string{
		"not_found":           {"start", "nosuchcontainer"},
		"invalid_argument":    {"create", "--name", "bad/name", "busybox", "true"},
		"failed_precondition": {"image", "rm", "busybox"},
	}
	cli(t, e, "create", "--name", "holder", "busybox", "true")
	for want, args := range cases {
		_, errOut, code := cli(t, e, args...)
		if code != 125 || !strings.Contains(errOut, want) {
			t.Errorf("%v: code %d, stderr %q, want 125 and %s", args, code, errOut, want)
		}
	}
	// A deadline on a call that would block.
	cli(t, e, "run", "-d", "--name", "forever", "busybox", "sleep", "1000")
	_, errOut, code := cli(t, e, "--timeout", "200ms", "wait", "forever")
	if code != 125 || !strings.Contains(errOut, "deadline_exceeded") {
		t.Errorf("wait with --timeout: code %d, stderr %q", code, errOut)
	}
}

func TestCLI_JournalCheckOfAStoppedDaemon(t *testing.T) {
	e := scratch.NewDaemon(t)
	cli(t, e, "create", "--name", "kept", "busybox", "true")
	_, errOut, code := cli(t, e, "journal", "check", "--root", e.Config.Root)
	if code == 0 || !strings.Contains(errOut, "locked") {
		t.Fatalf("check while the daemon runs: code %d, %q; want a refusal naming the lock", code, errOut)
	}
	e.Stop()
	out, errOut, code := cli(t, e, "journal", "check", "--root", e.Config.Root)
	if code != 0 || !strings.Contains(out, "ok") || !strings.Contains(out, "1 containers") || !strings.Contains(out, "clean shutdown: yes") {
		t.Fatalf("check: code %d, %q %q", code, out, errOut)
	}
	e.Start()
}

func TestCLI_ImportFromStdinRefusesATruncatedTar(t *testing.T) {
	e := scratch.NewDaemon(t)
	tarball, err := os.ReadFile(testenv.BusyboxTar(t))
	if err != nil {
		t.Fatal(err)
	}
	// head -c 4096 busybox.tar | cairn image import - x
	_, errOut, code := cliWithInput(t, e, bytes.NewReader(tarball[:4096]), "image", "import", "-", "x")
	if code == 0 || !strings.Contains(errOut, "truncated") {
		t.Fatalf("truncated import: code %d, %q", code, errOut)
	}
	out, errOut, code := cliWithInput(t, e, bytes.NewReader(tarball), "image", "import", "-", "whole")
	if code != 0 || !strings.HasPrefix(out, "whole:latest sha256:") {
		t.Fatalf("import from stdin: code %d, %q %q", code, out, errOut)
	}
	if ls, _, _ := cli(t, e, "image", "ls"); strings.Contains(ls, "\nx ") || !strings.Contains(ls, "\nwhole ") {
		t.Fatalf("image ls:\n%s", ls)
	}
}

func TestCLI_NoDaemonSaysSo(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.sock")
	// A stale socket file: bound once, nobody accepts on it.
	stale := filepath.Join(dir, "stale.sock")
	ln, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	_, cairn := testenv.Binaries(t)
	for _, sock := range []string{missing, stale} {
		var errb bytes.Buffer
		cmd := exec.Command(cairn, "--socket", sock, "ps")
		cmd.Stderr = &errb
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 125 {
			t.Errorf("%s: %v, want exit 125", sock, err)
		}
		if want := "cannot reach cairnd at " + sock + ": is cairnd running?"; !strings.Contains(errb.String(), want) {
			t.Errorf("%s: stderr %q, want %q", sock, errb.String(), want)
		}
	}
}

func TestCLI_VersionOfClientAndDaemon(t *testing.T) {
	e := scratch.NewDaemon(t)
	out, errOut, code := cli(t, e, "version")
	if code != 0 {
		t.Fatalf("version: code %d, %s", code, errOut)
	}
	for _, want := range []string{"Client:\n  Version:", "Server:\n  API version: " + api.Version + "\n", "Go version: go1.", "Revision:", "Modified:"} {
		if !strings.Contains(out, want) {
			t.Errorf("version lacks %q:\n%s", want, out)
		}
	}
	cairnd, _ := testenv.Binaries(t)
	v, err := exec.Command(cairnd, "--version").Output()
	if err != nil || !strings.HasPrefix(string(v), "cairnd ") || !strings.Contains(string(v), " go1.") {
		t.Fatalf("cairnd --version: %q %v", v, err)
	}
}

func TestCLI_CommandNotFoundIs127AndNotExecutableIs126(t *testing.T) {
	e := scratch.NewDaemon(t)
	for _, tc := range []struct {
		cmd  string
		code int
	}{{"nosuchcmd", 127}, {"/no/such/file", 127}, {"/etc/passwd", 126}, {"/bin", 126}} {
		_, stderr, code := cli(t, e, "run", "--rm", "busybox", tc.cmd)
		if code != tc.code {
			t.Errorf("run %s: exit %d (%s), want %d", tc.cmd, code, strings.TrimSpace(stderr), tc.code)
		}
	}
	if ps, _, _ := cli(t, e, "ps", "-a", "--format", "json"); strings.TrimSpace(ps) != "" {
		t.Errorf("failed --rm runs left containers: %s", ps)
	}
}

func TestCLI_WaitOnACreatedContainerBlocksUntilItHasRun(t *testing.T) {
	e := scratch.NewDaemon(t)
	id, _, code := cli(t, e, "create", "busybox", "sh", "-c", "exit 4")
	id = strings.TrimSpace(id)
	if code != 0 {
		t.Fatalf("create: exit %d", code)
	}
	if _, stderr, code := cli(t, e, "--timeout", "300ms", "wait", id); code != 125 || !strings.Contains(stderr, "deadline") {
		t.Fatalf("wait on a created container returned at once: exit %d %s", code, stderr)
	}
	if _, _, code := cli(t, e, "start", id); code != 0 {
		t.Fatalf("start: exit %d", code)
	}
	if out, _, code := cli(t, e, "wait", id); code != 4 || strings.TrimSpace(out) != "4" {
		t.Fatalf("wait after the run: exit %d, printed %q", code, out)
	}
}

func TestCLI_EventsPrintsTheJournalAndFilters(t *testing.T) {
	e := scratch.NewDaemon(t)
	if _, _, code := cli(t, e, "run", "--rm", "--name", "once", "busybox", "true"); code != 0 {
		t.Fatalf("run: exit %d", code)
	}
	// The image import of the scratch daemon is journaled too: stop at the
	// journal's last record, and keep the container's.
	hist, _, _ := cli(t, e, "history", "--format", "json")
	lines := strings.Split(strings.TrimSpace(hist), "\n")
	var last struct{ Seq uint64 }
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil {
		t.Fatal(err)
	}
	until := strconv.FormatUint(last.Seq, 10)
	out, stderr, code := cli(t, e, "events", "--until", until, "--filter", "type=container", "--format", "json")
	if code != 0 {
		t.Fatalf("events: exit %d %s", code, stderr)
	}
	var events []map[string]any
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var ev map[string]any
		if err := dec.Decode(&ev); err != nil {
			t.Fatal(err)
		}
		events = append(events, ev)
	}
	if len(events) != 8 || events[0]["event"] != "create" || events[7]["event"] != "remove" {
		t.Fatalf("events of a run --rm: %s", out)
	}
	first := strconv.FormatUint(uint64(events[0]["seq"].(float64)), 10)
	out, _, code = cli(t, e, "events", "--since", first, "--until", until, "--filter", "event=start")
	if code != 0 || strings.Count(strings.TrimSpace(out), "\n") != 1 || !strings.Contains(out, "start") {
		t.Fatalf("events --since %s --until %s --filter event=start:\n%s", first, until, out)
	}
	if _, stderr, code := cli(t, e, "events", "--filter", "colour=red", "--until", "1"); code != 125 || !strings.Contains(stderr, "unknown filter") {
		t.Fatalf("a bad filter: exit %d %s", code, stderr)
	}
}

func TestCLI_ImageLoadFromADirectoryAndTheImageCommands(t *testing.T) {
	ti := testenv.Images(t)
	e := scratch.NewDaemon(t)
	out, errOut, code := cli(t, e, "image", "load", "-i", ti.Layout)
	if code != 0 || !strings.Contains(out, "Loaded image: cairn-test/multi:v1") || !strings.Contains(out, "Loaded image: cairn-test/base:v1") {
		t.Fatalf("load of a layout directory: code %d, %q %q", code, out, errOut)
	}
	// From stdin, the docker archive of the same image: it has it already.
	f, err := os.Open(ti.DockerArchive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if out, errOut, code := cliWithInput(t, e, f, "image", "load"); code != 0 || !strings.Contains(out, "cairn-test/multi:v1") {
		t.Fatalf("load from stdin: code %d, %q %q", code, out, errOut)
	}
	ls, _, _ := cli(t, e, "image", "ls")
	for _, want := range []string{"REPOSITORY", "cairn-test/multi   v1", "cairn-test/base    v1", "busybox            latest"} {
		if !strings.Contains(ls, want) {
			t.Errorf("image ls has no %q:\n%s", want, ls)
		}
	}
	if _, errOut, code := cli(t, e, "image", "tag", "cairn-test/multi:v1", "mine"); code != 0 {
		t.Fatalf("tag: %d %s", code, errOut)
	}
	hist, _, code := cli(t, e, "image", "history", "mine")
	if code != 0 || !strings.Contains(hist, "umoci repack") || !strings.Contains(hist, "JOURNAL") || !strings.Contains(hist, "tag") || !strings.Contains(hist, "load") {
		t.Fatalf("image history: %d\n%s", code, hist)
	}
	if out, _, code := cli(t, e, "run", "--rm", "mine"); code != 0 || !strings.Contains(out, "multi hello from /work/dir as 1000:1000") {
		t.Fatalf("run with no command: %d %q", code, out)
	}
	if out, _, code := cli(t, e, "run", "--rm", "-u", "0", "-w", "/x", "--entrypoint", "pwd", "mine"); code != 0 || strings.TrimSpace(out) != "/x" {
		t.Fatalf("run with -u, -w, --entrypoint: %d %q", code, out)
	}
	out, _, code = cli(t, e, "image", "rm", "mine", "cairn-test/multi:v1")
	if code != 0 || !strings.Contains(out, "Untagged: mine:latest") || !strings.Contains(out, "Deleted: sha256:") {
		t.Fatalf("image rm: %d %q", code, out)
	}
	if _, errOut, code := cli(t, e, "image", "rm", "nope"); code == 0 || !strings.Contains(errOut, "no such image") {
		t.Fatalf("image rm of nothing: %d %q", code, errOut)
	}
	out, _, code = cli(t, e, "image", "prune", "-a")
	if code != 0 || strings.Count(out, "Deleted:") != 2 {
		t.Fatalf("image prune -a: %d %q", code, out)
	}
	if all, _, _ := cli(t, e, "history"); !strings.Contains(all, "img ") || !strings.Contains(all, "delete") {
		t.Fatalf("cairn history shows no image records:\n%s", all)
	}
}
