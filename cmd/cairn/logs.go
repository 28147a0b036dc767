package main

import (
	"fmt"
	"io"
	"strconv"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/timestamppb"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
)

func logsCmd(c *clients) *cobra.Command {
	var follow, timestamps bool
	var tail, since, until string
	cmd := &cobra.Command{
		Use:   "logs [-f] [--tail N] [--since T] [--until T] [-t] ID|NAME",
		Short: "Print a container's output: its stdout to stdout, its stderr to stderr",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := &cairnv1.LogsRequest{Id: args[0], Follow: follow}
			if tail != "all" {
				n, err := strconv.ParseInt(tail, 10, 64)
				if err != nil || n < 0 {
					return fmt.Errorf("--tail %q: want a number of lines or all", tail)
				}
				req.Tail = &n
			}
			now := time.Now()
			var err error
			if req.Since, err = logTime("since", since, now); err != nil {
				return err
			}
			if req.Until, err = logTime("until", until, now); err != nil {
				return err
			}
			stream, err := c.Containers.Logs(cmd.Context(), connect.NewRequest(req))
			if err != nil {
				return err
			}
			defer stream.Close()
			out := newEntryWriter(cmd, timestamps)
			for stream.Receive() {
				if err := out.write(stream.Msg().Entries); err != nil {
					return err
				}
			}
			return stream.Err()
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep streaming until the container stops")
	cmd.Flags().BoolVarP(&timestamps, "timestamps", "t", false, "start every line with the time it was written")
	cmd.Flags().StringVarP(&tail, "tail", "n", "all", "only the last N lines")
	cmd.Flags().StringVar(&since, "since", "", "only output written since T: RFC 3339 (2026-12-01T10:00:00Z), or a duration before now (10m)")
	cmd.Flags().StringVar(&until, "until", "", "only output written before T (as --since)")
	return cmd
}

// logTime reads --since and --until: RFC 3339, or a duration before now.
func logTime(flag, s string, now time.Time) (*timestamppb.Timestamp, error) {
	if s == "" {
		return nil, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return timestamppb.New(t), nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return timestamppb.New(now.Add(-d)), nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return timestamppb.New(time.Unix(n, 0)), nil
	}
	return nil, fmt.Errorf("--%s %q: want RFC 3339 (2026-12-01T10:00:00Z), a duration (10m) or Unix seconds", flag, s)
}

// entryWriter writes log entries, each stream to its own writer; with
// timestamps, every line starts with the time of its first entry.
type entryWriter struct {
	stdout, stderr io.Writer
	timestamps     bool
	midLine        map[cairnv1.LogStream]bool
}

func newEntryWriter(cmd *cobra.Command, timestamps bool) *entryWriter {
	return &entryWriter{stdout: cmd.OutOrStdout(), stderr: cmd.ErrOrStderr(), timestamps: timestamps, midLine: map[cairnv1.LogStream]bool{}}
}

func (w *entryWriter) write(entries []*cairnv1.LogEntry) error {
	for _, e := range entries {
		out := w.stdout
		if e.Stream == cairnv1.LogStream_LOG_STREAM_STDERR {
			out = w.stderr
		}
		if w.timestamps && !w.midLine[e.Stream] && e.Time != nil {
			if _, err := io.WriteString(out, e.Time.AsTime().UTC().Format(time.RFC3339Nano)+" "); err != nil {
				return err
			}
		}
		if _, err := out.Write(e.Data); err != nil {
			return err
		}
		w.midLine[e.Stream] = len(e.Data) > 0 && e.Data[len(e.Data)-1] != '\n'
	}
	return nil
}
