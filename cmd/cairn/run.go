package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"golang.org/x/sys/unix"
)

func runCmd(c *clients) *cobra.Command {
	f := &createFlags{}
	var detach bool
	cmd := &cobra.Command{
		Use:   "run [-d] [-i] [-t] [--rm] [--name N] [-e K=V] [-w DIR] [-u USER] [--entrypoint CMD] IMAGE [CMD [ARG...]]",
		Short: "Create and start a container; attached, stream its output and exit with its code",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !detach && (f.stdio.interactive || f.stdio.tty) {
				return runInteractive(cmd, c, f.request(args), &f.stdio)
			}
			if !detach {
				return runAttached(cmd, c, f.request(args))
			}
			res, err := c.Containers.Create(cmd.Context(), connect.NewRequest(f.request(args)))
			if err != nil {
				return err
			}
			id := res.Msg.Container.Id
			if _, err := c.Containers.Start(cmd.Context(), connect.NewRequest(&cairnv1.StartRequest{Id: id})); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), id)
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVarP(&detach, "detach", "d", false, "start in the background and print the id")
	cmd.Flags().BoolVar(&f.rm, "rm", false, "remove the container when it stops")
	return cmd
}

// runAttached creates, starts and follows the container in one call,
// forwards SIGINT and SIGTERM to it, and exits with its exit code.
func runAttached(cmd *cobra.Command, c *clients, req *cairnv1.CreateRequest) error {
	ctx, cancel := context.WithCancel(cmd.Context())
	defer cancel()
	stream, err := c.Containers.Run(ctx, connect.NewRequest(&cairnv1.RunRequest{Create: req}))
	if err != nil {
		return err
	}
	defer stream.Close()
	out := newEntryWriter(cmd, false)
	for stream.Receive() {
		msg := stream.Msg()
		if msg.Container != nil {
			stopForwarding := forwardSignals(ctx, c, msg.Container.Id)
			defer stopForwarding()
		}
		if err := out.write(msg.Entries); err != nil {
			return err
		}
		if msg.Exit != nil {
			return exitStatus(cmd, msg.Exit)
		}
	}
	if err := stream.Err(); err != nil {
		return err
	}
	return errors.New("the daemon ended the run before the container exited")
}

// exitStatus turns a container's exit into the CLI's: the same code, or
// unknownExitStatus with the reason on stderr.
func exitStatus(cmd *cobra.Command, w *cairnv1.WaitResponse) error {
	if w.ExitCode == nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "exit code unknown: %s\n", w.ExitReason)
		return exitError{code: unknownExitStatus}
	}
	if *w.ExitCode != 0 {
		return exitError{code: int(*w.ExitCode)}
	}
	return nil
}

// forwardSignals passes SIGINT and SIGTERM on to the container, as
// `docker run` does.
func forwardSignals(ctx context.Context, c *clients, id string) func() {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case s := <-sigs:
				name := unix.SignalName(s.(syscall.Signal))
				_, _ = c.Containers.Kill(ctx, connect.NewRequest(&cairnv1.KillRequest{Id: id, Signal: name}))
			}
		}
	}()
	return func() {
		signal.Stop(sigs)
		close(done)
	}
}
