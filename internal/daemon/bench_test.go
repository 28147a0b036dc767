package daemon_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cairn-run/cairn/internal/daemon"
	"github.com/cairn-run/cairn/internal/testenv"
	"github.com/cairn-run/cairn/internal/testenv/scratch"
)

// The lifecycle benchmarks compare `cairn` with Debian's runc (apt-get
// install runc) on the same busybox rootfs, run by run in turn, so that both
// see the same machine, and report medians and 99th percentiles of each.
// Set CAIRN_BENCH_BASELINE to a directory holding the cairnd and cairn of
// another build, e.g. an earlier commit, to
// measure it in the same turns as a third peer ("base-" metrics).
const baselineEnv = "CAIRN_BENCH_BASELINE"

// BenchmarkLifecycle measures container lifecycles three ways:
//   - api: create+start+wait+rm of /bin/true through the API, four calls;
//   - cli-vs-runc: `cairn run --rm busybox true`, a CLI process per run as
//     a user runs it, against `runc run` of the same rootfs;
//   - split-vs-runc: the two halves of a long-running container's life, up
//     (`cairn run -d busybox sleep 1000` against `runc run -d`) and down
//     (`cairn stop -t 0` + `cairn rm` against `runc kill KILL`, waiting for
//     the init to die, and `runc delete`).
func BenchmarkLifecycle(b *testing.B) {
	e := benchDaemon(b)
	b.Run("api", func(b *testing.B) {
		for range b.N {
			c := create(b, e, "", "true")
			start(b, e, c.Id)
			wait(b, e, c.Id)
			remove(b, e, c.Id, false)
		}
	})
	peers := lifecyclePeers(b, e)
	b.Run("cli-vs-runc", func(b *testing.B) {
		runs := make([][]time.Duration, len(peers))
		lost := make([]int, len(peers))
		for i := range b.N {
			for p, peer := range peers {
				t0 := time.Now()
				err := peer.run(i)
				d := time.Since(t0)
				if err == nil {
					runs[p] = append(runs[p], d)
				} else if errLostRun(err) {
					lost[p]++
				} else {
					b.Fatalf("%s: %v", peer.name, err)
				}
			}
		}
		for p, peer := range peers {
			reportQuantiles(b, peer.name, runs[p])
			if peer.name != "runc" {
				b.ReportMetric(float64(lost[p]), peer.name+"-lost-runs")
			}
		}
		reportRatios(b, peers, runs)
	})
	b.Run("split-vs-runc", func(b *testing.B) {
		up := make([][]time.Duration, len(peers))
		down := make([][]time.Duration, len(peers))
		for i := range b.N {
			for p, peer := range peers {
				t0 := time.Now()
				h, err := peer.up(i)
				t1 := time.Now()
				if err != nil {
					b.Fatalf("%s up: %v", peer.name, err)
				}
				if err := peer.down(h); err != nil {
					b.Fatalf("%s down: %v", peer.name, err)
				}
				up[p] = append(up[p], t1.Sub(t0))
				down[p] = append(down[p], h.downTime(t1))
			}
		}
		for p, peer := range peers {
			reportQuantiles(b, peer.name+"-up", up[p])
			reportQuantiles(b, peer.name+"-down", down[p])
		}
	})
}

// errLostRun tells a `cairn run --rm` that failed because its container was
// removed before the run could read its exit (a race of the API's Run with
// the auto-remove, not a failure to run the container): counted and
// reported, not timed.
func errLostRun(err error) bool {
	return strings.Contains(err.Error(), "not_found: no such container")
}

// peer is one runtime under comparison.
type peer struct {
	name string
	// run creates, starts, waits for and removes a container running
	// /bin/true.
	run func(i int) error
	// up creates and starts a container running sleep 1000; down stops
	// and removes it.
	up   func(i int) (*handle, error)
	down func(h *handle) error
}

// handle is a container brought up by peer.up; down records when the
// container was gone.
type handle struct {
	id   string
	pid  int
	gone time.Time
}

