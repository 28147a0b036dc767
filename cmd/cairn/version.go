package main

import (
	"fmt"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/internal/buildinfo"
)

func versionCmd(c *clients) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Show the CLI's and the daemon's build, and the API version the daemon serves",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			fmt.Fprint(out, "Client:\n"+buildinfo.Read().Lines("  "))
			res, err := c.System.Version(cmd.Context(), connect.NewRequest(&cairnv1.VersionRequest{}))
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "Server:\n  API version: %s\n%s", res.Msg.ApiVersion, buildInfoOf(res.Msg.Daemon).Lines("  "))
			return nil
		},
	}
}

func buildInfoOf(b *cairnv1.BuildInfo) buildinfo.Info {
	if b == nil {
		return buildinfo.Info{}
	}
	return buildinfo.Info{Version: b.Version, Revision: b.Revision, Time: b.Time, Modified: b.Modified, GoVersion: b.GoVersion}
}
