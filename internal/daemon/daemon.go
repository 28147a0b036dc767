// Package daemon wires cairnd together: the journal, the layer store, the
// executor, the lifecycle driver, the API on the unix socket and the metrics
// endpoint. It owns startup order and shutdown, nothing else.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/grpchealth"
	sdnotify "github.com/coreos/go-systemd/v22/daemon"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cairn-run/cairn/api"
	"github.com/cairn-run/cairn/executor"
	"github.com/cairn-run/cairn/images"
	"github.com/cairn-run/cairn/internal/buildinfo"
	"github.com/cairn-run/cairn/internal/crashpoint"
	"github.com/cairn-run/cairn/internal/defaults"
	"github.com/cairn-run/cairn/internal/storecheck"
	"github.com/cairn-run/cairn/internal/sysinfo"
	"github.com/cairn-run/cairn/journal"
	"github.com/cairn-run/cairn/layer"
	"github.com/cairn-run/cairn/metrics"
	"github.com/cairn-run/cairn/network"
	"github.com/cairn-run/cairn/recovery"
	sm "github.com/cairn-run/cairn/statemachine"
	"github.com/cairn-run/cairn/volumes"
)

// Config is cairnd's configuration.
type Config struct {
	Root   string
	Socket string
	// MetricsAddr is the TCP address of the Prometheus endpoint; empty
	// disables it (metrics stay available at /metrics on the socket).
	MetricsAddr string
	// ShimBinary is the cairn binary, run as `cairn shim`.
	ShimBinary   string
	CgroupParent string
	// LiveRestore leaves containers running when the daemon stops.
	LiveRestore bool
	// HistoryRetain is how many of the newest journal records compaction
	// keeps whole; older histories of removed containers are deleted.
	// Default 10,000.
	HistoryRetain int
	// Access says who may reach the API: the socket's group, TCP listeners.
	Access Access
	// MaxImportBytes bounds the uncompressed size of one image import;
	// default 8 GiB (layer.ImportOptions.MaxBytes).
	MaxImportBytes int64
	// Registries says how pulls and pushes reach registries (which are
	// reached over plain http: cairnd --insecure-registry).
	Registries images.Registries
	// Network configures networking (see NetworkConfig).
	Network NetworkConfig
	// LogMaxSize and LogMaxFiles are the rotation of a container's log
	// when its create sets none; zero: the executor's defaults.
	LogMaxSize  int64
	LogMaxFiles int
	// DefaultPidsLimit is the pids limit of a container that asks for
	// none; 0 is resources.DefaultPidsLimit, -1 none.
	DefaultPidsLimit int64
	Logger           *slog.Logger
}

// Daemon is a running cairnd.
type Daemon struct {
	cfg     Config
	log     *slog.Logger
	journal *journal.Journal
	layers  *layer.Store
	images  *images.Service
	volumes *volumes.Service
	exec    *executor.Executor
	machine *sm.Machine
	net     *network.Manager
	metrics *metrics.Metrics
	health  *grpchealth.StaticChecker
	gate    api.Gate
	servers []*http.Server
	socket  *net.UnixListener
	serveWG sync.WaitGroup
	errs    chan error
	once    sync.Once

	stopCompaction context.CancelFunc
	// stopping is closed as Stop begins: event streams end so their
	// clients resume after the restart instead of holding the shutdown.
	stopping   chan struct{}
	compaction sync.WaitGroup

	// For `cairn info`: when the daemon started, whether its startup
	// recovery is done, and what it did.
	startedAt    time.Time
	recovered    atomic.Bool
	lastRecovery atomic.Pointer[sysinfo.Recovery]
}

