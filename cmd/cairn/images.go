package main

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"connectrpc.com/connect"
	units "github.com/docker/go-units"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"
	"google.golang.org/protobuf/encoding/protojson"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/internal/apiclient"
)

func imageCmd(c *clients) *cobra.Command {
	cmd := &cobra.Command{Use: "image", Short: "Manage images"}
	cmd.AddCommand(imageLoadCmd(c), imageImportCmd(c), imageLsCmd(c), imageInspectCmd(c), imageTagCmd(c),
		imageRmCmd(c), imagePruneCmd(c), imageHistoryCmd(c))
	return cmd
}

func imageLoadCmd(c *clients) *cobra.Command {
	var input string
	cmd := &cobra.Command{
		Use:   "load [-i FILE|DIR|-]",
		Short: "Load images from a docker save archive or an OCI image layout (tar or directory)",
		Long: `Load images from an archive: docker save (old format or OCI-in-docker), an
OCI image layout as a tar (skopeo's oci-archive) or as a directory, the
archive plain or gzip/zstd-compressed, its layers plain, gzip or zstd.

Every layer is checked against its digest and the image config's diffID
before anything is registered; a layer an image already has is stored once.
Without -i (or with -i -) the archive is read from stdin.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			src, size, closeSrc, err := openLoadSource(input, cmd.InOrStdin())
			if err != nil {
				return err
			}
			defer closeSrc()
			if size >= 0 && term.IsTerminal(int(os.Stderr.Fd())) {
				src = io.TeeReader(src, progressbar.DefaultBytes(size, "loading"))
			}
			imgs, err := apiclient.LoadImage(cmd.Context(), c.Images, src)
			if err != nil {
				return err
			}
			for _, img := range imgs {
				if len(img.Names) == 0 {
					fmt.Fprintf(cmd.OutOrStdout(), "Loaded image ID: %s\n", img.Id)
				}
				for _, n := range img.Names {
					fmt.Fprintf(cmd.OutOrStdout(), "Loaded image: %s\n", familiar(n))
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&input, "input", "i", "-", "archive file, OCI layout directory, or - for stdin")
	return cmd
}

// openLoadSource opens what to load: stdin for "-", a file, or a directory
// (an OCI layout), which is sent as a tar of its content. Links are sent as
// the links they are, never followed: the daemon refuses them in a layout.
func openLoadSource(path string, stdin io.Reader) (io.Reader, int64, func(), error) {
	if path == "-" {
		return stdin, -1, func() {}, nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, 0, nil, err
	}
	if !fi.IsDir() {
		return openImportSource(path, stdin)
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(tarDir(pw, path)) }()
	return pr, -1, func() { pr.Close() }, nil
}

// tarDir writes the content of dir as a tar, names relative to it.
func tarDir(w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		if info.IsDir() {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
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
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", familiar(img.Name), img.Id)
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

// imageRow is one line of `image ls --format json`.
type imageRow struct {
	Repository string   `json:"repository"`
	Tag        string   `json:"tag"`
	ID         string   `json:"id"`
	Names      []string `json:"names,omitempty"`
	Size       int64    `json:"size"`
	Created    string   `json:"created,omitempty"`
}

func imageLsCmd(c *clients) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List images: one line per name, and one per image without a name",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "table" && format != "json" {
				return fmt.Errorf("unknown --format %q: use table or json", format)
			}
			res, err := c.Images.List(cmd.Context(), connect.NewRequest(&cairnv1.ImageServiceListRequest{}))
			if err != nil {
				return err
			}
			if format == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				for _, img := range res.Msg.Images {
					for _, row := range imageRows(img) {
						if err := enc.Encode(row); err != nil {
							return err
						}
					}
				}
				return nil
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 3, ' ', 0)
			fmt.Fprintln(tw, "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE")
			for _, img := range res.Msg.Images {
				for _, row := range imageRows(img) {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", row.Repository, row.Tag, shortImageID(img.Id), ago(img.CreatedAt), humanSize(img.Size))
				}
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&format, "format", "table", "table or json (one object per line)")
	return cmd
}

func imageRows(img *cairnv1.Image) []imageRow {
	var rows []imageRow
	created := ""
	if img.CreatedAt != nil {
		created = img.CreatedAt.AsTime().UTC().Format("2006-01-02T15:04:05Z")
	}
	for _, n := range img.Names {
		repo, tag := splitName(n)
		rows = append(rows, imageRow{Repository: repo, Tag: tag, ID: img.Id, Names: img.Names, Size: img.Size, Created: created})
	}
	if len(rows) == 0 {
		rows = append(rows, imageRow{Repository: "<none>", Tag: "<none>", ID: img.Id, Size: img.Size, Created: created})
	}
	return rows
}

// shortImageID is the 12 hex digits `docker images` shows.
func shortImageID(id string) string {
	h := strings.TrimPrefix(id, "sha256:")
	if len(h) > 12 {
		h = h[:12]
	}
	return h
}

func imageInspectCmd(c *clients) *cobra.Command {
	return &cobra.Command{
		Use:   "inspect REF",
		Short: "Show an image as JSON: id, names, config, layers, the containers using it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := c.Images.Get(cmd.Context(), connect.NewRequest(&cairnv1.ImageServiceGetRequest{Ref: args[0]}))
			if err != nil {
				return err
			}
			out, err := protojson.MarshalOptions{Multiline: true, UseProtoNames: true}.Marshal(res.Msg)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), string(out))
			return nil
		},
	}
}

func imageTagCmd(c *clients) *cobra.Command {
	return &cobra.Command{
		Use:   "tag SOURCE TARGET",
		Short: "Give an image a name (taken from an image that has it)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := c.Images.Tag(cmd.Context(), connect.NewRequest(&cairnv1.ImageServiceTagRequest{Source: args[0], Target: args[1]}))
			return err
		},
	}
}

func imageRmCmd(c *clients) *cobra.Command {
	return &cobra.Command{
		Use:   "rm REF...",
		Short: "Remove a name, or an image no container uses (its last name, or its id)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var failed error
			for _, ref := range args {
				res, err := c.Images.Remove(cmd.Context(), connect.NewRequest(&cairnv1.ImageServiceRemoveRequest{Name: ref}))
				if err != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "Error: %s: %v\n", ref, err)
					failed = err
					continue
				}
				for _, n := range res.Msg.Untagged {
					fmt.Fprintf(cmd.OutOrStdout(), "Untagged: %s\n", familiar(n))
				}
				if res.Msg.Deleted != "" {
					fmt.Fprintf(cmd.OutOrStdout(), "Deleted: %s\n", res.Msg.Deleted)
				}
			}
			return failed
		},
	}
}

func imagePruneCmd(c *clients) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "prune [-a]",
		Short: "Delete images without a name that no container uses (-a: every image no container uses)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := c.Images.Prune(cmd.Context(), connect.NewRequest(&cairnv1.ImageServicePruneRequest{All: all}))
			if err != nil {
				return err
			}
			for _, id := range res.Msg.Deleted {
				fmt.Fprintf(cmd.OutOrStdout(), "Deleted: %s\n", id)
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "every image no container uses, not only those without a name")
	return cmd
}

func imageHistoryCmd(c *clients) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "history [REF]",
		Short: "An image's build history and its journal records; without REF, every image's journal records",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "text" && format != "json" {
				return fmt.Errorf("unknown --format %q: use text or json", format)
			}
			out := cmd.OutOrStdout()
			req := &cairnv1.HistoryRequest{Object: "image"}
			if len(args) == 1 {
				req.Id = args[0]
				res, err := c.Images.Get(cmd.Context(), connect.NewRequest(&cairnv1.ImageServiceGetRequest{Ref: args[0]}))
				switch {
				case err == nil:
					if err := printImageHistory(out, res.Msg, format); err != nil {
						return err
					}
					req.Id = res.Msg.Image.Id
				case connect.CodeOf(err) != connect.CodeNotFound || !strings.HasPrefix(args[0], "sha256:"):
					// A deleted image's journal stays readable by its id.
					return err
				}
			}
			stream, err := c.Journal.History(cmd.Context(), connect.NewRequest(req))
			if err != nil {
				return err
			}
			defer stream.Close()
			if format == "text" && len(args) == 1 {
				fmt.Fprintln(out, "\nJOURNAL")
			}
			for stream.Receive() {
				for _, r := range stream.Msg().Records {
					if err := printRecord(out, r, format); err != nil {
						return err
					}
				}
			}
			return stream.Err()
		},
	}
	cmd.Flags().StringVar(&format, "format", "text", "text or json (one object per line)")
	return cmd
}

// historyLayerRow is one line of `image history --format json`'s build
// history.
type historyLayerRow struct {
	Layer      string `json:"layer,omitempty"`
	Created    string `json:"created,omitempty"`
	CreatedBy  string `json:"created_by,omitempty"`
	Size       int64  `json:"size"`
	Comment    string `json:"comment,omitempty"`
	EmptyLayer bool   `json:"empty_layer,omitempty"`
}

func printImageHistory(w io.Writer, res *cairnv1.ImageServiceGetResponse, format string) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		for _, h := range res.History {
			row := historyLayerRow{Layer: h.DiffId, CreatedBy: h.CreatedBy, Size: h.Size, Comment: h.Comment, EmptyLayer: h.EmptyLayer}
			if h.Created != nil {
				row.Created = h.Created.AsTime().UTC().Format("2006-01-02T15:04:05Z")
			}
			if err := enc.Encode(row); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "LAYER\tCREATED\tCREATED BY\tSIZE\tCOMMENT")
	for _, h := range res.History {
		layer, size := "<missing>", "0B"
		if h.DiffId != "" {
			layer, size = shortImageID(h.DiffId), units.HumanSizeWithPrecision(float64(h.Size), 3)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", layer, ago(h.Created), truncate(h.CreatedBy, 45), size, h.Comment)
	}
	return tw.Flush()
}

// humanSize prints an image size as docker image ls does (decimal units,
// three significant digits).
func humanSize(n int64) string { return units.HumanSizeWithPrecision(float64(n), 3) }
