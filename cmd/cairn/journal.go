package main

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairn-run/cairn/internal/defaults"
	"github.com/cairn-run/cairn/journal"
)

func journalCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "journal", Short: "Inspect cairnd's journal file offline"}
	cmd.AddCommand(journalCheckCmd())
	return cmd
}

func journalCheckCmd() *cobra.Command {
	var root string
	cmd := &cobra.Command{
		Use:   "check [--root DIR]",
		Short: "Check the journal of a stopped cairnd: bbolt integrity, and that the stored view is the fold of the journal",
		Long: `Checks <root>/cairn.db the way cairnd does before it serves: bbolt's page
integrity check, then a replay of every record compared with the stored
view. The file is opened read-only and never changed. It fails while a
cairnd holds the file.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := filepath.Join(root, "cairn.db")
			rep, err := journal.CheckFile(path, time.Second)
			if err != nil {
				return err
			}
			clean := "no (the last cairnd did not stop cleanly, or still runs)"
			if rep.CleanShutdown {
				clean = "yes"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "journal %s: ok: %d records, %d containers, clean shutdown: %s\n", path, rep.Records, rep.Containers, clean)
			return nil
		},
	}
	cmd.Flags().StringVar(&root, "root", defaults.Root, "cairnd's root directory")
	return cmd
}
