package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/cairn-run/cairn/internal/defaults"
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
<root>/cairn.db.

The check runs in the cairnd binary (cairnd journal-check), found next to
cairn or on PATH.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cairnd, err := cairndBinary()
			if err != nil {
				return err
			}
			args := []string{"journal-check", "--root", root}
			if salvage != "" {
				args = append(args, "--salvage", salvage)
			}
			check := exec.CommandContext(cmd.Context(), cairnd, args...)
			check.Stdout, check.Stderr = cmd.OutOrStdout(), cmd.ErrOrStderr()
			err = check.Run()
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				return exitError{code: exit.ExitCode()} // cairnd said why
			}
			return err
		},
	}
	cmd.Flags().StringVar(&root, "root", defaults.Root, "cairnd's root directory")
	cmd.Flags().StringVar(&salvage, "salvage", "", "write what is readable of a damaged journal to this new file")
	return cmd
}

// cairndBinary is the cairnd next to this cairn, else the one on PATH.
func cairndBinary() (string, error) {
	if self, err := os.Executable(); err == nil {
		if candidate := filepath.Join(filepath.Dir(self), "cairnd"); isFile(candidate) {
			return candidate, nil
		}
	}
	if path, err := exec.LookPath("cairnd"); err == nil {
		return path, nil
	}
	return "", fmt.Errorf("cannot find cairnd (next to cairn or on PATH): it runs the journal check")
}

func isFile(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}
