package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/timestamppb"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/internal/apiclient"
	"github.com/cairn-run/cairn/internal/errdefs"
)

func eventsCmd(c *clients) *cobra.Command {
	var since, until, format string
	var filters []string
	cmd := &cobra.Command{
		Use:   "events [--since SEQ|TIME] [--until SEQ|TIME] [--filter KEY=VALUE]... [--format json]",
		Short: "Stream the journal's events; resumes by itself across daemon restarts",
		Long: `events prints every journal record as an event: the past ones from --since,
then each new one as it happens, until --until or Ctrl-C. SEQ is a journal
sequence number (as printed), TIME an RFC 3339 time or a duration ago
(10m). When the daemon stops or restarts the stream resumes after the last
event printed: no event is missed or printed twice.

Filters: container=ID|NAME, image=REF, event=EVENT (create, start, stop,
exit, ...), type=container|image|network|volume|exec|sandbox. Values of one
key are alternatives; different keys must all match.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "text" && format != "json" {
				return usageErrorf("unknown --format %q: use text or json", format)
			}
			req := &cairnv1.WatchEventsRequest{}
			var err error
			if req.AfterSeq, req.Since, err = eventBound(since); err != nil {
				return fmt.Errorf("--since: %w", err)
			}
			if req.AfterSeq > 0 {
				req.AfterSeq-- // --since SEQ includes SEQ
			}
			if req.UntilSeq, req.Until, err = eventBound(until); err != nil {
				return fmt.Errorf("--until: %w", err)
			}
			for _, f := range filters {
				k, v, ok := strings.Cut(f, "=")
				if !ok {
					return usageErrorf("--filter %s: want KEY=VALUE", errdefs.Quote(f))
				}
				req.Filters = append(req.Filters, &cairnv1.EventFilter{Key: k, Value: v})
			}
			out := cmd.OutOrStdout()
			return apiclient.WatchEvents(cmd.Context(), c.Clients, req,
				func(ev *cairnv1.JournalRecord) error { return printRecord(out, ev, format) },
				func(after uint64, cause error) {
					fmt.Fprintf(os.Stderr, "cairn events: %s; resuming after seq %d\n", describe(cause), after)
				})
		},
	}
	f := cmd.Flags()
	f.StringVar(&since, "since", "", "start at this SEQ or TIME (default: the start of the journal)")
	f.StringVar(&until, "until", "", "stop after this SEQ or TIME (default: follow)")
	f.StringArrayVar(&filters, "filter", nil, "KEY=VALUE (container, image, event, type); repeatable")
	f.StringVar(&format, "format", "text", "text or json (one object per line)")
	return cmd
}

// eventBound reads a --since or --until: a sequence number, an RFC 3339
// time, or a duration before now.
func eventBound(v string) (uint64, *timestamppb.Timestamp, error) {
	if v == "" {
		return 0, nil, nil
	}
	if seq, err := strconv.ParseUint(v, 10, 64); err == nil {
		return seq, nil, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return 0, timestamppb.New(t), nil
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return 0, timestamppb.New(time.Now().Add(-d)), nil
	}
	return 0, nil, fmt.Errorf("%q is neither a sequence number, an RFC 3339 time nor a duration", v)
}
