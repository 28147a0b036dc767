package daemon_test

import (
	"archive/tar"
	"context"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/executor"
	"github.com/cairn-run/cairn/internal/daemon"
	"github.com/cairn-run/cairn/internal/testenv"
	"github.com/cairn-run/cairn/internal/testenv/scratch"
	"github.com/cairn-run/cairn/resources"
)

// runWith creates and starts a container of image with req's limits and
// security options, and returns it.
func runWith(t *testing.T, e *scratch.Env, req *cairnv1.CreateRequest) *cairnv1.Container {
	t.Helper()
	if req.Image == "" {
		req.Image = "busybox"
	}
	res, err := e.Containers.Create(bg, connect.NewRequest(req))
	if err != nil {
		t.Fatalf("create %v: %v", req.Command, err)
	}
	return start(t, e, res.Msg.Container.Id)
}

// output runs req to its end and returns its log and exit code.
func output(t *testing.T, e *scratch.Env, req *cairnv1.CreateRequest) (string, string) {
	t.Helper()
	c := runWith(t, e, req)
	w := wait(t, e, c.Id)
	return logs(t, e, c.Id, false), exitCode(w)
}

// cgroupFile reads a v1 controller's file of the container's cgroup.
func cgroupFile(t *testing.T, e *scratch.Env, id, controllerFile string) string {
	t.Helper()
	ctrl, file, _ := strings.Cut(controllerFile, "/")
	data, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", ctrl, e.CgroupParent, id, file))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}

func TestLimitsAreWrittenToTheCgroup(t *testing.T) {
	e := scratch.NewDaemon(t)
	req := &cairnv1.CreateRequest{Command: []string{"sleep", "60"}, Resources: &cairnv1.Resources{
		MemoryBytes: 64 << 20, NanoCpus: 1.5e9, CpuShares: 512, CpusetCpus: "0", PidsLimit: 50}}
	c := runWith(t, e, req)
	got := get(t, e, c.Id).Config.Resources
	if got.MemoryBytes != 64<<20 || got.PidsLimit != 50 || got.NanoCpus != 1.5e9 {
		t.Fatalf("inspect shows %v", got)
	}
	want := resources.CgroupFiles(resources.Resources{Memory: 64 << 20, NanoCPUs: 1.5e9, CPUShares: 512, CpusetCpus: "0", PidsLimit: 50}, false)
	if len(want) != 7 {
		t.Fatalf("expected 7 files, the translation gave %v", want)
	}
	for file, value := range want {
		if v := cgroupFile(t, e, c.Id, file); v != value {
			t.Errorf("%s = %s, want %s", file, v, value)
		}
	}

	// No limits asked: the daemon's default pids limit protects the host.
	plain := runDetached(t, e, "sleep", "60")
	if v := cgroupFile(t, e, plain.Id, "pids/pids.max"); v != "4096" {
		t.Errorf("default pids.max = %s, want 4096", v)
	}
	if v := cgroupFile(t, e, plain.Id, "memory/memory.limit_in_bytes"); v == "67108864" {
		t.Errorf("a container without --memory got a memory limit")
	}
	if l := get(t, e, plain.Id).Config.Resources.PidsLimit; l != 4096 {
		t.Errorf("inspect shows pids limit %d, want the default 4096", l)
	}
}

func TestDefaultPidsLimitIsConfigurable(t *testing.T) {
	e := scratch.NewDaemon(t, func(c *daemon.Config) { c.DefaultPidsLimit = -1 })
	c := runDetached(t, e, "sleep", "60")
	if v := cgroupFile(t, e, c.Id, "pids/pids.max"); v != "max" {
		t.Errorf("pids.max = %s with --default-pids-limit -1, want max", v)
	}
}

func TestRlimits(t *testing.T) {
	e := scratch.NewDaemon(t)
	out, code := output(t, e, &cairnv1.CreateRequest{Command: []string{"sh", "-c", "ulimit -Sn; ulimit -Hn"},
		Resources: &cairnv1.Resources{Ulimits: []*cairnv1.Ulimit{{Name: "nofile", Soft: 1024, Hard: 2048}}}})
	if code != "0" || out != "1024\n2048\n" {
		t.Errorf("--ulimit nofile=1024:2048: got %q (exit %s)", out, code)
	}
	// Unasked, the container gets the daemon's default (Docker's 1048576,
	// or the most this daemon may grant), whatever the shim had.
	out, code = output(t, e, &cairnv1.CreateRequest{Command: []string{"sh", "-c", "ulimit -Sn; ulimit -Hn"}})
	n := executor.NofileCeiling()
	want := strings.Repeat(itoa(n)+"\n", 2)
	if code != "0" || out != want {
		t.Errorf("default nofile: got %q, want %q", out, want)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestBadLimitsAreRefused(t *testing.T) {
	e := scratch.NewDaemon(t)
	for _, r := range []*cairnv1.Resources{
		{MemoryBytes: 1 << 20},
		{MemorySwapBytes: 64 << 20},
		{CpusetCpus: "zero"},
		{PidsLimit: -5},
		{Ulimits: []*cairnv1.Ulimit{{Name: "nofile", Soft: 10, Hard: 5}}},
		{Ulimits: []*cairnv1.Ulimit{{Name: "bogus", Soft: 1, Hard: 1}}},
	} {
		_, err := e.Containers.Create(bg, connect.NewRequest(&cairnv1.CreateRequest{Image: "busybox", Command: []string{"true"}, Resources: r}))
		if codeOf(err) != connect.CodeInvalidArgument {
			t.Errorf("%v: got %v, want InvalidArgument", r, err)
		}
	}
	for _, s := range []*cairnv1.SecurityOptions{
		{CapAdd: []string{"CAP_NOPE"}},
		{Seccomp: "{not json"},
		{Tmpfs: []*cairnv1.Tmpfs{{Path: "rel"}}},
	} {
		_, err := e.Containers.Create(bg, connect.NewRequest(&cairnv1.CreateRequest{Image: "busybox", Command: []string{"true"}, Security: s}))
		if codeOf(err) != connect.CodeInvalidArgument {
			t.Errorf("%v: got %v, want InvalidArgument", s, err)
		}
	}
	res, err := e.Containers.List(bg, connect.NewRequest(&cairnv1.ListRequest{All: true}))
	if err != nil || len(res.Msg.Containers) != 0 {
		t.Errorf("refused creates left containers: %v %v", res.Msg.GetContainers(), err)
	}
}

// probeImage is busybox with /sysprobe (testdata/sysprobe), built
// statically once per test binary.
var probe struct {
	once sync.Once
	tar  string
	err  error
}

func probeImage(t *testing.T) string {
	t.Helper()
	busyboxTar := testenv.BusyboxTar(t)
	probe.once.Do(func() { probe.tar, probe.err = buildProbeImage(busyboxTar) })
	if probe.err != nil {
		t.Fatal(probe.err)
	}
	return probe.tar
}

func buildProbeImage(busyboxTar string) (string, error) {
	dir, err := testenv.ArtifactDir("sysprobe") // removed when the tests end
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "sysprobe")
	build := exec.Command("go", "build", "-o", bin, "./internal/daemon/testdata/sysprobe")
	build.Dir, build.Env = testenv.RepoRoot(), append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return "", &buildErr{string(out), err}
	}
	src, err := os.Open(busyboxTar)
	if err != nil {
		return "", err
	}
	defer src.Close()
	out := filepath.Join(dir, "probe.tar")
	dst, err := os.Create(out)
	if err != nil {
		return "", err
	}
	defer dst.Close()
	tw := tar.NewWriter(dst)
	tr := tar.NewReader(src)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", err
		}
		if err := tw.WriteHeader(h); err != nil {
			return "", err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return "", err
		}
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return "", err
	}
	if err := tw.WriteHeader(&tar.Header{Name: "sysprobe", Mode: 0o755, Size: int64(len(data)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}); err != nil {
		return "", err
	}
	if _, err := tw.Write(data); err != nil {
		return "", err
	}
	return out, tw.Close()
}

