package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/reflect/protoreflect"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
)

func volumeCmd(c *clients) *cobra.Command {
	cmd := &cobra.Command{Use: "volume", Short: "Manage volumes"}
	cmd.AddCommand(volumeCreateCmd(c), volumeLsCmd(c), volumeInspectCmd(c), volumeRmCmd(c), volumePruneCmd(c))
	return cmd
}

// parseLabels reads K=V pairs (a bare K is an empty value, as Docker takes it).
func parseLabels(pairs []string) (map[string]string, error) {
	if len(pairs) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, p := range pairs {
		k, v, _ := strings.Cut(p, "=")
		if k == "" {
			return nil, fmt.Errorf("label %q: want KEY=VALUE", p)
		}
		out[k] = v
	}
	return out, nil
}

func volumeCreateCmd(c *clients) *cobra.Command {
	var labels []string
	cmd := &cobra.Command{
		Use:   "create [NAME]",
		Short: "Create a volume (without NAME: an anonymous one with a 64-hex name) and print its name",
		Long: `Create a volume: a directory under the daemon's root that containers mount
with -v NAME:/path and that outlives them. Names match [a-zA-Z0-9][a-zA-Z0-9_.-]+.
Creating a volume that exists prints its name and changes nothing.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := parseLabels(labels)
			if err != nil {
				return err
			}
			req := &cairnv1.VolumeServiceCreateRequest{Labels: l}
			if len(args) == 1 {
				req.Name = args[0]
			}
			res, err := c.Volumes.Create(cmd.Context(), connect.NewRequest(req))
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), res.Msg.Volume.Name)
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&labels, "label", nil, "a label KEY=VALUE (repeatable)")
	return cmd
}

func volumeLsCmd(c *clients) *cobra.Command {
	var quiet bool
	var format string
	cmd := &cobra.Command{
		Use:     "ls [-q] [--format table|json|TEMPLATE]",
		Aliases: []string{"list"},
		Short:   "List volumes",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out, err := parseOutput(format)
			if err != nil {
				return err
			}
			res, err := c.Volumes.List(cmd.Context(), connect.NewRequest(&cairnv1.VolumeServiceListRequest{}))
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if quiet {
				for _, v := range res.Msg.Volumes {
					fmt.Fprintln(w, v.Name)
				}
				return nil
			}
			items := make([]item, len(res.Msg.Volumes))
			for i, v := range res.Msg.Volumes {
				items[i] = item{msg: v, aliases: map[string]any{"Name": v.Name, "Driver": v.Driver, "Labels": labelList(v.Labels)}}
			}
			return out.print(w, items, func(w io.Writer) error {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "DRIVER\tVOLUME NAME\tUSED BY")
				for _, v := range res.Msg.Volumes {
					fmt.Fprintf(tw, "%s\t%s\t%d\n", v.Driver, v.Name, len(v.UsedBy))
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the names")
	cmd.Flags().StringVar(&format, "format", "table", formatHelp)
	return cmd
}

func volumeInspectCmd(c *clients) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [--format json|TEMPLATE] NAME...",
		Short: "Show volumes as a JSON array: mountpoint, labels, anonymous, created, the containers using each",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return inspectEach(cmd, args, format, func(name string) (protoreflect.ProtoMessage, error) {
				res, err := c.Volumes.Get(cmd.Context(), connect.NewRequest(&cairnv1.VolumeServiceGetRequest{Name: name}))
				if err != nil {
					return nil, err
				}
				return res.Msg.Volume, nil
			})
		},
	}
	cmd.Flags().StringVar(&format, "format", "json", "json (an indented array) or a Go template for each volume")
	return cmd
}

func volumeRmCmd(c *clients) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm [-f] NAME...",
		Aliases: []string{"remove"},
		Short:   "Remove volumes and their data (refused while any container uses one, even with -f)",
		Long: `Remove volumes and delete their data. A volume that any container uses (in
any state, stopped too) is refused with the containers' ids: remove those
first. -f only makes a volume that does not exist no error; as in Docker it
does not remove a volume in use.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var errs []error
			for _, name := range args {
				res, err := c.Volumes.Remove(cmd.Context(), connect.NewRequest(&cairnv1.VolumeServiceRemoveRequest{Name: name, Force: force}))
				if err != nil {
					errs = append(errs, err)
					continue
				}
				if res.Msg.Name != "" {
					fmt.Fprintln(cmd.OutOrStdout(), res.Msg.Name)
				}
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "no error for a volume that does not exist (a volume in use is still refused)")
	return cmd
}

func volumePruneCmd(c *clients) *cobra.Command {
	var all, force bool
	cmd := &cobra.Command{
		Use:   "prune [-f] [-a]",
		Short: "Remove the anonymous volumes no container uses (-a: every unused volume)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := c.Volumes.Prune(cmd.Context(), connect.NewRequest(&cairnv1.VolumeServicePruneRequest{All: all}))
			if err != nil {
				return err
			}
			for _, name := range res.Msg.Removed {
				fmt.Fprintln(cmd.OutOrStdout(), name)
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "named volumes too, not only anonymous ones")
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not ask (cairn never asks; accepted for Docker's scripts)")
	return cmd
}