// Start opens the journal (refusing a locked or corrupt one), reattaches to
// the containers that are still running and starts serving.
func Start(cfg Config) (*Daemon, error) {
	cfg, err := withDefaults(cfg)
	if err != nil {
		return nil, err
	}
	d := &Daemon{cfg: cfg, log: cfg.Logger, errs: make(chan error, 4), stopping: make(chan struct{}), startedAt: time.Now()}
	if err := crashpoint.Check(CrashPoints()); err != nil {
		return nil, err
	}
	if crashpoint.Ignored() {
		d.log.Warn(crashpoint.Env + " is set but this cairnd was built without crash points (go build -tags crashpoints): ignored")
	}
	if err := os.MkdirAll(cfg.Root, 0o711); err != nil {
		return nil, fmt.Errorf("root %s: %w", cfg.Root, err)
	}
	d.metrics = metrics.New(d.metricSources())
	d.journal, err = journal.Open(filepath.Join(cfg.Root, "cairn.db"), journal.Options{Observer: d.metrics, CrashPoint: crashpoint.Hit, Checks: storecheck.All()})
	if err != nil {
		return nil, err
	}
	seed := map[[2]string]int{}
	for oc, n := range d.journal.Outcomes() {
		seed[[2]string{oc.Event, oc.Kind}] = n
	}
	d.metrics.Seed(seed)
	if err := d.open(); err != nil {
		_ = d.journal.Close()
		return nil, err
	}
	if err := d.listen(); err != nil {
		d.machine.Close()
		_ = d.journal.Close()
		return nil, err
	}
	if err := d.recover(); err != nil {
		d.Stop(context.Background())
		return nil, err
	}
	d.gate.Open()
	api.SetServing(d.health, true)
	d.startCompaction()
	// A service manager waiting for Type=notify learns the daemon is ready
	// only now that every container is recovered.
	if _, err := sdnotify.SdNotify(false, sdnotify.SdNotifyReady); err != nil {
		d.log.Warn("telling the service manager cairnd is ready", "error", err)
	}
	d.log.Info("cairnd serving", "root", cfg.Root, "socket", cfg.Socket, "metrics", cfg.MetricsAddr, "live_restore", cfg.LiveRestore)
	return d, nil
}

func withDefaults(cfg Config) (Config, error) {
	if cfg.Root == "" {
		cfg.Root = defaults.Root
	}
	if cfg.Socket == "" {
		cfg.Socket = defaults.Socket
	}
	if cfg.CgroupParent == "" {
		cfg.CgroupParent = defaults.CgroupParent
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.HistoryRetain <= 0 {
		cfg.HistoryRetain = 10_000
	}
	if cfg.ShimBinary == "" {
		bin, err := defaultShimBinary()
		if err != nil {
			return cfg, err
		}
		cfg.ShimBinary = bin
	}
	root, err := filepath.Abs(cfg.Root)
	if err != nil {
		return cfg, err
	}
	cfg.Root = root
	return cfg, nil
}

// defaultShimBinary is the cairn next to the running cairnd, else the one
// on PATH.
func defaultShimBinary() (string, error) {
	if self, err := os.Executable(); err == nil {
		candidate := filepath.Join(filepath.Dir(self), "cairn")
		if _, err := os.Stat(candidate); err == nil {
			return candidate, nil
		}
	}
	if path, err := exec.LookPath("cairn"); err == nil {
		return path, nil
	}
	return "", errors.New("cannot find the cairn binary to run shims: install it next to cairnd or on PATH, or pass --shim")
}

// open builds the layer store, the executor and the driver on the journal.
func (d *Daemon) open() error {
	var err error
	d.layers, err = layer.Open(filepath.Join(d.cfg.Root, "layer"), d.journal)
	if err != nil {
		return err
	}
	d.exec, err = executor.New(executor.Config{Dir: filepath.Join(d.cfg.Root, "exec"), ShimBinary: d.cfg.ShimBinary, CgroupParent: d.cfg.CgroupParent, Logger: d.log})
	if err != nil {
		return err
	}
	d.images = &images.Service{
		Store: d.layers, Journal: d.journal, Options: layer.ImportOptions{MaxBytes: d.cfg.MaxImportBytes},
		Registries: d.cfg.Registries, Containers: d.journal, CrashPoint: crashpoint.Hit,
		Driver: sm.NewImages(sm.ImageDeps{Journal: d.journal, Logger: d.log, CrashPoint: crashpoint.Hit}),
	}
	d.volumes = &volumes.Service{Dir: filepath.Join(d.cfg.Root, "volumes"), Journal: d.journal,
		Driver: sm.NewVolumes(sm.VolumeDeps{Journal: d.journal, Logger: d.log, CrashPoint: crashpoint.Hit})}
	if err := d.openNetwork(); err != nil {
		return err
	}
	rt := runtime{exec: d.exec, metrics: d.metrics, net: d.net, journal: d.journal, logMaxSize: d.cfg.LogMaxSize, logMaxFiles: d.cfg.LogMaxFiles, volumes: d.volumes}
	ls := layers{store: d.layers, images: d.images}
	d.machine = sm.New(sm.Deps{
		Journal: d.journal, Runner: rt, Freezer: rt, Janitor: rt, Layers: ls, Mounter: ls, Volumes: d.volumes,
		Observer: observer{d.metrics}, Logger: d.log, CrashPoint: crashpoint.Hit,
		Execs: execRuntime{d.exec}, ExecViews: d.journal,
		Defaults: d.resourceDefaults(), CheckSecurity: checkSecurity,
	})
	return nil
}

// recover brings the machine in line with the journal after a start:
// recovery reconciles every container and reattaches the live ones. A
// container whose recovery failed keeps its unfinished intent (the API
// refuses to act on it) and is tried again at the next start; the others
// are served.
func (d *Daemon) recover() error {
	info, err := d.journal.MarkStarted(bootID())
	if err != nil {
		return err
	}
	d.log.Info("journal opened", "path", d.journal.Path(), "clean_shutdown", info.CleanShutdown, "first_start", info.FirstStart, "rebooted", info.Rebooted)
	runner := recovery.Runner{
		Journal: d.journal, Runtime: recoveryRuntime{d.exec}, Layers: recoveryLayers{d.layers}, Lifecycle: d.machine,
		Rebooted: info.Rebooted, Log: d.log, CrashPoint: crashpoint.Hit,
		Images: recoveryImages{d.layers}, ImageJournal: d.journal,
		Execs:   recovery.ExecPorts{Journal: d.journal, Runtime: execRecovery{d.exec}, Lifecycle: d.machine},
		Volumes: d.volumes, VolumeJournal: d.journal,
		Restarts: d.machine,
	}
	rep, err := runner.Run(context.Background())
	d.recoverNetwork(info.Rebooted)
	d.metrics.Recovered(rep.Duration, rep.Actions)
	for range rep.UnknownExits {
		d.metrics.ExitCodeUnknown()
	}
	d.log.Info("recovered", "containers", rep.Containers, "images", rep.Images, "volumes", rep.Volumes, "actions", rep.Actions, "unknown_exits", rep.UnknownExits, "duration", rep.Duration)
	if err != nil {
		d.log.Error("recovery left work for the next start", "error", err)
	}
	summary := recoverySummary(rep, info, err)
	d.lastRecovery.Store(&summary)
	d.recovered.Store(true)
	return nil
}

func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}

