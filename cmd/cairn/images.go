package main

import (
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"connectrpc.com/connect"
	units "github.com/docker/go-units"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/internal/apiclient"
)

func imageCmd(c *clients) *cobra.Command {
	cmd := &cobra.Command{Use: "image", Short: "Manage images"}
	cmd.AddCommand(imageImportCmd(c), imageLsCmd(c), imageRmCmd(c))
	return cmd
}

func imageImportCmd(c *clients) *cobra.Command {
	return &cobra.Command{
		Use:   "import ROOTFS.tar|- NAME",
		Short: "Import a root filesystem tar (plain or gzip; - reads stdin) as an image",
		Long: `Import a root filesystem tar (plain or gzip; - reads stdin) as an image.

The tar must end with its end-of-archive marker: a truncated tar is refused.
The daemon registers the image only if every byte sent arrived (the CLI
sends their size and sha256 last), so an interrupted import leaves nothing.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, size, closeSrc, err := openImportSource(args[0], cmd.InOrStdin())
			if err != nil {
				return err
			}
			defer closeSrc()
			if size >= 0 && term.IsTerminal(int(os.Stderr.Fd())) {
				bar := progressbar.DefaultBytes(size, "importing "+args[1])
				src = io.TeeReader(src, bar)
			}
			img, err := apiclient.ImportImage(cmd.Context(), c.Images, args[1], src)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", img.Name, img.ChainId)
			return nil
		},
	}
}

// openImportSource opens the tar to import: a file, or stdin for "-". size
// is -1 when unknown.
func openImportSource(path string, stdin io.Reader) (r io.Reader, size int64, closeFn func(), err error) {
	if path == "-" {
		return stdin, -1, func() {}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, nil, err
	}
	size = -1
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
		size = fi.Size()
	}
	return f, size, func() { f.Close() }, nil
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

// humanSize prints an image size as docker image ls does (decimal units,
// three significant digits).
func humanSize(n int64) string { return units.HumanSizeWithPrecision(float64(n), 3) }
