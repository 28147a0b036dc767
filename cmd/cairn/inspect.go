package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"connectrpc.com/connect"
	units "github.com/docker/go-units"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
)

// stateName turns CONTAINER_STATE_RUNNING into "running".
func stateName(s cairnv1.ContainerState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "CONTAINER_STATE_"))
}

func timeOf(ts *timestamppb.Timestamp) *time.Time {
	if ts == nil {
		return nil
	}
	t := ts.AsTime()
	return &t
}

// psRow is one line of `ps --format json`.
type psRow struct {
	ID       string     `json:"id"`
	Name     string     `json:"name"`
	Image    string     `json:"image"`
	Command  []string   `json:"command"`
	State    string     `json:"state"`
	PID      int64      `json:"pid"`
	ExitCode *int32     `json:"exit_code,omitempty"`
	Created  *time.Time `json:"created,omitempty"`
	Started  *time.Time `json:"started,omitempty"`
	Finished *time.Time `json:"finished,omitempty"`
	// OOMKilled: the last run was ended by the OOM killer.
	OOMKilled bool `json:"oom_killed,omitempty"`
}

func psCmd(c *clients) *cobra.Command {
	var all bool
	var format string
	cmd := &cobra.Command{
		Use:   "ps [-a] [--format json]",
		Short: "List containers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "" && format != "json" && format != "table" {
				return fmt.Errorf("unknown --format %q: use table or json", format)
			}
			res, err := c.Containers.List(cmd.Context(), connect.NewRequest(&cairnv1.ListRequest{All: all}))
			if err != nil {
				return err
			}
			if format == "json" {
				return psJSON(cmd.OutOrStdout(), res.Msg.Containers)
			}
			return psTable(cmd.OutOrStdout(), res.Msg.Containers)
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "show all containers, not only running and paused ones")
	cmd.Flags().StringVar(&format, "format", "table", "table or json (one object per line)")
	return cmd
}

func psJSON(w io.Writer, cs []*cairnv1.Container) error {
	enc := json.NewEncoder(w)
	for _, c := range cs {
		row := psRow{ID: c.Id, Name: c.Name, Image: c.Image, Command: c.Command, State: stateName(c.State), PID: c.Pid,
			ExitCode: c.ExitCode, Created: timeOf(c.CreatedAt), Started: timeOf(c.StartedAt), Finished: timeOf(c.FinishedAt),
			OOMKilled: c.OomKilled}
		if err := enc.Encode(row); err != nil {
			return err
		}
	}
	return nil
}

func psTable(w io.Writer, cs []*cairnv1.Container) error {
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "CONTAINER ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tPID\tNAME")
	for _, c := range cs {
		fmt.Fprintf(tw, "%s\t%s\t%q\t%s\t%s\t%d\t%s\n", c.Id[:12], familiar(c.Image), truncate(strings.Join(c.Command, " "), 24),
			ago(c.CreatedAt), status(c), c.Pid, c.Name)
	}
	return tw.Flush()
}

// truncate shortens s to n runes, the last one an ellipsis, so a
// multi-byte character is never cut in half.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
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
	return since(ts) + " ago"
}

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

func inspectCmd(c *clients) *cobra.Command {
	return &cobra.Command{
		Use:   "inspect ID|NAME",
		Short: "Show a container as JSON: state, pid, exit code, image id and config, mount id, layer paths, timestamps",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := c.Containers.Get(cmd.Context(), connect.NewRequest(&cairnv1.GetRequest{Id: args[0]}))
			if err != nil {
				return err
			}
			out, err := protojson.MarshalOptions{Multiline: true, UseProtoNames: true}.Marshal(res.Msg.Container)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), string(out))
			return nil
		},
	}
}
