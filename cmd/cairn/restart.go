package main

import (
	"context"

	"connectrpc.com/connect"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
)

const restartFlagHelp = "restart policy: no, on-failure[:N], always or unless-stopped"

func updateRestartPolicy(ctx context.Context, c *clients, ref, policy string) error {
	_, err := c.Restarts.UpdateRestartPolicy(ctx, connect.NewRequest(&cairnv1.UpdateRestartPolicyRequest{Id: ref, RestartPolicy: policy}))
	return err
}
