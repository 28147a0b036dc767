// Command lifecycle finds where the time of `cairn run --rm busybox true`
// goes, run by run, and what the slow runs spent it on:
//
//	go run ./scripts/bench/lifecycle [-n 200] [-bin DIR] [-runc] [-slow 1.5]
//
// It builds this tree's cairnd and cairn (or takes them from
// -bin), starts a scratch cairnd with --log-level debug under a temp dir
// (its own root, socket and cgroup parent), runs the CLI n times (with
// -runc, each run followed by a `runc run` of the same rootfs, for
// reference), then joins for every run the CLI's wall time, the journal's
// record times (`cairn history`) and the executor's debug timings (the
// daemon log), and prints each phase's median, p90, p99 and max, and for
// every run slower than -slow times the median, its phases against the
// median ones. Everything it started is stopped and removed at the end,
// also on SIGINT or SIGTERM.
//
// Phases, in order: the CLI until the create intent; create; the Run's gap
// to the start intent; start intent (fsync) and rootfs mount until the
// executor starts; the executor's start (Start's own checks, handing the
// container to the standby shim, the shim's preparation, libcontainer's
// Create, Start and Exec, waiting for the exec) and the journal's start
// DONE; the container's run; the exit reaching the daemon; the exit
// transition (its Cleanup is split out); auto-remove (its Remove split
// out); the CLI's end.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cairn-run/cairn/internal/busybox"
)

func main() {
	n := flag.Int("n", 200, "runs")
	bin := flag.String("bin", "", "directory with cairnd and cairn (default: build this tree's)")
	withRunc := flag.Bool("runc", false, "interleave `runc run` of the same rootfs, for reference")
	slow := flag.Float64("slow", 1.5, "break down the runs slower than this times the median")
	flag.Parse()
	// A reader that goes away (| head) must not kill the tool before it
	// has cleaned up: writes then just fail.
	signal.Ignore(syscall.SIGPIPE)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sigs
		cleanup.run()
		os.Exit(130)
	}()
	err := run(*n, *bin, *withRunc, *slow)
	if cerr := cleanup.run(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "lifecycle:", err)
		os.Exit(1)
	}
}

// cleanups undoes, newest first and once, what the tool set up.
type cleanups struct {
	mu   sync.Mutex
	fns  []func() error
	done bool
}

var cleanup cleanups

func (c *cleanups) add(fn func() error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fns = append(c.fns, fn)
}

func (c *cleanups) run() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		return nil
	}
	c.done = true
	var errs []error
	for i := len(c.fns) - 1; i >= 0; i-- {
		errs = append(errs, c.fns[i]())
	}
	return errors.Join(errs...)
}

func run(n int, bin string, withRunc bool, slow float64) error {
	tmp, err := os.MkdirTemp("", "cairn-lifecycle-")
	if err != nil {
		return err
	}
	cleanup.add(func() error { return os.RemoveAll(tmp) })
	if bin == "" {
		bin = filepath.Join(tmp, "bin")
		build := exec.Command("go", "build", "-tags", "seccomp", "-o", bin+"/", "./cmd/cairnd", "./cmd/cairn")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("go build: %w", err)
		}
	}
	tar := filepath.Join(tmp, "busybox.tar")
	if err := busybox.WriteFile(tar, busybox.DefaultPath); err != nil {
		return err
	}
	d, err := startDaemon(tmp, bin)
	if err != nil {
		return err
	}
	if out, err := d.cli("image", "import", tar, "busybox"); err != nil {
		return fmt.Errorf("import: %w\n%s", err, out)
	}
	var runcRun func(i int) error
	if withRunc {
		if runcRun, err = runcRunner(tmp, tar); err != nil {
			return err
		}
	}

	runs := make([]cliRun, 0, n)
	var runcTimes []time.Duration
	lost := 0
	for i := range n {
		t0 := time.Now()
		out, err := d.cli("run", "--rm", "busybox", "true")
		t1 := time.Now()
		switch {
		case err == nil:
			runs = append(runs, cliRun{start: t0, end: t1})
		case strings.Contains(string(out), "not_found: no such container"):
			lost++ // the API's Run lost its container to the auto-remove; see the docs
			runs = append(runs, cliRun{start: t0, end: t1, lost: true})
		default:
			return fmt.Errorf("cairn run: %w\n%s", err, out)
		}
		if runcRun != nil {
			t := time.Now()
			if err := runcRun(i); err != nil {
				return err
			}
			runcTimes = append(runcTimes, time.Since(t))
		}
	}
	byContainer, err := d.history()
	if err != nil {
		return err
	}
	debug, err := parseDebugLog(filepath.Join(tmp, "cairnd.log"))
	if err != nil {
		return err
	}
	// The i-th run created the i-th container.
	ids := make([]string, 0, len(byContainer))
	for id := range byContainer {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b string) int { return byContainer[a]["create.INTENT"].Compare(byContainer[b]["create.INTENT"]) })
	if len(ids) != len(runs) {
		return fmt.Errorf("%d runs but %d containers in the journal", len(runs), len(ids))
	}
	var table []map[string]time.Duration
	for i, r := range runs {
		if r.lost {
			continue
		}
		table = append(table, phases(r, byContainer[ids[i]], debug[ids[i]]))
	}
	report(table, runcTimes, lost, slow)
	return nil
}

