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
		Use:   "run [-d] [--rm] [--name N] IMAGE CMD [ARG...]",
		Short: "Create and start a container; attached, stream its output and exit with its code",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := c.Containers.Create(cmd.Context(), connect.NewRequest(f.request(args)))
			if err != nil {
				return err
			}
			id := res.Msg.Container.Id
			if detach {
				if _, err := c.Containers.Start(cmd.Context(), connect.NewRequest(&cairnv1.StartRequest{Id: id})); err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), id)
				return nil
			}
			return attachAndStart(cmd, c, id)
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVarP(&detach, "detach", "d", false, "start in the background and print the id")
	cmd.Flags().BoolVar(&f.rm, "rm", false, "remove the container when it stops")
	return cmd
}

// attachAndStart follows the container's log before starting it, so no
// output is missed, forwards SIGINT and SIGTERM to it, and exits with its
// exit code.
func attachAndStart(cmd *cobra.Command, c *clients, id string) error {
	ctx, cancel := context.WithCancel(cmd.Context())
	defer cancel()
	stream, err := c.Containers.Logs(ctx, connect.NewRequest(&cairnv1.LogsRequest{Id: id, Follow: true}))
	if err != nil {
		return err
	}
	defer stream.Close()
	if !stream.Receive() || !stream.Msg().Attached {
		return fmt.Errorf("attach to %s: %w", id, errors.Join(stream.Err(), errors.New("no attach confirmation")))
	}
	if _, err := c.Containers.Start(ctx, connect.NewRequest(&cairnv1.StartRequest{Id: id})); err != nil {
		return err
	}
	stopForwarding := forwardSignals(ctx, c, id)
	defer stopForwarding()
	out := cmd.OutOrStdout()
	for stream.Receive() {
		msg := stream.Msg()
		if len(msg.Data) > 0 {
			if _, err := out.Write(msg.Data); err != nil {
				return err
			}
		}
		if msg.Exit != nil {
			if msg.Exit.ExitCode == nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "exit code unknown: %s\n", msg.Exit.ExitReason)
				return exitError{code: unknownExitStatus}
			}
			if code := int(*msg.Exit.ExitCode); code != 0 {
				return exitError{code: code}
			}
			return nil
		}
	}
	if err := stream.Err(); err != nil {
		return err
	}
	return errors.New("log stream ended before the container exited")
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
