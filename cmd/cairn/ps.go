package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"connectrpc.com/connect"
	units "github.com/docker/go-units"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/timestamppb"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
)

// stateName turns CONTAINER_STATE_RUNNING into "running".
func stateName(s cairnv1.ContainerState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "CONTAINER_STATE_"))
}

func psCmd(c *clients) *cobra.Command {
	var all, quiet, noTrunc bool
	var format string
	var filterArgs []string
	cmd := &cobra.Command{
		Use:   "ps [-a] [-q] [--filter KEY=VALUE]... [--no-trunc] [--format table|json|TEMPLATE]",
		Short: "List containers",
		Long: `List containers: running and paused ones, or all with -a.

Filters (the same key ORs, different keys AND):
  id=PREFIX  name=SUBSTRING  status=created|running|paused|stopped|exited
  label=KEY or label=KEY=VALUE  ancestor=IMAGE (name or id)  exited=CODE
A status or exited filter lists stopped containers without -a.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out, err := parseOutput(format)
			if err != nil {
				return err
			}
			f, err := parseFilters(filterArgs, containerFilterKeys)
			if err != nil {
				return err
			}
			listAll := all || f.has("status") || f.has("exited")
			res, err := c.Containers.List(cmd.Context(), connect.NewRequest(&cairnv1.ListRequest{All: listAll}))
			if err != nil {
				return err
			}
			var cs []*cairnv1.Container
			for _, ctr := range res.Msg.Containers {
				if f.matchContainer(ctr) {
					cs = append(cs, ctr)
				}
			}
			w := cmd.OutOrStdout()
			if quiet {
				for _, ctr := range cs {
					fmt.Fprintln(w, idColumn(ctr.Id, noTrunc))
				}
				return nil
			}
			items := make([]item, len(cs))
			for i, ctr := range cs {
				items[i] = item{msg: ctr, aliases: containerAliases(ctr, noTrunc)}
			}
			return out.print(w, items, func(w io.Writer) error { return psTable(w, cs, noTrunc) })
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "show all containers, not only running and paused ones")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only container ids")
	cmd.Flags().BoolVar(&noTrunc, "no-trunc", false, "do not shorten ids and commands")
	cmd.Flags().StringArrayVarP(&filterArgs, "filter", "f", nil, "show only containers that match KEY=VALUE (see above)")
	cmd.Flags().StringVar(&format, "format", "table", formatHelp)
	return cmd
}

// idColumn is an id as a listing shows it.
func idColumn(id string, noTrunc bool) string {
	if noTrunc {
		return id
	}
	return shortID(id)
}

// containerAliases are Docker's names for ps's columns, for templates.
func containerAliases(c *cairnv1.Container, noTrunc bool) map[string]any {
	command := strings.Join(c.Command, " ")
	if !noTrunc {
		command = truncate(command, 24)
	}
	return map[string]any{
		"ID": idColumn(c.Id, noTrunc), "Names": c.Name, "Image": familiar(c.Image), "Command": strconv.Quote(command),
		"CreatedAt": createdAt(c.CreatedAt), "RunningFor": since(c.CreatedAt), "Status": status(c), "State": stateName(c.State),
		"Labels": labelList(c.GetConfig().GetLabels()),
	}
}

func createdAt(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return ""
	}
	return ts.AsTime().Local().Format("2006-01-02 15:04:05 -0700 MST")
}

func psTable(w io.Writer, cs []*cairnv1.Container, noTrunc bool) error {
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "CONTAINER ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tPID\tNAME")
	for _, c := range cs {
		command := strings.Join(c.Command, " ")
		if !noTrunc {
			command = truncate(command, 24)
		}
		fmt.Fprintf(tw, "%s\t%s\t%q\t%s\t%s\t%d\t%s\n", idColumn(c.Id, noTrunc), familiar(c.Image), command,
			ago(c.CreatedAt), status(c), c.Pid, c.Name)
	}
	return tw.Flush()
}

// truncate shortens s to n runes, the last one an ellipsis, so a
// multi-byte character is never cut in half.
func truncate(s string, n int) string {
	if n < 1 || utf8.RuneCountInString(s) <= n {
		return s
	}
	runes := []rune(s)
	return string(runes[:n-1]) + "…"
}

// since is how long ago ts was, as Docker prints it ("3 seconds",
// "About a minute"), or "-" without a time.
func since(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return "-"
	}
	return units.HumanDuration(time.Since(ts.AsTime()))
}

func ago(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return "-"
	}
	return agoTime(ts.AsTime())
}

func agoTime(t time.Time) string { return units.HumanDuration(time.Since(t)) + " ago" }

// status reads like docker's: "Up 3 seconds", "Exited (3) 2 minutes ago".
func status(c *cairnv1.Container) string {
	switch c.State {
	case cairnv1.ContainerState_CONTAINER_STATE_RUNNING:
		return "Up " + since(c.StartedAt)
	case cairnv1.ContainerState_CONTAINER_STATE_PAUSED:
		return "Up " + since(c.StartedAt) + " (Paused)"
	case cairnv1.ContainerState_CONTAINER_STATE_STOPPED:
		code := "unknown"
		if c.ExitCode != nil {
			code = fmt.Sprint(*c.ExitCode)
		}
		if c.OomKilled {
			code += ", OOMKilled"
		}
		return fmt.Sprintf("Exited (%s) %s", code, ago(c.FinishedAt))
	default:
		return "Created"
	}
}