// listen serves the API (and /metrics) on the unix socket, and /metrics on
// the TCP address.
func (d *Daemon) listen() error {
	d.health = api.NewHealth()
	containers := d.interactive(&api.ContainerServer{Machine: d.machine, View: d.journal, Mounts: layers{store: d.layers}, LogFiles: runtime{exec: d.exec}, Networks: netPort{d.net}, DefaultNetwork: d.cfg.Network.DefaultMode, VolumeDir: d.volumes.Mountpoint})
	mux := api.Handlers{
		Containers: containers,
		Restarts:   &api.RestartPolicyServer{Machine: d.machine, Containers: containers},
		Images:     &api.ImageServer{Images: d.images, Transfer: d.images},
		Journal:    &api.JournalServer{Journal: d.journal, Images: d.images, Stopping: d.stopping},
		Resources:  &api.ResourceServer{View: d.journal, Reader: runtime{exec: d.exec}, Machine: d.machine, Mounts: layers{store: d.layers}},
		Volumes:    &api.VolumeServer{Volumes: d.volumes},
		System:     &api.SystemServer{Build: buildinfo.Read(), Facts: systemFacts{d}},
		Health:     d.health,
		Gate:       &d.gate,
		RPCs:       d.metrics,
		Networks:   &api.NetworkServer{Networks: netPort{d.net}},
	}.Mux()
	metricsHandler := promhttp.HandlerFor(d.metrics.Registry, promhttp.HandlerOpts{EnableOpenMetrics: true})
	mux.Handle("/metrics", metricsHandler)

	sock, err := listenUnix(d.cfg.Socket, d.cfg.Access)
	if err != nil {
		return err
	}
	d.socket = sock
	d.serve(api.NewHTTPServer(mux), sock)
	tcp, err := d.cfg.Access.tcpListeners()
	if err != nil {
		d.closeServers(context.Background())
		return err
	}
	for _, ln := range tcp {
		srv := api.NewHTTPServer(mux)
		srv.Protocols.SetHTTP2(true) // over TLS, negotiated by ALPN
		d.serve(srv, ln)
	}
	if d.cfg.MetricsAddr != "" {
		ln, err := net.Listen("tcp", d.cfg.MetricsAddr)
		if err != nil {
			d.closeServers(context.Background())
			return fmt.Errorf("metrics address %s: %w", d.cfg.MetricsAddr, err)
		}
		m := http.NewServeMux()
		m.Handle("/metrics", metricsHandler)
		d.serve(&http.Server{Handler: m, ReadHeaderTimeout: 10 * time.Second}, ln)
	}
	return nil
}