type buildErr struct {
	out string
	err error
}

func (e *buildErr) Error() string { return e.err.Error() + "\n" + e.out }

func requireSeccomp(t *testing.T) {
	t.Helper()
	if !executor.SeccompSupported() {
		if os.Getenv(testenv.RequireRootEnv) == "1" {
			t.Fatal("this test binary has no seccomp support: build and test with -tags seccomp (scripts/test.sh does)")
		}
		t.Skip("needs -tags seccomp")
	}
}

// probeResults parses sysprobe's name=result lines.
func probeResults(out string) map[string]string {
	m := map[string]string{}
	for line := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = v
		}
	}
	return m
}

func TestSecurityDefaults(t *testing.T) {
	requireSeccomp(t)
	e := scratch.NewDaemon(t)
	e.ImportImage(probeImage(t), "probe")

	// What ordinary images need works: chown, su (setuid via a real
	// user switch), and the capabilities are Docker's 14.
	script := `set -e
grep -E '^(Seccomp|CapEff|NoNewPrivs):' /proc/self/status
touch /f && chown 1000:1000 /f && stat -c 'chown=%u:%g' /f
echo 'nobody:x:65534:65534::/:/bin/sh' >> /etc/passwd
echo "su=$(su nobody -s /bin/sh -c 'id -u')"`
	out, code := output(t, e, &cairnv1.CreateRequest{Command: []string{"sh", "-c", script}})
	for _, want := range []string{"Seccomp:\t2", "CapEff:\t00000000a80425fb", "NoNewPrivs:\t0", "chown=1000:1000", "su=65534"} {
		if !strings.Contains(out, want) {
			t.Errorf("default container: %q missing from\n%s", want, out)
		}
	}
	if code != "0" {
		t.Errorf("default container exited %s:\n%s", code, out)
	}

	// What an attacker wants is refused: by seccomp (keyctl, unshare of a
	// user namespace, which needs no capability) and by the capabilities
	// and device rules (mount, reboot, mknod of a block device).
	out, _ = output(t, e, &cairnv1.CreateRequest{Image: "probe", Command: []string{"/sysprobe"}})
	want := map[string]string{"keyctl": "EPERM", "unshare": "EPERM", "mount": "EPERM", "reboot": "EPERM", "mknod_block": "EPERM"}
	if got := probeResults(out); !maps.Equal(got, want) {
		t.Errorf("default profile: got %v, want %v", got, want)
	}
	// Without the filter, keyctl and unshare work: it was the filter.
	out, _ = output(t, e, &cairnv1.CreateRequest{Image: "probe", Command: []string{"/sysprobe"},
		Security: &cairnv1.SecurityOptions{Seccomp: "unconfined"}})
	// (unshare of a user namespace then reaches the kernel, which refuses
	// it to a multi-threaded Go process with EINVAL.)
	if got := probeResults(out); got["keyctl"] != "ok" || got["unshare"] == "EPERM" {
		t.Errorf("seccomp=unconfined: got %v, want keyctl ok and unshare not EPERM", got)
	}
	out, _ = output(t, e, &cairnv1.CreateRequest{Command: []string{"grep", "^Seccomp:", "/proc/self/status"},
		Security: &cairnv1.SecurityOptions{Seccomp: "unconfined"}})
	if !strings.Contains(out, "Seccomp:\t0") {
		t.Errorf("seccomp=unconfined: %q", out)
	}
}

