// Command cairnd is the Cairn container daemon.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	units "github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/cairn-run/cairn/internal/buildinfo"
	"github.com/cairn-run/cairn/internal/daemon"
	"github.com/cairn-run/cairn/internal/defaults"
)

func main() {
	cfg := daemon.Config{}
	var logLevel, logFormat, maxImport, configFile string
	var containerLogMax string
	cmd := &cobra.Command{
		Use:   "cairnd",
		Short: "Cairn container daemon: journals every lifecycle transition before it happens",
		Long: `cairnd runs containers through libcontainer, each under its own shim, and
appends every lifecycle transition to a bbolt journal before touching the
machine, so a crash or restart loses no container, exit code or paused state.

With --live-restore (the default) containers keep running when cairnd stops;
--live-restore=false stops every container gracefully on shutdown.`,
		Version:       buildinfo.Read().String(),
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyConfigFile(cmd.Flags(), configFile, cmd.Flags().Changed("config")); err != nil {
				return err
			}
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level: %w", err)
			}
			n, err := parseSize(maxImport)
			if err != nil {
				return fmt.Errorf("--max-import-bytes: %w", err)
			}
			cfg.MaxImportBytes = n
			if cfg.LogMaxSize, err = parseSize(containerLogMax); err != nil {
				return fmt.Errorf("--log-max-size: %w", err)
			}
			opts := &slog.HandlerOptions{Level: level}
			switch logFormat {
			case "text":
				cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, opts))
			case "json":
				cfg.Logger = slog.New(slog.NewJSONHandler(os.Stderr, opts))
			default:
				return fmt.Errorf("--log-format %q: want text or json", logFormat)
			}
			return run(cmd.Context(), cfg)
		},
	}
	cmd.SetVersionTemplate("cairnd {{.Version}}\n")
	cmd.AddCommand(journalCheckCmd())
	f := cmd.Flags()
	f.StringVar(&cfg.Root, "root", defaults.Root, "directory for the journal, layers and container state")
	f.StringVar(&cfg.Socket, "socket", defaults.Socket, "unix socket to serve the API on")
	f.StringVar(&cfg.MetricsAddr, "metrics-addr", defaults.MetricsAddr, "TCP address for Prometheus metrics (empty disables)")
	f.StringVar(&cfg.ShimBinary, "shim", "", "the cairn binary to run as shim (default: cairn next to cairnd, else on PATH)")
	f.StringVar(&cfg.CgroupParent, "cgroup-parent", defaults.CgroupParent, "cgroup path under which containers get their cgroups")
	f.BoolVar(&cfg.LiveRestore, "live-restore", true, "keep containers running while cairnd is stopped or restarted")
	f.StringVar(&cfg.Network.DefaultMode, "default-network", "bridge", "network of a container that names none: bridge, none, host or a user network")
	f.StringVar(&cfg.Network.RunDir, "net-run-dir", "/run/cairn/net", "tmpfs directory for network namespaces, the CNI cache and IPAM state")
	f.StringVar(&cfg.Network.Bridge, "bridge", "cairn0", "bridge device of the default bridge network")
	f.StringVar(&cfg.Network.Subnet, "bridge-subnet", "10.88.0.0/16", "IPv4 subnet of the default bridge network")
	f.StringSliceVar(&cfg.Network.PluginDirs, "cni-plugin-dir", []string{"/opt/cni/bin"}, "directories holding the CNI plugins (bridge, host-local, portmap)")
	f.IntVar(&cfg.HistoryRetain, "history-retain", 10_000, "journal records kept whole by compaction; older histories of removed containers are deleted")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&logFormat, "log-format", "text", "text or json: one structured line per transition either way")
	f.StringVar(&configFile, "config", defaultConfigFile, "JSON file whose keys are these flags' names; flags given here win (the default file may be absent; \"\" for none)")
	f.StringVar(&cfg.Access.Group, "group", "", "group that may use the API socket (mode 0660); default: root only (0600)")
	f.StringVar(&cfg.Access.TLSAddr, "tls-addr", "", "also serve the API on this TCP address, to clients with a certificate signed by --tls-ca only")
	f.StringVar(&cfg.Access.TLSCert, "tls-cert", "", "the --tls-addr server certificate (PEM)")
	f.StringVar(&cfg.Access.TLSKey, "tls-key", "", "its key (PEM)")
	f.StringVar(&cfg.Access.TLSCA, "tls-ca", "", "CA certificate(s) (PEM) that client certificates must be signed by")
	f.StringVar(&cfg.Access.TCPAddr, "tcp-addr", "", "also serve the API on plain TCP: only a loopback address, and only with --insecure-tcp")
	f.BoolVar(&cfg.Access.InsecureTCP, "insecure-tcp", false, "allow --tcp-addr (no authentication: anyone who can connect controls the daemon)")
	f.StringSliceVar(&cfg.Registries.Insecure, "insecure-registry", nil, "registry host[:port] reached over plain http by pull and push (repeatable; a loopback registry may also be asked for per call)")
	f.StringVar(&maxImport, "max-import-bytes", "8GiB", "largest uncompressed image tar one import may unpack (e.g. 512MiB, 8GiB, or bytes)")
	f.StringVar(&containerLogMax, "log-max-size", "10MiB", "default size at which a container's log rotates (a create's --log-max-size wins)")
	f.IntVar(&cfg.LogMaxFiles, "log-max-files", 5, "default number of a container's log files kept, the current one included")
	f.Int64Var(&cfg.DefaultPidsLimit, "default-pids-limit", 4096, "pids limit of a container that asks for none (-1: unlimited)")
	if err := cmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "cairnd:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg daemon.Config) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	d, err := daemon.Start(cfg)
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case err = <-d.Errors():
	}
	d.Stop(context.Background())
	return err
}

// parseSize reads a size such as "8GiB", "512m" or "1073741824" (binary
// units, as Docker's flags do).
func parseSize(s string) (int64, error) {
	n, err := units.RAMInBytes(s)
	if err != nil {
		return 0, err
	}
	if n <= 0 {
		return 0, fmt.Errorf("size %q must be positive", s)
	}
	return n, nil
}
