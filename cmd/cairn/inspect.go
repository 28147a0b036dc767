package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/reflect/protoreflect"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/internal/errdefs"
)

func inspectCmd(c *clients) *cobra.Command {
	var format, kind string
	cmd := &cobra.Command{
		Use:   "inspect [--type container|image] [--format json|TEMPLATE] ID|NAME...",
		Short: "Show containers (or images) as a JSON array: state, pid, exit code, image id and config, mount id, layer paths, timestamps",
		Long: `Show containers, or images, as a JSON array, one element per argument in order.
An argument that is no container is looked up as an image unless --type says which.
With a template, it is executed for each object on its JSON form, e.g. --format '{{.state}} {{.pid}}'.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if kind != "" && kind != "container" && kind != "image" {
				return usageErrorf("unknown --type %q: use container or image", kind)
			}
			return inspectEach(cmd, args, format, func(ref string) (protoreflect.ProtoMessage, error) {
				return c.inspectOne(cmd, ref, kind)
			})
		},
	}
	cmd.Flags().StringVar(&format, "format", "json", "json (an indented array) or a Go template for each object")
	cmd.Flags().StringVar(&kind, "type", "", "look the arguments up only as container or image")
	return cmd
}

// inspectOne gets ref as a container, else (unless kind says otherwise)
// as an image.
func (c *clients) inspectOne(cmd *cobra.Command, ref, kind string) (protoreflect.ProtoMessage, error) {
	var err error
	if kind != "image" {
		var res *connect.Response[cairnv1.GetResponse]
		res, err = c.Containers.Get(cmd.Context(), connect.NewRequest(&cairnv1.GetRequest{Id: ref}))
		if err == nil {
			return res.Msg.Container, nil
		}
		if kind == "container" || connect.CodeOf(err) != connect.CodeNotFound {
			return nil, err
		}
	}
	res, ierr := c.Images.Get(cmd.Context(), connect.NewRequest(&cairnv1.ImageServiceGetRequest{Ref: ref}))
	if ierr == nil {
		return res.Msg, nil
	}
	if kind == "" && connect.CodeOf(ierr) == connect.CodeNotFound {
		return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("no such container or image: %s", errdefs.Quote(ref)))
	}
	return nil, ierr
}

// writeJSONArray prints the views as one indented JSON array, as docker
// inspect does; none is an empty array.
func writeJSONArray(w io.Writer, msgs []protoreflect.ProtoMessage) error {
	views := make([]any, len(msgs))
	for i, m := range msgs {
		views[i] = jsonView(m.ProtoReflect())
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(views); err != nil {
		return err
	}
	_, err := w.Write(b.Bytes())
	return err
}

// inspectEach gets each name with get and prints the objects found as
// inspect does (a JSON array, or a template per object); names not found
// are reported on stderr and make the command fail after the others are
// printed.
func inspectEach(cmd *cobra.Command, names []string, format string, get func(name string) (protoreflect.ProtoMessage, error)) error {
	tmpl, err := inspectOutput(format)
	if err != nil {
		return err
	}
	var found []protoreflect.ProtoMessage
	var missing []error
	for _, name := range names {
		msg, err := get(name)
		if err != nil {
			if connect.CodeOf(err) != connect.CodeNotFound {
				return err
			}
			missing = append(missing, err)
			continue
		}
		found = append(found, msg)
	}
	return printInspected(cmd.OutOrStdout(), tmpl, found, missing)
}

// inspectOutput is inspect's --format: json (the zero output) or a template.
func inspectOutput(format string) (output, error) {
	if format == "" || format == "json" {
		return output{}, nil
	}
	tmpl, err := parseOutput(format)
	if err != nil {
		return output{}, err
	}
	if tmpl.kind != "template" {
		return output{}, usageErrorf("unknown --format %q: use json or a template", format)
	}
	return tmpl, nil
}

// printInspected prints what an inspect found, then what it did not.
func printInspected(w io.Writer, tmpl output, found []protoreflect.ProtoMessage, missing []error) error {
	var err error
	if tmpl.kind == "template" {
		items := make([]item, len(found))
		for i, m := range found {
			items[i] = item{msg: m}
		}
		err = tmpl.print(w, items, nil)
	} else {
		err = writeJSONArray(w, found)
	}
	if err != nil {
		return err
	}
	for _, m := range missing {
		fmt.Fprintln(os.Stderr, "Error:", describe(m))
	}
	if len(missing) > 0 {
		return exitError{code: exitCairnError}
	}
	return nil
}
