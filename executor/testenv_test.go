package executor

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cairn-run/cairn/internal/procstat"
	"github.com/cairn-run/cairn/internal/testenv"
)

// testEnv is one scratch executor: its own Dir and its own cgroup parent,
// torn down completely when the test ends, failed or not.
type testEnv struct {
	t      testing.TB
	dir    string
	parent string
	rootfs string
	ex     *Executor
}

func newTestEnv(t testing.TB) *testEnv {
	return newTestEnvIn(t, t.TempDir())
}

func newTestEnvIn(t testing.TB, dir string) *testEnv {
	t.Helper()
	testenv.RequireRoot(t)
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	env := &testEnv{t: t, dir: dir, parent: "cairn-test-" + testenv.RandomHex(6), rootfs: testenv.BusyboxRootfs(t)}
	env.ex, err = New(Config{Dir: dir, ShimBinary: bin, CgroupParent: env.parent})
	if err != nil {
		t.Fatal(err)
	}
	usedParents.Store(env.parent, env.ex.mounts)
	t.Cleanup(env.teardown)
	t.Cleanup(func() { _ = env.ex.Close() })
	return env
}

// freshExecutor is what a restarted daemon would construct.
func (env *testEnv) freshExecutor() *Executor {
	env.t.Helper()
	ex, err := New(env.ex.cfg)
	if err != nil {
		env.t.Fatal(err)
	}
	env.t.Cleanup(func() { _ = ex.Close() })
	return ex
}

func (env *testEnv) spec(id string, args ...string) Spec {
	return Spec{ID: id, Rootfs: env.rootfs, Args: args, Hostname: "h-" + id}
}

func (env *testEnv) start(id string, args ...string) Process {
	env.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := env.ex.Start(ctx, env.spec(id, args...))
	if err != nil {
		env.t.Fatalf("Start(%s): %v", id, err)
	}
	return p
}

func (env *testEnv) wait(ex *Executor, id string, p Process) Exit {
	env.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	x, err := ex.Wait(ctx, id, p)
	if err != nil {
		env.t.Fatalf("Wait(%s): %v", id, err)
	}
	return x
}

func (env *testEnv) cgroupDir(ctrl, id string) string {
	return filepath.Join("/sys/fs/cgroup", ctrl, env.parent, id)
}

// teardown kills and removes whatever the test left: every container's
// processes, shims, state and cgroups, then the cgroup parent in every
// hierarchy. It reports leaks as test errors.
func (env *testEnv) teardown() {
	ids, _ := env.ex.IDs()
	for _, id := range ids {
		if err := env.ex.Remove(id); err != nil {
			env.t.Errorf("teardown: Remove(%s): %v", id, err)
		}
	}
	if n := env.ex.mounts.kill(env.parent); n > 0 {
		env.t.Errorf("teardown: killed %d leftover processes in cgroup %s", n, env.parent)
		deadline := time.Now().Add(5 * time.Second)
		for len(env.ex.mounts.pids(env.parent)) > 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if err := env.ex.mounts.remove(env.parent); err != nil {
		env.t.Errorf("teardown: %v", err)
	}
	for _, d := range env.ex.mounts.dirs(env.parent) {
		if fileExists(d) {
			env.t.Errorf("teardown: cgroup %s survived removal", d)
		}
	}
	for _, pid := range shimsUnder(env.dir) {
		env.t.Errorf("teardown: shim %d still running, killing it", pid)
		_ = unix.Kill(pid, unix.SIGKILL)
	}
}

// usedParents maps every cgroup parent of this run to its hierarchies, so
// that TestMain can check at the very end that none came back (a late
// mkdir by a straggler would escape each test's own teardown check).
var usedParents sync.Map // string -> cgroupMounts

// leakedCgroups removes and reports cgroup parents of this run that still
// exist.
func leakedCgroups() []string {
	var leaked []string
	usedParents.Range(func(k, v any) bool {
		m := v.(cgroupMounts)
		for _, d := range m.dirs(k.(string)) {
			if fileExists(d) {
				leaked = append(leaked, d)
			}
		}
		_ = m.remove(k.(string))
		return true
	})
	return leaked
}

// shimsUnder finds live shim processes whose --dir lies under dir.
func shimsUnder(dir string) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		if len(args) > 2 && args[1] == "shim" && strings.Contains(string(cmdline), dir+string(filepath.Separator)) {
			if st, err := procstat.Read(pid); err == nil && st.State != 'Z' {
				out = append(out, pid)
			}
		}
	}
	return out
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func codeOf(x Exit) string {
	if x.Code == nil {
		return "unknown (" + x.Reason + ")"
	}
	return strconv.Itoa(*x.Code)
}
