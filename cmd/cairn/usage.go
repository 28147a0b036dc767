package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// usageError is a command line the CLI could not make sense of: a bad
// flag, a wrong number of arguments, an unknown --format. It is printed
// with the command's help hint, as Docker does, and exits 125.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// markUsageErrors makes every flag and argument error of the tree under
// root a usageError.
func markUsageErrors(root *cobra.Command) {
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	var walk func(*cobra.Command)
	walk = func(cmd *cobra.Command) {
		if args := cmd.Args; args != nil {
			cmd.Args = func(cmd *cobra.Command, a []string) error {
				if err := args(cmd, a); err != nil {
					return usageError{err}
				}
				return nil
			}
		}
		for _, sub := range cmd.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// usageHint is what follows a usage error: where the command's help is.
func usageHint(cmd *cobra.Command, err error) (string, bool) {
	var u usageError
	if !errors.As(err, &u) && !strings.HasPrefix(err.Error(), "unknown command ") {
		return "", false
	}
	if cmd == nil {
		return "See 'cairn --help'.", true
	}
	return fmt.Sprintf("See '%s --help'.", cmd.CommandPath()), true
}
