package main

import (
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairn-run/cairn/internal/defaults"
	"github.com/cairn-run/cairn/internal/schema"
	"github.com/cairn-run/cairn/internal/storecheck"
	"github.com/cairn-run/cairn/journal"
)

func journalCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "journal", Short: "Inspect cairnd's journal file offline"}
	cmd.AddCommand(journalCheckCmd())
	return cmd
}

func journalCheckCmd() *cobra.Command {
	var root, salvage string
	cmd := &cobra.Command{
		Use:   "check [--root DIR] [--salvage OUT]",
		Short: "Check the journal of a stopped cairnd: bbolt integrity, and that the stored view is the fold of the journal",
		Long: `Checks <root>/cairn.db exactly the way cairnd does before it serves: bbolt's
meta pages against the file size, bbolt's page integrity check, the schema
version and buckets, a replay of every record compared with the stored view
and names, and the layer store's invariants. A file of an older schema is
checked as it will be after its migration. The file is opened read-only and
never changed. It fails while a cairnd holds the file.

With --salvage OUT it writes a new journal file at OUT (which must not exist)
from the readable records of a damaged one, folded again from scratch:
records that no longer fold are dropped and listed; the layer store's records
are copied where readable and made consistent. The damaged file is not
touched. OUT passes this check; to use it, stop cairnd and put it in place of
<root>/cairn.db.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := filepath.Join(root, "cairn.db")
			if salvage != "" {
				return salvageJournal(cmd.OutOrStdout(), path, salvage)
			}
			rep, err := journal.CheckFile(path, time.Second, storecheck.All()...)
			if err != nil {
				return err
			}
			clean := "no (the last cairnd did not stop cleanly, or still runs)"
			if rep.CleanShutdown {
				clean = "yes"
			}
			layout := fmt.Sprintf("schema %d", rep.Schema)
			if rep.Schema != schema.Version {
				layout += fmt.Sprintf(" (migrated to %d at the next start)", schema.Version)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "journal %s: ok: %s, %d records, %d containers, %d image views, clean shutdown: %s\n", path, layout, rep.Records, rep.Containers, rep.Images, clean)
			return nil
		},
	}
	cmd.Flags().StringVar(&root, "root", defaults.Root, "cairnd's root directory")
	cmd.Flags().StringVar(&salvage, "salvage", "", "write what is readable of a damaged journal to this new file")
	return cmd
}

func salvageJournal(w io.Writer, path, out string) error {
	rep, err := journal.Salvage(path, out, journal.Options{LockTimeout: time.Second, Checks: storecheck.All()})
	for _, u := range rep.Unreadable {
		fmt.Fprintf(w, "unreadable: %s\n", u)
	}
	for _, d := range rep.Dropped {
		fmt.Fprintf(w, "dropped record %d: %s\n", d.Seq, d.Reason)
	}
	for _, r := range rep.StoreRepairs {
		fmt.Fprintf(w, "repaired %s\n", r)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "salvaged %s into %s: kept %d records, dropped %d (%d unreadable parts); %d containers, %d image views; images %d, layers %d, mounts %d records\n",
		path, out, rep.Kept, len(rep.Dropped), len(rep.Unreadable), rep.Containers, rep.Images,
		rep.StoreRecords["images"], rep.StoreRecords["layers"], rep.StoreRecords["mounts"])
	fmt.Fprintf(w, "%s passes the journal check; to use it, stop cairnd and move it to %s\n", out, path)
	return nil
}