type cliRun struct {
	start, end time.Time
	lost       bool
}

// phaseOrder names the phases in the order they happen; the "." ones are
// parts of the phase before them.
var phaseOrder = []string{
	"cli→create", "create", "→start intent", "start intent+mount",
	"executor start", ".prepare", ".take+assign", ".shim prepare", ".lc create", ".lc start", ".lc exec",
	"→start done", "container runs", "exit→daemon", ".shim→executor", "exit transition", ".cleanup", "→remove", "remove", ".executor remove", "→cli exit",
	"TOTAL",
}

// phases splits one run by the journal's record times (the time of
// appending, before its commit) and the executor's debug timings.
func phases(r cliRun, rec map[string]time.Time, dbg map[string]map[string]time.Duration) map[string]time.Duration {
	p := map[string]time.Duration{}
	span := func(name string, a, b time.Time) {
		if !a.IsZero() && !b.IsZero() {
			p[name] = b.Sub(a)
		}
	}
	span("cli→create", r.start, rec["create.INTENT"])
	span("create", rec["create.INTENT"], rec["create.DONE"])
	span("→start intent", rec["create.DONE"], rec["start.INTENT"])
	span("start intent+mount", rec["start.INTENT"], rec["assigned"])
	span("→start done", rec["assigned"], rec["start.DONE"])
	span("container runs", rec["start.DONE"], rec["finished"])
	span("exit→daemon", rec["finished"], rec["exit.INTENT"])
	span("exit transition", rec["exit.INTENT"], rec["exit.DONE"])
	span("→remove", rec["exit.DONE"], rec["remove.INTENT"])
	span("remove", rec["remove.INTENT"], rec["remove.DONE"])
	span("→cli exit", rec["remove.DONE"], r.end)
	span("TOTAL", r.start, r.end)
	if s := dbg["container started"]; s != nil {
		// The executor's Start began before the shim was assigned; the
		// journal's start DONE follows its return.
		p["executor start"] = s["total"]
		p[".prepare"] = s["prepare"]
		p[".take+assign"] = s["take_shim"] + s["assign"]
		p[".shim prepare"] = s["shim_prepare"]
		p[".lc create"] = s["lc_create"]
		p[".lc start"] = s["lc_start"]
		p[".lc exec"] = s["lc_exec"]
		// The journal's "assigned" (the handle's StartedAt) is taken as the
		// shim is handed the container, after prepare and take_shim: what
		// follows it until start DONE, less the shim's part, is the
		// executor's return and the DONE record.
		if d, ok := p["→start done"]; ok {
			p["→start done"] = d - (s["total"] - s["prepare"] - s["take_shim"])
		}
	}
	if x := dbg["container exit received"]; x != nil {
		p[".shim→executor"] = x["since_exit"]
	}
	if c := dbg["container cleaned up"]; c != nil {
		p[".cleanup"] = c["total"]
	}
	if c := dbg["container removed"]; c != nil {
		p[".executor remove"] = c["total"]
	}
	return p
}

