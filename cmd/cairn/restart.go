package main

import (
	"context"
	"errors"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
)

const restartFlagHelp = "restart policy: no, on-failure[:N], always or unless-stopped"

// updateCmd is `cairn update --restart POLICY CTR...`. Other settings
// (limits) join it as flags of their own; --restart goes through
// RestartPolicyService.UpdateRestartPolicy.
func updateCmd(c *clients) *cobra.Command {
	var restart string
	cmd := &cobra.Command{
		Use:   "update --restart POLICY ID...",
		Short: "Change settings of containers: the restart policy (journaled; the state stays as it is)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("restart") {
				return errors.New("nothing to update: give --restart")
			}
			return eachRef(cmd, args, func(ctx context.Context, ref string) error {
				return updateRestartPolicy(ctx, c, ref, restart)
			})
		},
	}
	cmd.Flags().StringVar(&restart, "restart", "", restartFlagHelp)
	return cmd
}

func updateRestartPolicy(ctx context.Context, c *clients, ref, policy string) error {
	_, err := c.Restarts.UpdateRestartPolicy(ctx, connect.NewRequest(&cairnv1.UpdateRestartPolicyRequest{Id: ref, RestartPolicy: policy}))
	return err
}
