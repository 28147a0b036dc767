package daemon_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairn-run/cairn/internal/testenv"
	"github.com/cairn-run/cairn/internal/testenv/scratch"
)

// BenchmarkLifecycle measures create+start+wait+rm of /bin/true: through the
// API, and through the CLI (`cairn run --rm`, a process per run, as a user
// sees it) alternating run by run with `runc run` of the same rootfs, so
// that both see the same machine; it reports both and their ratio.
func BenchmarkLifecycle(b *testing.B) {
	e := scratch.NewBinaryDaemon(b)
	b.Run("api", func(b *testing.B) {
		for range b.N {
			c := create(b, e, "", "true")
			start(b, e, c.Id)
			wait(b, e, c.Id)
			remove(b, e, c.Id, false)
		}
	})
	b.Run("cli-vs-runc", func(b *testing.B) {
		runc, err := exec.LookPath("runc")
		if err != nil {
			b.Skip("runc not installed (apt-get install runc): nothing to compare with")
		}
		_, cairn := testenv.Binaries(b)
		bundle := runcBundle(b, runc)
		var cli, ref time.Duration
		for i := range b.N {
			t0 := time.Now()
			if out, err := exec.Command(cairn, "--socket", e.Socket, "run", "--rm", "busybox", "true").CombinedOutput(); err != nil {
				b.Fatalf("cairn run: %v\n%s", err, out)
			}
			t1 := time.Now()
			id := fmt.Sprintf("bench-%d-%d", os.Getpid(), i)
			if out, err := exec.Command(runc, "--root", filepath.Join(bundle, "state"), "run", "--bundle", bundle, id).CombinedOutput(); err != nil {
				b.Fatalf("runc run: %v\n%s", err, out)
			}
			cli, ref = cli+t1.Sub(t0), ref+time.Since(t1)
		}
		b.ReportMetric(float64(cli.Milliseconds())/float64(b.N), "cairn-ms/run")
		b.ReportMetric(float64(ref.Milliseconds())/float64(b.N), "runc-ms/run")
		b.ReportMetric(float64(cli)/float64(ref), "cairn/runc")
	})
}

// runcBundle unpacks the busybox image into an OCI bundle running /bin/true.
func runcBundle(b *testing.B, runc string) string {
	b.Helper()
	bundle := b.TempDir()
	rootfs := filepath.Join(bundle, "rootfs")
	if err := os.Mkdir(rootfs, 0o755); err != nil {
		b.Fatal(err)
	}
	steps := [][]string{
		{"tar", "-C", rootfs, "-xf", testenv.BusyboxTar(b)},
		{runc, "spec", "--bundle", bundle},
		{"sed", "-i", `s/"terminal": true/"terminal": false/; s/"sh"/"true"/`, filepath.Join(bundle, "config.json")},
	}
	for _, s := range steps {
		if out, err := exec.Command(s[0], s[1:]...).CombinedOutput(); err != nil {
			b.Fatalf("%v: %v\n%s", s, err, out)
		}
	}
	return bundle
}

// BenchmarkIdleMemory reports the resident memory of one idle shim and of
// the idle daemon (the cairnd binary) holding one running container.
func BenchmarkIdleMemory(b *testing.B) {
	e := scratch.NewBinaryDaemon(b)
	c := runDetached(b, e, "sleep", "1000")
	time.Sleep(time.Second) // let both settle
	var shim, daemon int
	for range b.N {
		shim = rssKB(b, int(c.ShimPid))
		daemon = rssKB(b, e.Process.Pid)
	}
	b.ReportMetric(float64(shim)/1024, "shim-MB")
	b.ReportMetric(float64(daemon)/1024, "daemon-MB")
	remove(b, e, c.Id, true)
}

func rssKB(b *testing.B, pid int) int {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			if err != nil {
				b.Fatal(err)
			}
			return kb
		}
	}
	b.Fatalf("no VmRSS for pid %d", pid)
	return 0
}
