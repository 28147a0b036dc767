// Command cairnd is the Cairn container daemon.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/cairn-run/cairn/internal/daemon"
	"github.com/cairn-run/cairn/internal/defaults"
)

func main() {
	cfg := daemon.Config{}
	var logLevel string
	cmd := &cobra.Command{
		Use:   "cairnd",
		Short: "Cairn container daemon: journals every lifecycle transition before it happens",
		Long: `cairnd runs containers through libcontainer, each under its own shim, and
appends every lifecycle transition to a bbolt journal before touching the
machine, so a crash or restart loses no container, exit code or paused state.

With --live-restore (the default) containers keep running when cairnd stops;
--live-restore=false stops every container gracefully on shutdown.`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level: %w", err)
			}
			cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			return run(cmd.Context(), cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Root, "root", defaults.Root, "directory for the journal, layers and container state")
	f.StringVar(&cfg.Socket, "socket", defaults.Socket, "unix socket to serve the API on")
	f.StringVar(&cfg.MetricsAddr, "metrics-addr", defaults.MetricsAddr, "TCP address for Prometheus metrics (empty disables)")
	f.StringVar(&cfg.ShimBinary, "shim", "", "the binary to run as shim (default: cairn-shim, else cairn, next to cairnd, else on PATH)")
	f.StringVar(&cfg.CgroupParent, "cgroup-parent", defaults.CgroupParent, "cgroup path under which containers get their cgroups")
	f.BoolVar(&cfg.LiveRestore, "live-restore", true, "keep containers running while cairnd is stopped or restarted")
	f.IntVar(&cfg.HistoryRetain, "history-retain", 10_000, "journal records kept whole by compaction; older histories of removed containers are deleted")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
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
