// Command cairn is the Cairn CLI, a Connect client of cairnd's API. It is
// also the per-container shim (`cairn shim`, started by cairnd) and the
// container init stub libcontainer re-executes (`cairn init`).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/executor"
	"github.com/cairn-run/cairn/internal/apiclient"
	"github.com/cairn-run/cairn/internal/defaults"
)

// exitError makes the CLI exit with a container's exit code.
type exitError struct{ code int }

// The CLI's own exit codes, as Docker's: a container's exit code otherwise.
const (
	exitCairnError    = 125 // the daemon or the CLI failed
	exitNotExecutable = 126 // the container's command cannot be executed
	exitNotFound      = 127 // the container's command does not exist
)

// exitCodeOf is what the CLI exits with after err.
func exitCodeOf(err error) int {
	var exit exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		return exit.code
	}
	switch apiclient.ReasonOf(err) {
	case cairnv1.ErrorReason_ERROR_REASON_COMMAND_NOT_FOUND:
		return exitNotFound
	case cairnv1.ErrorReason_ERROR_REASON_COMMAND_NOT_EXECUTABLE:
		return exitNotExecutable
	}
	return exitCairnError
}

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	executor.MaybeInit() // `cairn init` inside a new container; never returns there
	if len(os.Args) > 1 && os.Args[1] == "shim" {
		if err := executor.RunShim(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "cairn shim:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	c := &clients{}
	err := newRoot(c).Execute()
	if c.cancel != nil {
		c.cancel()
	}
	var exit exitError
	if err != nil && !errors.As(err, &exit) {
		fmt.Fprintln(os.Stderr, "Error:", describe(err))
	}
	os.Exit(exitCodeOf(err))
}

// describe shows a Connect error as "<code>: <message>", and a daemon that
// is not there as such.
func describe(err error) string {
	var unreachable *apiclient.UnreachableError
	if errors.As(err, &unreachable) {
		return unreachable.Error()
	}
	var ce *connect.Error
	if errors.As(err, &ce) {
		return fmt.Sprintf("%s: %s", ce.Code(), ce.Message())
	}
	return err.Error()
}

// clients are the API clients, built once the flags are parsed.
type clients struct {
	socket  string
	timeout time.Duration
	cancel  context.CancelFunc
	apiclient.Clients
}

func newRoot(c *clients) *cobra.Command {
	root := &cobra.Command{
		Use:           "cairn",
		Short:         "Cairn CLI: run and inspect containers through cairnd",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if c.timeout < 0 {
				return fmt.Errorf("--timeout %v is negative", c.timeout)
			}
			if c.timeout > 0 {
				ctx, cancel := context.WithTimeout(cmd.Context(), c.timeout)
				c.cancel = cancel
				cmd.SetContext(ctx)
			}
			c.Clients = apiclient.New(c.socket)
			return nil
		},
	}
	socket := defaults.Socket
	if env := os.Getenv("CAIRN_SOCKET"); env != "" {
		socket = env
	}
	root.PersistentFlags().StringVar(&c.socket, "socket", socket, "cairnd's API socket (env CAIRN_SOCKET)")
	root.PersistentFlags().DurationVar(&c.timeout, "timeout", 0, "give up on the daemon after this long, e.g. 30s (default: no deadline)")
	root.AddCommand(
		createCmd(c), runCmd(c), startCmd(c), stopCmd(c), killCmd(c),
		pauseCmd(c), unpauseCmd(c), restartCmd(c), rmCmd(c),
		psCmd(c), inspectCmd(c), waitCmd(c), logsCmd(c), historyCmd(c), eventsCmd(c),
		imageCmd(c), versionCmd(c), drillCmd(), journalCmd(),
		updateCmd(c),
	)
	return root
}
