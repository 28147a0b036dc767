package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
)

func historyCmd(c *clients) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "history [ID|NAME]",
		Short: "Print the journal's records in order",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "text" && format != "json" {
				return usageErrorf("unknown --format %q: use text or json", format)
			}
			req := &cairnv1.HistoryRequest{}
			if len(args) == 1 {
				req.Id = args[0]
			}
			stream, err := c.Journal.History(cmd.Context(), connect.NewRequest(req))
			if err != nil {
				return err
			}
			defer stream.Close()
			out := cmd.OutOrStdout()
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

func printRecord(w io.Writer, r *cairnv1.JournalRecord, format string) error {
	kind := strings.TrimPrefix(r.Kind.String(), "RECORD_KIND_")
	if format == "json" {
		return writeJSONLine(json.NewEncoder(w), r)
	}
	from := r.FromState
	if from == "" {
		from = "-"
	}
	who := r.ContainerId
	if r.Object == "image" {
		// 12 columns, as a container id: "img " and 8 hex digits of the id.
		who = "img " + strings.TrimPrefix(r.ObjectId, "sha256:")
	}
	if r.Object == "volume" {
		who = "vol " + r.ObjectId
	}
	line := fmt.Sprintf("%6d  %s  %-10s  %.12s  %-12s  %s -> %s", r.Seq, r.Time.AsTime().Local().Format("2006-01-02 15:04:05.000"),
		kind, who, r.Event, from, r.ToState)
	if r.IntentSeq != 0 {
		line += fmt.Sprintf("  (intent %d)", r.IntentSeq)
	}
	if r.Error != "" {
		label := "error"
		if r.Kind == cairnv1.RecordKind_RECORD_KIND_RECONCILED {
			label = "reason"
		}
		line += "  " + label + ": " + r.Error
	}
	if r.DetailsJson != "" {
		line += "  " + r.DetailsJson
	}
	_, err := fmt.Fprintln(w, line)
	return err
}