func (h *handle) downTime(since time.Time) time.Duration { return h.gone.Sub(since) }

// lifecyclePeers returns cairn (this tree, on e), the baseline build if
// CAIRN_BENCH_BASELINE names one, and runc; it skips the benchmark when runc
// is not installed.
func lifecyclePeers(b *testing.B, e *scratch.Env) []peer {
	runc, err := exec.LookPath("runc")
	if err != nil {
		b.Skip("runc not installed (apt-get install runc): nothing to compare with")
	}
	_, cli := testenv.Binaries(b)
	peers := []peer{cairnPeer("cairn", cli, e.Socket)}
	if dir := os.Getenv(baselineEnv); dir != "" {
		be := scratch.NewBinaryDaemonOf(b, filepath.Join(dir, "cairnd"), func(c *daemon.Config) { c.ShimBinary = shimIn(dir) })
		peers = append(peers, cairnPeer("base", filepath.Join(dir, "cairn"), be.Socket))
	}
	return append(peers, runcPeer(b, runc))
}

func cairnPeer(name, cli, socket string) peer {
	cairn := func(args ...string) (string, error) {
		out, err := exec.Command(cli, append([]string{"--socket", socket}, args...)...).CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("cairn %s: %w\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out)), nil
	}
	return peer{
		name: name,
		run: func(int) error {
			_, err := cairn("run", "--rm", "busybox", "true")
			return err
		},
		up: func(int) (*handle, error) {
			id, err := cairn("run", "-d", "busybox", "sleep", "1000")
			return &handle{id: id}, err
		},
		down: func(h *handle) error {
			if _, err := cairn("stop", "-t", "0", h.id); err != nil {
				return err
			}
			_, err := cairn("rm", h.id)
			h.gone = time.Now()
			return err
		},
	}
}

func runcPeer(b *testing.B, runc string) peer {
	short := runcBundle(b, runc, "true")
	long := runcBundle(b, runc, "sleep", "1000")
	root := filepath.Join(b.TempDir(), "state")
	prefix := fmt.Sprintf("bench-%d-", os.Getpid())
	b.Cleanup(func() {
		// Whatever a failed run left.
		out, _ := exec.Command(runc, "--root", root, "list", "-q").Output()
		for _, id := range strings.Fields(string(out)) {
			_ = exec.Command(runc, "--root", root, "delete", "-f", id).Run()
		}
	})
	runcCmd := func(args ...string) error {
		if out, err := exec.Command(runc, append([]string{"--root", root}, args...)...).CombinedOutput(); err != nil {
			return fmt.Errorf("runc %s: %w\n%s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	return peer{
		name: "runc",
		run: func(i int) error {
			return runcCmd("run", "--bundle", short, prefix+"run-"+strconv.Itoa(i))
		},
		up: func(i int) (*handle, error) {
			h := &handle{id: prefix + "up-" + strconv.Itoa(i)}
			// Detached, runc hands its own stdio to the container: none here,
			// so nothing keeps the command's output open.
			cmd := exec.Command(runc, "--root", root, "run", "-d", "--bundle", long, h.id)
			if err := cmd.Run(); err != nil {
				return h, fmt.Errorf("runc run -d: %w", err)
			}
			// Not timed: the pid lets down wait for the init's death, as
			// `cairn stop` does.
			out, err := exec.Command(runc, "--root", root, "state", h.id).Output()
			var st struct{ Pid int }
			if err == nil {
				err = json.Unmarshal(out, &st)
			}
			h.pid = st.Pid
			return h, err
		},
		down: func(h *handle) error {
			pidfd, err := unix.PidfdOpen(h.pid, 0)
			if err != nil {
				return fmt.Errorf("pidfd of %d: %w", h.pid, err)
			}
			defer unix.Close(pidfd)
			if err := runcCmd("kill", h.id, "KILL"); err != nil {
				return err
			}
			fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
			for {
				if _, err := unix.Poll(fds, 10_000); err != unix.EINTR {
					break
				}
			}
			err = runcCmd("delete", h.id)
			h.gone = time.Now()
			return err
		},
	}
}

// reportQuantiles reports the median and the 99th percentile of ds.
func reportQuantiles(b *testing.B, name string, ds []time.Duration) {
	b.ReportMetric(ms(quantile(ds, 0.5)), name+"-p50-ms")
	b.ReportMetric(ms(quantile(ds, 0.99)), name+"-p99-ms")
}

// reportRatios reports each cairn's median against runc's (the last peer)
// and its tail against its own median.
func reportRatios(b *testing.B, peers []peer, runs [][]time.Duration) {
	ref := quantile(runs[len(runs)-1], 0.5)
	for p, peer := range peers[:len(peers)-1] {
		p50 := quantile(runs[p], 0.5)
		b.ReportMetric(float64(p50)/float64(ref), peer.name+"/runc-p50")
		b.ReportMetric(float64(quantile(runs[p], 0.99))/float64(p50), peer.name+"-p99/p50")
	}
}

// quantile is the nearest-rank q-quantile of ds.
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[max(0, int(math.Ceil(q*float64(len(s))))-1)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// runcBundle unpacks the busybox image into an OCI bundle running args.
func runcBundle(b *testing.B, runc string, args ...string) string {
	b.Helper()
	bundle := b.TempDir()
	rootfs := filepath.Join(bundle, "rootfs")
	if err := os.Mkdir(rootfs, 0o755); err != nil {
		b.Fatal(err)
	}
	for _, s := range [][]string{
		{"tar", "-C", rootfs, "-xf", testenv.BusyboxTar(b)},
		{runc, "spec", "--bundle", bundle},
	} {
		if out, err := exec.Command(s[0], s[1:]...).CombinedOutput(); err != nil {
			b.Fatalf("%v: %v\n%s", s, err, out)
		}
	}
	path := filepath.Join(bundle, "config.json")
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	var spec map[string]any
	if err := json.Unmarshal(data, &spec); err != nil {
		b.Fatal(err)
	}
	process := spec["process"].(map[string]any)
	process["terminal"] = false
	process["args"] = args
	if data, err = json.Marshal(spec); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		b.Fatal(err)
	}
	return bundle
}

// benchDaemon is a cairnd binary daemon, its cairn as shim, as an
// installation runs.
func benchDaemon(b *testing.B) *scratch.Env {
	return scratch.NewBinaryDaemon(b)
}

// shimIn is the shim binary of a build directory: its cairn.
func shimIn(dir string) string {
	return filepath.Join(dir, "cairn")
}

// BenchmarkIdleMemory reports the memory of one idle shim (resident and
// proportional set) and of the idle daemon (the cairnd binary) holding one
// running container; scripts/bench/memory.sh measures fifty side by side
// with containerd.
func BenchmarkIdleMemory(b *testing.B) {
	e := benchDaemon(b)
	c := runDetached(b, e, "sleep", "1000")
	time.Sleep(2 * time.Second) // past the shim's re-execution for the idle wait
	var rss, pss, daemonRSS int
	for range b.N {
		rss, pss = memKB(b, int(c.ShimPid))
		daemonRSS, _ = memKB(b, e.Process.Pid)
	}
	b.ReportMetric(float64(rss)/1024, "shim-MB")
	b.ReportMetric(float64(pss)/1024, "shim-pss-MB")
	b.ReportMetric(float64(daemonRSS)/1024, "daemon-MB")
	remove(b, e, c.Id, true)
}

// memKB returns the Rss and Pss of process pid from smaps_rollup, in kB.
func memKB(b *testing.B, pid int) (rss, pss int) {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range bytes.Split(data, []byte("\n")) {
		k, v, ok := strings.Cut(string(line), ":")
		if !ok || (k != "Rss" && k != "Pss") {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		if err != nil {
			b.Fatal(err)
		}
		if k == "Rss" {
			rss = n
		} else {
			pss = n
		}
	}
	return rss, pss
}
