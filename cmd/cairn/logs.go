package main

import (
	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
)

func logsCmd(c *clients) *cobra.Command {
	var follow bool
	cmd := &cobra.Command{
		Use:   "logs [-f] ID|NAME",
		Short: "Print a container's output",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			stream, err := c.Containers.Logs(cmd.Context(), connect.NewRequest(&cairnv1.LogsRequest{Id: args[0], Follow: follow}))
			if err != nil {
				return err
			}
			defer stream.Close()
			out := cmd.OutOrStdout()
			for stream.Receive() {
				if _, err := out.Write(stream.Msg().Data); err != nil {
					return err
				}
			}
			return stream.Err()
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep streaming until the container stops")
	return cmd
}
