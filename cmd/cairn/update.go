package main

import (
	"context"
	"fmt"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
)

// updateCmd is `cairn update`: limits (ResourceService.Update, live when
// the container runs) and the restart policy
// (RestartPolicyService.UpdateRestartPolicy). Each is its own journaled
// transition; with both, the limits go first.
func updateCmd(c *clients) *cobra.Command {
	var l limitFlags
	var restart string
	cmd := &cobra.Command{
		Use:   "update [--memory SIZE] [--memory-swap SIZE] [--cpus N] [--pids-limit N] [--restart POLICY] ID|NAME...",
		Short: "Change the limits (live when they run) and the restart policy of containers (journaled; the state stays as it is)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f := cmd.Flags()
			req := &cairnv1.UpdateRequest{}
			if f.Changed("memory") {
				req.MemoryBytes = &l.res.MemoryBytes
			}
			if f.Changed("memory-swap") {
				req.MemorySwapBytes = &l.res.MemorySwapBytes
			}
			if f.Changed("cpus") {
				req.NanoCpus = &l.res.NanoCpus
			}
			if f.Changed("pids-limit") {
				req.PidsLimit = &l.res.PidsLimit
			}
			limits := req.MemoryBytes != nil || req.MemorySwapBytes != nil || req.NanoCpus != nil || req.PidsLimit != nil
			if !limits && !f.Changed("restart") {
				return usageErrorf("nothing to update: give --memory, --memory-swap, --cpus, --pids-limit or --restart")
			}
			return eachRef(cmd, args, func(ctx context.Context, ref string) error {
				if limits {
					one := &cairnv1.UpdateRequest{Id: ref, MemoryBytes: req.MemoryBytes, MemorySwapBytes: req.MemorySwapBytes,
						NanoCpus: req.NanoCpus, PidsLimit: req.PidsLimit}
					if _, err := c.Resources.Update(ctx, connect.NewRequest(one)); err != nil {
						return err
					}
				}
				if f.Changed("restart") {
					if err := updateRestartPolicy(ctx, c, ref, restart); err != nil {
						return fmt.Errorf("restart policy: %w", err)
					}
				}
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.VarP(sizeFlag{&l.res.MemoryBytes, false}, "memory", "m", "memory limit (e.g. 256m)")
	f.Var(sizeFlag{&l.res.MemorySwapBytes, true}, "memory-swap", "memory plus swap limit; -1: unlimited swap")
	f.Var(cpusFlag{&l.res.NanoCpus}, "cpus", "CPU quota in CPUs (e.g. 1.5)")
	f.Int64Var(&l.res.PidsLimit, "pids-limit", 0, "task limit; 0 or -1: unlimited")
	f.StringVar(&restart, "restart", "", restartFlagHelp)
	return cmd
}
