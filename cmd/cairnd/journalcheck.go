package main

import (
	"github.com/spf13/cobra"

	"github.com/cairn-run/cairn/internal/defaults"
	"github.com/cairn-run/cairn/internal/journalcheck"
)

// journalCheckCmd is `cairnd journal-check`, what `cairn journal check`
// runs: the offline check of a stopped daemon's journal.
func journalCheckCmd() *cobra.Command {
	var root, salvage string
	cmd := &cobra.Command{
		Use:    "journal-check [--root DIR] [--salvage OUT]",
		Short:  "Check a stopped cairnd's journal offline (see `cairn journal check --help`)",
		Args:   cobra.NoArgs,
		Hidden: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return journalcheck.Check(cmd.OutOrStdout(), root, salvage)
		},
	}
	cmd.Flags().StringVar(&root, "root", defaults.Root, "cairnd's root directory")
	cmd.Flags().StringVar(&salvage, "salvage", "", "write what is readable of a damaged journal to this new file")
	return cmd
}
