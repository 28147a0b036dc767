package main_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-run/cairn/internal/inspect"
	"github.com/cairn-run/cairn/internal/testenv"
)

// drillHeader is the drill's first line, which names its scratch root and
// cgroup parent.
var drillHeader = regexp.MustCompile(`root (/\S+), cgroup parent (cairn-drill-[0-9a-f]+)`)

// assertDrillLeftNothing checks that the drill whose output this is left
// no process, mount, cgroup or directory behind.
func assertDrillLeftNothing(t *testing.T, out string) {
	t.Helper()
	m := drillHeader.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no drill header in the output:\n%s", out)
	}
	root, parent := m[1], m[2]
	for _, leak := range inspect.Leaks(root, parent, "") {
		t.Errorf("drill left %s", leak)
	}
	if _, err := os.Stat(root); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("drill left its root %s (%v)", root, err)
	}
	for _, h := range inspect.Hierarchies() {
		if _, err := os.Stat(filepath.Join(h, parent)); err == nil {
			t.Errorf("drill left the cgroup %s", filepath.Join(h, parent))
		}
	}
	if mounts, _ := os.ReadFile("/proc/self/mounts"); bytes.Contains(mounts, []byte(root)) {
		t.Errorf("drill left mounts under %s", root)
	}
}

// TestDrill_ShortDrillPasses is the drill CI runs: 20 crashes of a real
// daemon among random operations, each recovery checked. It fails on any
// violation the drill reports, with the drill's lines in the log.
func TestDrill_ShortDrillPasses(t *testing.T) {
	testenv.RequireRoot(t)
	_, cairn := testenv.Binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, cairn, "drill", "--cycles", "20", "--containers", "4", "--seed", "1")
	out, err := cmd.CombinedOutput()
	t.Logf("cairn drill:\n%s", out)
	if err != nil {
		t.Errorf("cairn drill: %v (violations are the VIOLATION lines above)", err)
	}
	for _, want := range []string{"cycle 20/20", "drill: 20 cycles, 20 daemon crashes, 20 recoveries", "recovery time: min"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	assertDrillLeftNothing(t, string(out))
}

var secondCycle = regexp.MustCompile(`^cycle +2/`)

func TestDrill_InterruptCleansUp(t *testing.T) {
	testenv.RequireRoot(t)
	_, cairn := testenv.Binaries(t)
	cmd := exec.Command(cairn, "drill", "--cycles", "1000", "--containers", "3", "--seed", "2")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if secondCycle.MatchString(sc.Text()) {
			break
		}
	}
	// Mid-cycle, with containers running and operations in flight.
	time.Sleep(100 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
	}
	err = cmd.Wait()
	t.Logf("cairn drill:\n%s", out.String())
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 {
		t.Errorf("interrupted drill: %v, want a non-zero exit", err)
	}
	if !strings.Contains(out.String(), "\nviolations: ") || strings.Contains(out.String(), "1000/1000") {
		t.Errorf("no summary after the interrupt, or no interrupt")
	}
	assertDrillLeftNothing(t, out.String())
}