func report(table []map[string]time.Duration, runc []time.Duration, lost int, slow float64) {
	fmt.Printf("%d runs timed, %d lost to the Run/auto-remove race\n\n", len(table), lost)
	fmt.Printf("%-22s %8s %8s %8s %8s\n", "phase (ms)", "p50", "p90", "p99", "max")
	med := map[string]time.Duration{}
	for _, name := range phaseOrder {
		var ds []time.Duration
		for _, row := range table {
			if d, ok := row[name]; ok {
				ds = append(ds, d)
			}
		}
		if len(ds) == 0 {
			continue
		}
		med[name] = quantile(ds, 0.5)
		fmt.Printf("%-22s %8.2f %8.2f %8.2f %8.2f\n", name, ms(med[name]), ms(quantile(ds, 0.9)), ms(quantile(ds, 0.99)), ms(quantile(ds, 1)))
	}
	if len(runc) > 0 {
		fmt.Printf("%-22s %8.2f %8.2f %8.2f %8.2f\n", "runc run (reference)", ms(quantile(runc, 0.5)), ms(quantile(runc, 0.9)), ms(quantile(runc, 0.99)), ms(quantile(runc, 1)))
	}
	limit := time.Duration(slow * float64(med["TOTAL"]))
	fmt.Printf("\nruns slower than %.1f× the median (%.1f ms), phases over their median by more than 2 ms:\n", slow, ms(limit))
	for i, row := range table {
		if row["TOTAL"] <= limit {
			continue
		}
		var parts []string
		for _, name := range phaseOrder[:len(phaseOrder)-1] {
			if excess := row[name] - med[name]; excess > 2*time.Millisecond {
				parts = append(parts, fmt.Sprintf("%s +%.1f", name, ms(excess)))
			}
		}
		fmt.Printf("  run %d: %.1f ms: %s\n", i, ms(row["TOTAL"]), strings.Join(parts, ", "))
	}
}

