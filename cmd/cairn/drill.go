package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/cairn-run/cairn/internal/busybox"
	"github.com/cairn-run/cairn/internal/drill"
)

func drillCmd() *cobra.Command {
	cfg := drill.Config{}
	cmd := &cobra.Command{
		Use:   "drill [--cycles N] [--containers M] [--seed S] [--keep] [--cairnd PATH]",
		Short: "Crash-recovery drill: crash a scratch cairnd among random operations and check its recovery",
		Long: `drill starts its own cairnd on a scratch root, socket and cgroup parent
(never the daemon of --socket), imports a busybox image, loads three
multi-layer images of its own, and runs cycles of: random lifecycle and image
operations (load, tag, rm) through the API; kill -9 of the daemon while they
are in flight, sometimes of a shim or a container process too; ` + "`cairn journal\ncheck`" + ` on the crashed root; a restart, timed until health says SERVING;
and checks that states, processes, exit codes, files in writable layers and
the machine (mounts, cgroups, shims) agree with what the daemon says, that
every image is whole and settled, that every layer on disk belongs to one, and,
for the containers it gives restart policies, that none was started twice and
every restart count is exact.

One line per cycle, a summary at the end; the exit status is non-zero on any
violation or if the daemon does not come back. Needs root. The same --seed
replays the same choices (timing still varies).`,
		Args: cobra.NoArgs,
		// The drill talks to its own daemon, not the one of --socket.
		PersistentPreRun: func(*cobra.Command, []string) {},
		RunE: func(cmd *cobra.Command, _ []string) error {
			if os.Geteuid() != 0 {
				return fmt.Errorf("drill needs root: it runs real containers and kills processes")
			}
			self, err := os.Executable()
			if err != nil {
				return fmt.Errorf("locate the cairn binary: %w", err)
			}
			cfg.Cairn = self
			if cfg.Cairnd == "" {
				cfg.Cairnd = filepath.Join(filepath.Dir(self), "cairnd")
			}
			if !cmd.Flags().Changed("seed") {
				cfg.Seed = rand.Uint64() // printed in the first line, to replay the drill
			}
			cfg.Out = cmd.OutOrStdout()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			_, err = drill.Run(ctx, cfg)
			return err
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Cycles, "cycles", 10, "crash and recovery cycles")
	f.IntVar(&cfg.Containers, "containers", 4, "containers at most at a time")
	f.Uint64Var(&cfg.Seed, "seed", 0, "seed of the random choices (default: random, printed)")
	f.BoolVar(&cfg.Keep, "keep", false, "keep the scratch root (journal, layers, daemon log) and print where")
	f.StringVar(&cfg.Cairnd, "cairnd", "", "the cairnd binary to drill (default: cairnd next to this cairn)")
	f.StringVar(&cfg.Busybox, "busybox", busybox.DefaultPath, "static busybox binary for the image")
	return cmd
}
