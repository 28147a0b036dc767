package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"connectrpc.com/connect"
	units "github.com/docker/go-units"
	"github.com/spf13/cobra"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
)

func statsCmd(c *clients) *cobra.Command {
	var noStream bool
	var format string
	cmd := &cobra.Command{
		Use:   "stats [--no-stream] [--format json] [ID|NAME...]",
		Short: "Show the containers' CPU, memory, pids, block and network I/O, read from their cgroups",
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "table" && format != "json" {
				return fmt.Errorf("unknown --format %q: use table or json", format)
			}
			stream, err := c.Resources.Stats(cmd.Context(), connect.NewRequest(&cairnv1.StatsRequest{Ids: args, NoStream: noStream}))
			if err != nil {
				return err
			}
			defer stream.Close()
			out := cmd.OutOrStdout()
			for stream.Receive() {
				if format == "json" {
					err = statsJSON(out, stream.Msg().Stats)
				} else {
					if !noStream {
						fmt.Fprint(out, "\033[2J\033[H") // clear the screen, as docker stats does
					}
					err = statsTable(out, stream.Msg().Stats)
				}
				if err != nil {
					return err
				}
			}
			return stream.Err()
		},
	}
	cmd.Flags().BoolVar(&noStream, "no-stream", false, "print one reading and exit")
	cmd.Flags().StringVar(&format, "format", "table", "table or json (one object per line)")
	return cmd
}

// statsRow is one container's reading in --format json.
type statsRow struct {
	ID               string  `json:"id"`
	Name             string  `json:"name"`
	CPUPercent       float64 `json:"cpu_percent"`
	CPUSeconds       float64 `json:"cpu_seconds"`
	MemoryUsage      uint64  `json:"memory_usage_bytes"`
	MemoryWorkingSet uint64  `json:"memory_working_set_bytes"`
	MemoryLimit      uint64  `json:"memory_limit_bytes"`
	Pids             uint64  `json:"pids"`
	PidsLimit        uint64  `json:"pids_limit"`
	BlockRead        uint64  `json:"block_read_bytes"`
	BlockWrite       uint64  `json:"block_write_bytes"`
	NetRx            uint64  `json:"net_rx_bytes"`
	NetTx            uint64  `json:"net_tx_bytes"`
	OOMEvents        uint64  `json:"oom_events"`
}

func statsJSON(w io.Writer, ss []*cairnv1.ContainerStats) error {
	enc := json.NewEncoder(w)
	for _, s := range ss {
		row := statsRow{ID: s.Id, Name: s.Name, CPUPercent: s.CpuPercent, CPUSeconds: float64(s.CpuUsageNs) / 1e9,
			MemoryUsage: s.MemoryUsageBytes, MemoryWorkingSet: s.MemoryWorkingSetBytes, MemoryLimit: s.MemoryLimitBytes,
			Pids: s.Pids, PidsLimit: s.PidsLimit, BlockRead: s.BlockReadBytes, BlockWrite: s.BlockWriteBytes,
			NetRx: s.NetRxBytes, NetTx: s.NetTxBytes, OOMEvents: s.OomEvents}
		if err := enc.Encode(row); err != nil {
			return err
		}
	}
	return nil
}

func statsTable(w io.Writer, ss []*cairnv1.ContainerStats) error {
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "CONTAINER ID\tNAME\tCPU %\tMEM USAGE / LIMIT\tMEM %\tNET I/O\tBLOCK I/O\tPIDS")
	size := func(n uint64) string { return units.BytesSize(float64(n)) }
	for _, s := range ss {
		limit, memPct := "-", "-"
		if s.MemoryLimitBytes > 0 {
			limit = size(s.MemoryLimitBytes)
			memPct = fmt.Sprintf("%.2f%%", float64(s.MemoryUsageBytes)/float64(s.MemoryLimitBytes)*100)
		}
		name := s.Name
		if name == "" {
			name = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%.2f%%\t%s / %s\t%s\t%s / %s\t%s / %s\t%d\n", s.Id[:min(12, len(s.Id))], name, s.CpuPercent,
			size(s.MemoryUsageBytes), limit, memPct, size(s.NetRxBytes), size(s.NetTxBytes),
			size(s.BlockReadBytes), size(s.BlockWriteBytes), s.Pids)
	}
	return tw.Flush()
}