func TestCapabilitiesAndNoNewPrivileges(t *testing.T) {
	e := scratch.NewDaemon(t)
	status := []string{"grep", "-E", "^(CapEff|NoNewPrivs|Seccomp):", "/proc/self/status"}
	out, _ := output(t, e, &cairnv1.CreateRequest{Command: status,
		Security: &cairnv1.SecurityOptions{CapDrop: []string{"ALL"}, CapAdd: []string{"chown"}, NoNewPrivileges: true}})
	if !strings.Contains(out, "CapEff:\t0000000000000001") || !strings.Contains(out, "NoNewPrivs:\t1") {
		t.Errorf("cap-drop ALL, cap-add chown, no-new-privileges: %q", out)
	}
	out, _ = output(t, e, &cairnv1.CreateRequest{Command: []string{"sh", "-c", "chown 1 /bin/sh; echo chown=$?"},
		Security: &cairnv1.SecurityOptions{CapDrop: []string{"CHOWN"}}})
	if !strings.Contains(out, "chown=1") {
		t.Errorf("cap-drop CHOWN: chown worked: %q", out)
	}
	out, _ = output(t, e, &cairnv1.CreateRequest{Command: status, Security: &cairnv1.SecurityOptions{Privileged: true}})
	if !strings.Contains(out, "Seccomp:\t0") || strings.Contains(out, "CapEff:\t00000000a80425fb") {
		t.Errorf("privileged: %q", out)
	}
	c := get(t, e, runWith(t, e, &cairnv1.CreateRequest{Command: []string{"true"},
		Security: &cairnv1.SecurityOptions{CapAdd: []string{"sys_admin"}}}).Id)
	if got := c.Config.Security.CapAdd; len(got) != 1 || got[0] != "CAP_SYS_ADMIN" {
		t.Errorf("inspect shows cap_add %v, want the normalised CAP_SYS_ADMIN", got)
	}
}