func quantile(ds []time.Duration, q float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[max(0, int(math.Ceil(q*float64(len(s))))-1)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// daemon is the scratch cairnd.
type daemon struct {
	dir, bin, socket, cgroupParent string
	cmd                            *exec.Cmd
}

func startDaemon(dir, bin string) (*daemon, error) {
	d := &daemon{dir: dir, bin: bin, socket: filepath.Join(dir, "cairn.sock"), cgroupParent: filepath.Base(dir)}
	logf, err := os.Create(filepath.Join(dir, "cairnd.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	shim := filepath.Join(bin, "cairn")
	d.cmd = exec.Command(filepath.Join(bin, "cairnd"), "--root", filepath.Join(dir, "root"), "--socket", d.socket,
		"--shim", shim, "--cgroup-parent", d.cgroupParent, "--metrics-addr", "", "--log-level", "debug")
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	if err := d.cmd.Start(); err != nil {
		return nil, err
	}
	cleanup.add(d.stop)
	for range 300 {
		if _, err := d.cli("image", "ls"); err == nil {
			return d, nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil, errors.Join(errors.New("cairnd did not serve within 3s"), d.stop())
}

func (d *daemon) cli(args ...string) ([]byte, error) {
	return exec.Command(filepath.Join(d.bin, "cairn"), append([]string{"--socket", d.socket}, args...)...).CombinedOutput()
}

// stop removes any container left (a run cut short), stops cairnd (the
// standby shim goes with it) and removes the cgroup parent it leaves in
// every hierarchy.
func (d *daemon) stop() error {
	if d.cmd == nil || d.cmd.Process == nil {
		return nil
	}
	if out, err := d.cli("ps", "-a", "--format", "json"); err == nil {
		sc := bufio.NewScanner(strings.NewReader(string(out)))
		for sc.Scan() {
			var c struct {
				ID string `json:"id"`
			}
			if json.Unmarshal(sc.Bytes(), &c) == nil && c.ID != "" {
				_, _ = d.cli("rm", "-f", c.ID)
			}
		}
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	err := d.cmd.Wait()
	dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", d.cgroupParent))
	for _, dir := range dirs {
		// Sub-cgroups first: rmdir removes only empty cgroups.
		var sub []string
		_ = filepath.WalkDir(dir, func(path string, e os.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				sub = append(sub, path)
			}
			return nil
		})
		for i := len(sub) - 1; i >= 0; i-- {
			if rerr := syscall.Rmdir(sub[i]); rerr != nil && !errors.Is(rerr, syscall.ENOENT) {
				err = errors.Join(err, fmt.Errorf("rmdir %s: %w", sub[i], rerr))
			}
		}
	}
	return err
}

// history returns, per container, when each of its records was appended
// ("create.INTENT", ...), when the executor handed it to a shim
// ("assigned") and when it exited ("finished").
func (d *daemon) history() (map[string]map[string]time.Time, error) {
	out, err := d.cli("history", "--format", "json")
	if err != nil {
		return nil, fmt.Errorf("history: %w\n%s", err, out)
	}
	byContainer := map[string]map[string]time.Time{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r struct {
			Kind      string    `json:"kind"`
			Time      time.Time `json:"time"`
			Container string    `json:"container_id"`
			Event     string    `json:"event"`
			Details   struct {
				Args struct {
					Exit *struct {
						FinishedAt time.Time `json:"finished_at"`
					} `json:"exit"`
				} `json:"args"`
				Result struct {
					Process *struct {
						StartedAt time.Time `json:"started_at"`
					} `json:"process"`
				} `json:"result"`
			} `json:"details"`
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("history line %q: %w", sc.Text(), err)
		}
		m := byContainer[r.Container]
		if m == nil {
			m = map[string]time.Time{}
			byContainer[r.Container] = m
		}
		m[r.Event+"."+strings.ToUpper(r.Kind)] = r.Time
		if p := r.Details.Result.Process; p != nil && r.Event == "start" {
			m["assigned"] = p.StartedAt
		}
		if x := r.Details.Args.Exit; x != nil && r.Event == "exit" {
			m["finished"] = x.FinishedAt
		}
	}
	return byContainer, sc.Err()
}

var attr = regexp.MustCompile(`(\w+)=("[^"]*"|\S+)`)

// parseDebugLog returns the executor's debug timings: container id →
// message → attribute → duration.
func parseDebugLog(path string) (map[string]map[string]map[string]time.Duration, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]map[string]map[string]time.Duration{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, "level=DEBUG") {
			continue
		}
		var msg, id string
		durations := map[string]time.Duration{}
		for _, m := range attr.FindAllStringSubmatch(line, -1) {
			switch k, v := m[1], strings.Trim(m[2], `"`); k {
			case "msg":
				msg = v
			case "container":
				id = v
			default:
				if d, err := time.ParseDuration(v); err == nil {
					durations[k] = d
				}
			}
		}
		if id == "" || msg == "" {
			continue
		}
		if out[id] == nil {
			out[id] = map[string]map[string]time.Duration{}
		}
		out[id][msg] = durations
	}
	return out, sc.Err()
}

// runcRunner prepares a busybox bundle running /bin/true and returns a
// function that runs it with runc.
func runcRunner(dir, tar string) (func(int) error, error) {
	runc, err := exec.LookPath("runc")
	if err != nil {
		return nil, errors.New("-runc: runc is not installed (apt-get install runc)")
	}
	bundle := filepath.Join(dir, "bundle")
	rootfs := filepath.Join(bundle, "rootfs")
	if err := os.MkdirAll(rootfs, 0o755); err != nil {
		return nil, err
	}
	for _, s := range [][]string{{"tar", "-C", rootfs, "-xf", tar}, {runc, "spec", "--bundle", bundle}} {
		if out, err := exec.Command(s[0], s[1:]...).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("%v: %w\n%s", s, err, out)
		}
	}
	path := filepath.Join(bundle, "config.json")
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var spec map[string]any
	if err := json.Unmarshal(data, &spec); err != nil {
		return nil, err
	}
	process := spec["process"].(map[string]any)
	process["terminal"], process["args"] = false, []string{"true"}
	if data, err = json.Marshal(spec); err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return nil, err
	}
	root := filepath.Join(dir, "runc")
	cleanup.add(func() error {
		// A run cut short by a signal may leave its container.
		out, _ := exec.Command(runc, "--root", root, "list", "-q").Output()
		for _, id := range strings.Fields(string(out)) {
			_ = exec.Command(runc, "--root", root, "delete", "-f", id).Run()
		}
		return nil
	})
	return func(i int) error {
		if out, err := exec.Command(runc, "--root", root, "run", "--bundle", bundle, fmt.Sprintf("lifecycle-%d", i)).CombinedOutput(); err != nil {
			return fmt.Errorf("runc run: %w\n%s", err, out)
		}
		return nil
	}, nil
}
