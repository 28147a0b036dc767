// Command cairn is the Cairn CLI, a Connect client of cairnd's API. It is
// also the per-container shim (`cairn shim`, started by cairnd) and the
// container init stub libcontainer re-executes (`cairn init`).
package main

import (
	"errors"
	"fmt"
	"os"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	"github.com/cairn-run/cairn/executor"
	"github.com/cairn-run/cairn/internal/apiclient"
	"github.com/cairn-run/cairn/internal/defaults"
)

// exitError makes the CLI exit with a container's exit code.
type exitError struct{ code int }

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
	err := newRoot().Execute()
	var exit exitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		os.Exit(exit.code)
	default:
		fmt.Fprintln(os.Stderr, "Error:", describe(err))
		os.Exit(1)
	}
}

// describe shows a Connect error as "<code>: <message>".
func describe(err error) string {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return fmt.Sprintf("%s: %s", ce.Code(), ce.Message())
	}
	return err.Error()
}

// clients are the API clients, built once the flags are parsed.
type clients struct {
	socket string
	apiclient.Clients
}

func newRoot() *cobra.Command {
	c := &clients{}
	root := &cobra.Command{
		Use:           "cairn",
		Short:         "Cairn CLI: run and inspect containers through cairnd",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRun: func(*cobra.Command, []string) {
			c.Clients = apiclient.New(c.socket)
		},
	}
	socket := defaults.Socket
	if env := os.Getenv("CAIRN_SOCKET"); env != "" {
		socket = env
	}
	root.PersistentFlags().StringVar(&c.socket, "socket", socket, "cairnd's API socket (env CAIRN_SOCKET)")
	root.AddCommand(
		createCmd(c), runCmd(c), startCmd(c), stopCmd(c), killCmd(c),
		pauseCmd(c), unpauseCmd(c), restartCmd(c), rmCmd(c),
		psCmd(c), inspectCmd(c), waitCmd(c), logsCmd(c), historyCmd(c),
		imageCmd(c), drillCmd(), journalCmd(),
	)
	return root
}