func (d *Daemon) serve(srv *http.Server, ln net.Listener) {
	d.servers = append(d.servers, srv)
	d.serveWG.Add(1)
	go func() {
		defer d.serveWG.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.errs <- err
		}
	}()
}

// Errors reports a server that stopped on its own.
func (d *Daemon) Errors() <-chan error { return d.errs }

func (d *Daemon) closeServers(ctx context.Context) {
	for _, srv := range d.servers {
		if err := srv.Shutdown(ctx); err != nil {
			_ = srv.Close()
		}
	}
	d.serveWG.Wait()
}

// Stop shuts the daemon down: it stops serving, stops every container unless
// live restore is on, records a clean shutdown and closes the journal.
func (d *Daemon) Stop(ctx context.Context) {
	d.once.Do(func() {
		_, _ = sdnotify.SdNotify(false, sdnotify.SdNotifyStopping)
		close(d.stopping)
		if d.stopCompaction != nil {
			d.stopCompaction()
			d.compaction.Wait()
		}
		d.gate.Close()
		api.SetServing(d.health, false)
		if d.socket != nil {
			removeSocket(d.cfg.Socket, d.socket) // no new client finds it
		}
		shutdownCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		d.closeServers(shutdownCtx)
		cancel()
		if !d.cfg.LiveRestore {
			d.stopAll(ctx)
		}
		d.machine.Close()
		if err := d.exec.Close(); err != nil {
			d.log.Error("closing executor", "error", err)
		}
		if err := d.journal.MarkCleanShutdown(); err != nil {
			d.log.Error("recording clean shutdown", "error", err)
		}
		if err := d.journal.Close(); err != nil {
			d.log.Error("closing journal", "error", err)
		}
		d.log.Info("cairnd stopped", "live_restore", d.cfg.LiveRestore)
	})
}

// stopAll stops every running or paused container in parallel, each with
// the default grace period.
func (d *Daemon) stopAll(ctx context.Context) {
	var wg sync.WaitGroup
	for _, c := range d.journal.Containers() {
		if !c.State.HasProcess() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Not a user's stop: the restart policy brings it back at the next start.
			if _, err := d.machine.StopByDaemon(ctx, c.ID, sm.DefaultStopTimeout); err != nil {
				d.log.Error("stopping container at shutdown", "container", c.ID, "error", err)
			}
		}()
	}
	wg.Wait()
}

// VerifyJournal replays the journal and checks it folds to the stored view.
func (d *Daemon) VerifyJournal() error { return d.journal.Verify() }

// compactEvery is how often the journal is looked at for compaction.
const compactEvery = 5 * time.Minute

// startCompaction compacts the journal in the background: once after
// startup, then whenever half the retained window has been appended since
// the last compaction. Startup itself never waits for it.
func (d *Daemon) startCompaction() {
	ctx, cancel := context.WithCancel(context.Background())
	d.stopCompaction = cancel
	d.compaction.Go(func() {
		var compactedAt uint64
		tick := time.NewTicker(compactEvery)
		defer tick.Stop()
		for {
			if last := d.journal.LastSeq(); compactedAt == 0 || last-compactedAt >= uint64(d.cfg.HistoryRetain/2) {
				res, err := d.journal.Compact(d.cfg.HistoryRetain, 1000)
				if err != nil {
					d.log.Error("journal compaction", "error", err)
				} else if res.Deleted > 0 {
					d.log.Info("journal compacted", "scanned", res.Scanned, "deleted", res.Deleted)
				}
				compactedAt = max(last, 1)
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	})
}
