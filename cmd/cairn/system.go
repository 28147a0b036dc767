package main

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"connectrpc.com/connect"
	units "github.com/docker/go-units"
	"github.com/spf13/cobra"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/internal/buildinfo"
)

func systemCmd(c *clients) *cobra.Command {
	cmd := &cobra.Command{Use: "system", Short: "The daemon as a whole: info, disk usage, prune"}
	info := infoCmd(c)
	info.Use = "info"
	cmd.AddCommand(info, systemDfCmd(c), systemPruneCmd(c))
	return cmd
}

func infoCmd(c *clients) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "info",
		Short: "Show the daemon: root, journal, containers per state, images, cgroup version, kernel, last recovery",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out, err := parseOutput(format)
			if err != nil {
				return err
			}
			res, err := c.System.Info(cmd.Context(), connect.NewRequest(&cairnv1.InfoRequest{}))
			if err != nil {
				return err
			}
			return out.print(cmd.OutOrStdout(), []item{{msg: res.Msg}}, func(w io.Writer) error { return printInfo(w, res.Msg) })
		},
	}
	cmd.Flags().StringVar(&format, "format", "table", "text (table), json, or a Go template")
	return cmd
}

func printInfo(w io.Writer, in *cairnv1.InfoResponse) error {
	var b strings.Builder
	b.WriteString("Client:\n" + buildinfo.Read().Lines("  "))
	fmt.Fprintf(&b, "Server:\n  API version: %s\n%s", in.ApiVersion, buildInfoOf(in.Daemon).Lines("  "))
	fmt.Fprintf(&b, "  Root: %s\n", in.Root)
	fmt.Fprintf(&b, "  Journal: %s (%s, %d records)\n", in.JournalPath, humanSize(in.JournalBytes), in.JournalRecords)
	var total int64
	for _, n := range in.Containers {
		total += n
	}
	fmt.Fprintf(&b, "  Containers: %d\n", total)
	for _, state := range sortedKeys(in.Containers, []string{"created", "running", "paused", "stopped"}) {
		fmt.Fprintf(&b, "   %s: %d\n", titleCase(state), in.Containers[state])
	}
	fmt.Fprintf(&b, "  Images: %d\n  Layers: %d (%s)\n  Shims: %d\n", in.Images, in.Layers, humanSize(in.LayerBytes), in.Shims)
	fmt.Fprintf(&b, "  Cgroup version: %s\n  Kernel version: %s\n  Operating system: %s\n  Architecture: %s\n  CPUs: %d\n  Total memory: %s\n",
		in.CgroupVersion, in.KernelVersion, in.OperatingSystem, in.Architecture, in.Cpus, units.BytesSize(float64(in.MemoryBytes)))
	if in.StartedAt != nil {
		fmt.Fprintf(&b, "  Started: %s (%s)\n", in.StartedAt.AsTime().Local().Format("2006-01-02 15:04:05 -0700"), ago(in.StartedAt))
	}
	if in.Recovering {
		b.WriteString("  Recovery: running\n")
	} else if r := in.LastRecovery; r != nil {
		fmt.Fprintf(&b, "  Last recovery: %s, clean shutdown before it: %s, rebooted: %s\n",
			r.Duration.AsDuration(), yesNo(r.CleanShutdown), yesNo(r.Rebooted))
		fmt.Fprintf(&b, "   Containers: %d, image operations decided: %d, unknown exits: %d\n", r.Containers, r.Images, r.UnknownExits)
		if len(r.Actions) > 0 {
			var parts []string
			for _, a := range sortedKeys(r.Actions, nil) {
				parts = append(parts, fmt.Sprintf("%s=%d", a, r.Actions[a]))
			}
			fmt.Fprintf(&b, "   Actions: %s\n", strings.Join(parts, " "))
		}
		if r.Error != "" {
			fmt.Fprintf(&b, "   Left for the next start: %s\n", r.Error)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// sortedKeys lists m's keys: those of first in that order, then the rest
// sorted.
func sortedKeys(m map[string]int64, first []string) []string {
	var out, rest []string
	for _, k := range first {
		if _, ok := m[k]; ok {
			out = append(out, k)
		}
	}
	for k := range m {
		if !contains(first, k) {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	return append(out, rest...)
}

func titleCase(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func systemDfCmd(c *clients) *cobra.Command {
	var verbose bool
	var format string
	cmd := &cobra.Command{
		Use:   "df [-v]",
		Short: "Show the space images, containers' writable layers and volumes take, and what a prune would reclaim",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out, err := parseOutput(format)
			if err != nil {
				return err
			}
			res, err := c.System.DiskUsage(cmd.Context(), connect.NewRequest(&cairnv1.DiskUsageRequest{Verbose: verbose}))
			if err != nil {
				return err
			}
			return out.print(cmd.OutOrStdout(), []item{{msg: res.Msg}}, func(w io.Writer) error { return printDiskUsage(w, res.Msg, verbose) })
		},
	}
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "also list every image and container")
	cmd.Flags().StringVar(&format, "format", "table", "table, json, or a Go template")
	return cmd
}

func printDiskUsage(w io.Writer, du *cairnv1.DiskUsageResponse, verbose bool) error {
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "TYPE\tTOTAL\tACTIVE\tSIZE\tRECLAIMABLE")
	for _, row := range []struct {
		name string
		s    *cairnv1.DiskUsageSummary
	}{{"Images", du.Images}, {"Containers", du.Containers}, {"Local Volumes", du.Volumes}} {
		s := row.s
		pct := int64(0)
		if s.GetSizeBytes() > 0 {
			pct = s.GetReclaimableBytes() * 100 / s.GetSizeBytes()
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s (%d%%)\n", row.name, s.GetTotal(), s.GetActive(), humanSize(s.GetSizeBytes()), humanSize(s.GetReclaimableBytes()), pct)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if !verbose {
		return nil
	}
	fmt.Fprintln(w, "\nImages space usage:")
	tw = tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "REPOSITORY\tTAG\tIMAGE ID\tSIZE\tUNIQUE SIZE\tCONTAINERS")
	for _, img := range du.ImageDetails {
		names := img.Names
		if len(names) == 0 {
			names = []string{""}
		}
		for _, n := range names {
			repo, tag := "<none>", "<none>"
			if n != "" {
				repo, tag = splitName(n)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\n", repo, tag, shortID(img.Id), humanSize(img.SizeBytes), humanSize(img.UniqueBytes), img.Containers)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nLocal Volumes space usage:")
	tw = tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "VOLUME NAME\tLINKS\tSIZE")
	for _, v := range du.VolumeDetails {
		fmt.Fprintf(tw, "%s\t%d\t%s\n", v.Name, v.Containers, humanSize(v.SizeBytes))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nContainers space usage:")
	tw = tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "CONTAINER ID\tIMAGE\tSTATE\tSIZE\tNAME")
	for _, ctr := range du.ContainerDetails {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", shortID(ctr.Id), familiar(ctr.Image), stateName(ctr.State), humanSize(ctr.SizeBytes), ctr.Name)
	}
	return tw.Flush()
}

func systemPruneCmd(c *clients) *cobra.Command {
	var all, force, volumes bool
	cmd := &cobra.Command{
		Use:   "prune [-a] [-f]",
		Short: "Remove stopped and created containers and dangling images (-a: every image no container uses)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w := cmd.OutOrStdout()
			if !force {
				what := "all dangling images"
				if all {
					what = "all images without at least one container"
				}
				vols := ""
				if volumes {
					vols = "  - all anonymous volumes not used by at least one container\n"
				}
				fmt.Fprintf(w, "WARNING! This will remove:\n  - all stopped containers\n%s  - %s\n\nAre you sure you want to continue? [y/N] ", vols, what)
				answer, _ := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
				if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
					return nil
				}
			}
			return c.systemPrune(cmd, w, all, volumes)
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "remove every image no container uses, not only dangling ones")
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not ask for confirmation")
	cmd.Flags().BoolVar(&volumes, "volumes", false, "also remove anonymous volumes no container uses")
	return cmd
}

// systemPrune removes the containers that are not running or paused, then
// prunes images, each removal journaled by the daemon like any other. A
// container that starts meanwhile is kept. The space reclaimed is the
// difference of two disk usage reports.
func (c *clients) systemPrune(cmd *cobra.Command, w io.Writer, all, volumes bool) error {
	ctx := cmd.Context()
	before, err := c.System.DiskUsage(ctx, connect.NewRequest(&cairnv1.DiskUsageRequest{}))
	if err != nil {
		return err
	}
	list, err := c.Containers.List(ctx, connect.NewRequest(&cairnv1.ListRequest{All: true}))
	if err != nil {
		return err
	}
	var removed []string
	for _, ctr := range list.Msg.Containers {
		if ctr.State != cairnv1.ContainerState_CONTAINER_STATE_STOPPED && ctr.State != cairnv1.ContainerState_CONTAINER_STATE_CREATED {
			continue
		}
		_, err := c.Containers.Remove(ctx, connect.NewRequest(&cairnv1.RemoveRequest{Id: ctr.Id}))
		switch connect.CodeOf(err) {
		case connect.CodeNotFound, connect.CodeFailedPrecondition: // gone, or started meanwhile
			continue
		}
		if err != nil {
			return err
		}
		removed = append(removed, ctr.Id)
	}
	if len(removed) > 0 {
		fmt.Fprintln(w, "Deleted Containers:")
		for _, id := range removed {
			fmt.Fprintln(w, id)
		}
		fmt.Fprintln(w)
	}
	if volumes {
		res, err := c.Volumes.Prune(ctx, connect.NewRequest(&cairnv1.VolumeServicePruneRequest{}))
		if err != nil {
			return err
		}
		if len(res.Msg.Removed) > 0 {
			fmt.Fprintln(w, "Deleted Volumes:")
			for _, name := range res.Msg.Removed {
				fmt.Fprintln(w, name)
			}
			fmt.Fprintln(w)
		}
	}
	pruned, err := c.Images.Prune(ctx, connect.NewRequest(&cairnv1.ImageServicePruneRequest{All: all}))
	if err != nil {
		return err
	}
	if len(pruned.Msg.Deleted) > 0 {
		fmt.Fprintln(w, "Deleted Images:")
		for _, id := range pruned.Msg.Deleted {
			fmt.Fprintln(w, "deleted:", id)
		}
		fmt.Fprintln(w)
	}
	after, err := c.System.DiskUsage(ctx, connect.NewRequest(&cairnv1.DiskUsageRequest{}))
	if err != nil {
		return err
	}
	used := func(d *cairnv1.DiskUsageResponse) int64 {
		return d.Images.GetSizeBytes() + d.Containers.GetSizeBytes() + d.Volumes.GetSizeBytes()
	}
	fmt.Fprintf(w, "Total reclaimed space: %s\n", humanSize(max(0, used(before.Msg)-used(after.Msg))))
	return nil
}
