// Package journalcheck is the offline check and salvage of a stopped
// cairnd's journal file: what `cairn journal check` prints. It runs inside
// the cairnd binary (`cairnd journal-check`), which links the journal and
// every store's checks anyway; the cairn binary, which is also every
// container's shim, stays without them.
package journalcheck

import (
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/cairn-run/cairn/internal/schema"
	"github.com/cairn-run/cairn/internal/storecheck"
	"github.com/cairn-run/cairn/journal"
)

// Check checks <root>/cairn.db exactly as cairnd does before it serves and
// writes a one-line verdict to w; with salvage, it writes a new journal
// there from the readable records instead.
func Check(w io.Writer, root, salvage string) error {
	path := filepath.Join(root, "cairn.db")
	if salvage != "" {
		return salvageJournal(w, path, salvage)
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
	fmt.Fprintf(w, "journal %s: ok: %s, %d records, %d containers, %d image views, %d volumes, clean shutdown: %s\n", path, layout, rep.Records, rep.Containers, rep.Images, rep.Volumes, clean)
	return nil
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
	fmt.Fprintf(w, "salvaged %s into %s: kept %d records, dropped %d (%d unreadable parts); %d containers, %d image views, %d volumes; images %d, layers %d, mounts %d records\n",
		path, out, rep.Kept, len(rep.Dropped), len(rep.Unreadable), rep.Containers, rep.Images, rep.Volumes,
		rep.StoreRecords["images"], rep.StoreRecords["layers"], rep.StoreRecords["mounts"])
	fmt.Fprintf(w, "%s passes the journal check; to use it, stop cairnd and move it to %s\n", out, path)
	return nil
}
