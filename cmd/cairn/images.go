package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"connectrpc.com/connect"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
)

const importChunk = 256 << 10

func imageCmd(c *clients) *cobra.Command {
	cmd := &cobra.Command{Use: "image", Short: "Manage images"}
	cmd.AddCommand(imageImportCmd(c), imageLsCmd(c), imageRmCmd(c))
	return cmd
}

func imageImportCmd(c *clients) *cobra.Command {
	return &cobra.Command{
		Use:   "import ROOTFS.tar NAME",
		Short: "Import a root filesystem tar (plain or gzip) as an image",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			var src io.Reader = f
			if fi, err := f.Stat(); err == nil && term.IsTerminal(int(os.Stderr.Fd())) {
				bar := progressbar.DefaultBytes(fi.Size(), "importing "+args[1])
				src = io.TeeReader(f, bar)
			}
			stream := c.Images.Import(cmd.Context())
			if err := stream.Send(&cairnv1.ImageServiceImportRequest{Name: args[1]}); err != nil && !errors.Is(err, io.EOF) {
				return err
			}
			buf := make([]byte, importChunk)
			for {
				n, rerr := src.Read(buf)
				if n > 0 {
					if err := stream.Send(&cairnv1.ImageServiceImportRequest{Chunk: buf[:n]}); err != nil {
						break // the server answered early (a refusal); CloseAndReceive has it
					}
				}
				if errors.Is(rerr, io.EOF) {
					break
				}
				if rerr != nil {
					return rerr
				}
			}
			res, err := stream.CloseAndReceive()
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", res.Msg.Image.Name, res.Msg.Image.ChainId)
			return nil
		},
	}
}

func imageLsCmd(c *clients) *cobra.Command {
	return &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List images",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := c.Images.List(cmd.Context(), connect.NewRequest(&cairnv1.ImageServiceListRequest{}))
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 3, ' ', 0)
			fmt.Fprintln(tw, "NAME\tCHAIN ID\tSIZE\tCREATED")
			for _, img := range res.Msg.Images {
				fmt.Fprintf(tw, "%s\t%.19s\t%s\t%s\n", img.Name, img.ChainId, humanSize(img.Size), ago(img.CreatedAt))
			}
			return tw.Flush()
		},
	}
}

func imageRmCmd(c *clients) *cobra.Command {
	return &cobra.Command{
		Use:   "rm NAME",
		Short: "Remove an image no container uses",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := c.Images.Remove(cmd.Context(), connect.NewRequest(&cairnv1.ImageServiceRemoveRequest{Name: args[0]}))
			if err == nil {
				fmt.Fprintln(cmd.OutOrStdout(), args[0])
			}
			return err
		},
	}
}

func humanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