func TestReadOnlyRootWithTmpfs(t *testing.T) {
	e := scratch.NewDaemon(t)
	script := `touch /root-file 2>/dev/null && echo root=rw || echo root=ro
touch /scratch/f && echo tmpfs=rw
grep ' /scratch ' /proc/mounts`
	out, code := output(t, e, &cairnv1.CreateRequest{Command: []string{"sh", "-c", script},
		Security: &cairnv1.SecurityOptions{ReadOnly: true, Tmpfs: []*cairnv1.Tmpfs{{Path: "/scratch", Options: "size=1m"}}}})
	if code != "0" || !strings.Contains(out, "root=ro") || !strings.Contains(out, "tmpfs=rw") || !strings.Contains(out, "tmpfs /scratch tmpfs") ||
		!strings.Contains(out, "size=1024k") || !strings.Contains(out, "noexec") {
		t.Errorf("read-only root with a tmpfs: exit %s\n%s", code, out)
	}
}

func TestForkBombIsCappedByThePidsLimit(t *testing.T) {
	e := scratch.NewDaemon(t)
	// A real fork bomb: each shell starts two more, forever.
	c := runWith(t, e, &cairnv1.CreateRequest{Command: []string{"sh", "-c", "b() { b | b & }; b; sleep 600"},
		Resources: &cairnv1.Resources{PidsLimit: 64}})
	eventually(t, "a fork refused by the pids limit", func() bool {
		ev := cgroupFile(t, e, c.Id, "pids/pids.events")
		return strings.HasPrefix(ev, "max ") && ev != "max 0"
	})
	for range 20 { // the bomb keeps trying; the count never passes the limit
		n, err := strconv.Atoi(cgroupFile(t, e, c.Id, "pids/pids.current"))
		if err != nil || n > 64 {
			t.Fatalf("pids.current = %d (%v), above the limit 64", n, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
	// The host is fine: the daemon answers and a new container runs.
	if out, code := output(t, e, &cairnv1.CreateRequest{Command: []string{"echo", "alive"}}); out != "alive\n" || code != "0" {
		t.Errorf("a container next to the fork bomb: %q exit %s", out, code)
	}
	remove(t, e, c.Id, true)
}

// hog allocates past a 32 MiB limit: dd's 64 MiB buffer is written by
// the read from /dev/zero. Swap is limited as well, so the kernel cannot
// page the excess out.
var hog = &cairnv1.CreateRequest{Command: []string{"sh", "-c", "sleep ${DELAY:-0}; exec dd if=/dev/zero of=/dev/null bs=64M count=1"},
	Resources: &cairnv1.Resources{MemoryBytes: 32 << 20, MemorySwapBytes: 32 << 20}}

func assertOOMKilled(t *testing.T, e *scratch.Env, id string) {
	t.Helper()
	c := get(t, e, id)
	if !c.OomKilled || c.ExitReason != "OOMKilled" || c.ExitCode == nil || *c.ExitCode != 137 {
		t.Errorf("container killed by the OOM killer: oom_killed=%v reason=%q code=%s", c.OomKilled, c.ExitReason, exitCode(&cairnv1.WaitResponse{ExitCode: c.ExitCode}))
	}
	stream, err := e.Journal.History(bg, connect.NewRequest(&cairnv1.HistoryRequest{Id: id}))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	found := false
	for stream.Receive() {
		for _, r := range stream.Msg().Records {
			found = found || strings.Contains(r.DetailsJson, `"oom_killed":true`)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if !found {
		t.Errorf("no journal record of %s says oom_killed", id)
	}
}

func TestOOMKilled(t *testing.T) {
	e := scratch.NewDaemon(t)
	out, _ := output(t, e, proto.Clone(hog).(*cairnv1.CreateRequest))
	c := lastContainer(t, e)
	if strings.Contains(out, "records in") {
		t.Fatalf("the allocation was not stopped: %q", out)
	}
	assertOOMKilled(t, e, c)
	// A run that is killed otherwise is not an OOM kill.
	k := runDetached(t, e, "sleep", "60")
	if _, err := e.Containers.Kill(bg, connect.NewRequest(&cairnv1.KillRequest{Id: k.Id, Signal: "KILL"})); err != nil {
		t.Fatal(err)
	}
	wait(t, e, k.Id)
	if c := get(t, e, k.Id); c.OomKilled || c.ExitReason == "OOMKilled" {
		t.Errorf("SIGKILLed container reported as OOM-killed: %v %q", c.OomKilled, c.ExitReason)
	}
}

func TestOOMKilledWhileTheDaemonIsDown(t *testing.T) {
	e := scratch.NewBinaryDaemon(t)
	req := proto.Clone(hog).(*cairnv1.CreateRequest)
	req.Env = []string{"DELAY=1"}
	c := runWith(t, e, req)
	e.Kill()
	// The shim records the exit and its OOM verdict with no daemon around.
	eventually(t, "the container to be OOM-killed", func() bool { return !processAlive(c.Pid) })
	e.Start()
	e.WaitServing()
	eventually(t, "recovery to record the exit", func() bool {
		return get(t, e, c.Id).State == cairnv1.ContainerState_CONTAINER_STATE_STOPPED
	})
	assertOOMKilled(t, e, c.Id)
}

// lastContainer is the id of the only container of e.
func lastContainer(t *testing.T, e *scratch.Env) string {
	t.Helper()
	res, err := e.Containers.List(bg, connect.NewRequest(&cairnv1.ListRequest{All: true}))
	if err != nil || len(res.Msg.Containers) != 1 {
		t.Fatalf("list: %v %v", res.Msg.GetContainers(), err)
	}
	return res.Msg.Containers[0].Id
}

func TestUpdateLive(t *testing.T) {
	e := scratch.NewDaemon(t)
	c := runWith(t, e, &cairnv1.CreateRequest{Command: []string{"sleep", "60"}, Resources: &cairnv1.Resources{MemoryBytes: 64 << 20}})
	mem, cpus, pids := int64(128<<20), int64(5e8), int64(33)
	res, err := e.Resources.Update(bg, connect.NewRequest(&cairnv1.UpdateRequest{Id: c.Id, MemoryBytes: &mem, NanoCpus: &cpus, PidsLimit: &pids}))
	if err != nil {
		t.Fatal(err)
	}
	if r := res.Msg.Container.Config.Resources; r.MemoryBytes != mem || r.NanoCpus != cpus || r.PidsLimit != pids {
		t.Errorf("update answered %v", r)
	}
	for file, want := range map[string]string{
		"memory/memory.limit_in_bytes": "134217728", "memory/memory.memsw.limit_in_bytes": "268435456",
		"cpu/cpu.cfs_quota_us": "50000", "pids/pids.max": "33",
	} {
		if got := cgroupFile(t, e, c.Id, file); got != want {
			t.Errorf("after update %s = %s, want %s", file, got, want)
		}
	}
	// The journal holds it: a restarted daemon shows the new limits.
	e.Restart()
	if r := get(t, e, c.Id).Config.Resources; r.MemoryBytes != mem || r.PidsLimit != pids {
		t.Errorf("after a restart inspect shows %v", r)
	}
	// Bad values change nothing.
	tiny := int64(1)
	if _, err := e.Resources.Update(bg, connect.NewRequest(&cairnv1.UpdateRequest{Id: c.Id, MemoryBytes: &tiny})); codeOf(err) != connect.CodeInvalidArgument {
		t.Errorf("tiny memory: %v", err)
	}
	if _, err := e.Resources.Update(bg, connect.NewRequest(&cairnv1.UpdateRequest{Id: c.Id})); codeOf(err) != connect.CodeInvalidArgument {
		t.Errorf("empty update: %v", err)
	}
	if got := cgroupFile(t, e, c.Id, "memory/memory.limit_in_bytes"); got != "134217728" {
		t.Errorf("a refused update changed the cgroup: %s", got)
	}

	// A stopped container gets its new limits at the next start.
	stop(t, e, c.Id, 0)
	pids = 44
	if _, err := e.Resources.Update(bg, connect.NewRequest(&cairnv1.UpdateRequest{Id: c.Id, PidsLimit: &pids})); err != nil {
		t.Fatal(err)
	}
	start(t, e, c.Id)
	if got := cgroupFile(t, e, c.Id, "pids/pids.max"); got != "44" {
		t.Errorf("after update of a stopped container and a start: pids.max = %s", got)
	}
}

func TestUpdateInterruptedByACrashRollsForward(t *testing.T) {
	for _, point := range []string{"update.after-intent", "update.after-cgroup"} {
		t.Run(point, func(t *testing.T) {
			t.Parallel()
			e := scratch.NewBinaryDaemon(t)
			c := runDetached(t, e, "sleep", "60")
			e.Stop()
			e.StartWith("CAIRN_CRASH_AT=" + point)
			e.WaitServing()
			pids := int64(55)
			_, _ = e.Resources.Update(bg, connect.NewRequest(&cairnv1.UpdateRequest{Id: c.Id, PidsLimit: &pids}))
			e.WaitCrash(30 * time.Second)
			e.Start()
			e.WaitServing()
			got := get(t, e, c.Id)
			if got.PendingEvent != "" || got.Config.Resources.PidsLimit != 55 || got.State != cairnv1.ContainerState_CONTAINER_STATE_RUNNING {
				t.Errorf("after a crash at %s: pending %q, pids limit %d, state %v", point, got.PendingEvent, got.Config.Resources.PidsLimit, got.State)
			}
			if v := cgroupFile(t, e, c.Id, "pids/pids.max"); v != "55" {
				t.Errorf("after a crash at %s: pids.max = %s, want the update's 55", point, v)
			}
		})
	}
}

func TestStats(t *testing.T) {
	e := scratch.NewDaemon(t)
	busy := runWith(t, e, &cairnv1.CreateRequest{Name: "busy", Command: []string{"sh", "-c", "while true; do :; done"},
		Resources: &cairnv1.Resources{MemoryBytes: 64 << 20, PidsLimit: 20}})
	idle := runDetached(t, e, "sleep", "60")
	stream, err := e.Resources.Stats(bg, connect.NewRequest(&cairnv1.StatsRequest{NoStream: true}))
	if err != nil {
		t.Fatal(err)
	}
	var rounds [][]*cairnv1.ContainerStats
	for stream.Receive() {
		rounds = append(rounds, stream.Msg().Stats)
	}
	if err := stream.Err(); err != nil || len(rounds) != 1 {
		t.Fatalf("no-stream gave %d rounds (%v)", len(rounds), err)
	}
	by := map[string]*cairnv1.ContainerStats{}
	for _, s := range rounds[0] {
		by[s.Id] = s
	}
	b, i := by[busy.Id], by[idle.Id]
	if b == nil || i == nil {
		t.Fatalf("stats of %d containers, want both: %v", len(rounds[0]), rounds[0])
	}
	if b.Name != "busy" || b.MemoryLimitBytes != 64<<20 || b.PidsLimit != 20 || b.Pids < 1 || b.MemoryUsageBytes == 0 ||
		b.MemoryWorkingSetBytes > b.MemoryUsageBytes || b.CpuUsageNs == 0 {
		t.Errorf("busy container's stats: %v", b)
	}
	// A spinning shell uses more CPU than a sleeping one (how much more
	// depends on what else the machine runs).
	if b.CpuPercent <= i.CpuPercent || b.CpuPercent < 1 || i.CpuPercent > 5 {
		t.Errorf("cpu%%: busy %.1f, idle %.1f", b.CpuPercent, i.CpuPercent)
	}
	if i.MemoryLimitBytes != 0 || i.PidsLimit != 4096 {
		t.Errorf("idle container without limits: memory limit %d, pids limit %d", i.MemoryLimitBytes, i.PidsLimit)
	}
	// Naming one container streams only it, round after round.
	ctx, cancel := context.WithTimeout(bg, 10*time.Second)
	defer cancel()
	s2, err := e.Resources.Stats(ctx, connect.NewRequest(&cairnv1.StatsRequest{Ids: []string{"busy"}}))
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n < 2; n++ {
		if !s2.Receive() {
			t.Fatalf("stream ended: %v", s2.Err())
		}
		if ss := s2.Msg().Stats; len(ss) != 1 || ss[0].Id != busy.Id {
			t.Fatalf("round %d: %v", n, ss)
		}
	}
	cancel()
	if _, err := e.Resources.Stats(bg, connect.NewRequest(&cairnv1.StatsRequest{Ids: []string{"nope"}})); err == nil {
		// The error comes with the first receive on a server stream.
		t.Log("error deferred to the stream")
	}
}

func TestContainerSeriesAreRightAfterARestart(t *testing.T) {
	e := scratch.NewBinaryDaemon(t)
	c := runWith(t, e, &cairnv1.CreateRequest{Name: "spin", Command: []string{"sh", "-c", "while true; do :; done"}})
	time.Sleep(300 * time.Millisecond)
	e.Kill() // not even a clean stop: nothing could have been saved
	e.Start()
	e.WaitServing()
	labels := `{id="` + c.Id + `",image="docker.io/library/busybox:latest",name="spin"}`
	cpu := metricValue(t, e, "cairn_container_cpu_seconds_total"+labels)
	if cpu <= 0.01 {
		t.Errorf("cpu seconds %.3f right after a restart: the container's spinning before it is missing", cpu)
	}
	if v := metricValue(t, e, "cairn_container_memory_usage_bytes"+labels); v <= 0 {
		t.Errorf("memory usage %v", v)
	}
	if v := metricValue(t, e, "cairn_container_memory_working_set_bytes"+labels); v <= 0 {
		t.Errorf("working set %v", v)
	}
	if v := metricValue(t, e, "cairn_container_pids"+labels); v != 1 {
		t.Errorf("pids %v, want 1", v)
	}
	if v := metricValue(t, e, "cairn_container_oom_events_total"+labels); v != 0 {
		t.Errorf("oom events %v", v)
	}
}
