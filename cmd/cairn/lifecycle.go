package main

import (
	"context"
	"fmt"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
)

// createFlags are shared by create and run.
type createFlags struct {
	name       string
	env        []string
	rm         bool
	entrypoint string
	workdir    string
	user       string
	net        netFlags
	limits     limitFlags
	mounts     []*cairnv1.Mount
	restart    string
	cmd        *cobra.Command
	stdio      stdioFlags
}

func (f *createFlags) register(cmd *cobra.Command) {
	f.cmd = cmd
	cmd.Flags().StringVar(&f.name, "name", "", "name the container")
	cmd.Flags().StringArrayVarP(&f.env, "env", "e", nil, "set an environment variable (KEY=VALUE), over the image's")
	cmd.Flags().StringVar(&f.entrypoint, "entrypoint", "", "replace the image's entrypoint (\"\" clears it); the image's CMD is then not used")
	cmd.Flags().StringVarP(&f.workdir, "workdir", "w", "", "working directory inside the container (absolute; created if missing)")
	cmd.Flags().StringVarP(&f.user, "user", "u", "", "user to run as: name, uid, uid:gid or name:group, looked up in the image")
	f.net.register(cmd)
	f.stdio.register(cmd)
	f.limits.register(cmd)
	cmd.Flags().VarP(&mountsValue{mounts: &f.mounts, parse: parseVolumeFlag, kind: "NAME:/path[:ro]"}, "volume", "v",
		"mount a volume (made if missing) or a host path (which must exist): NAME:/path[:ro], /host/path:/path[:ro], or /path for an anonymous volume")
	cmd.Flags().Var(&mountsValue{mounts: &f.mounts, parse: parseMountFlag, kind: "type=...,dst=..."}, "mount",
		"a mount: type=volume|bind|tmpfs,src=...,dst=...[,readonly][,tmpfs-size=64m]")
	cmd.Flags().StringVar(&f.restart, "restart", "", restartFlagHelp)
	// Everything after the image belongs to the container's command.
	cmd.Flags().SetInterspersed(false)
}

func (f *createFlags) request(args []string) *cairnv1.CreateRequest {
	req := &cairnv1.CreateRequest{Name: f.name, Image: args[0], Command: args[1:], Env: f.env, AutoRemove: f.rm,
		WorkingDir: f.workdir, User: f.user, Mounts: f.mounts, RestartPolicy: f.restart}
	f.net.apply(req)
	f.stdio.apply(req)
	f.limits.apply(req)
	if f.cmd != nil && f.cmd.Flags().Changed("entrypoint") {
		req.OverrideEntrypoint = true
		if f.entrypoint != "" {
			req.Entrypoint = []string{f.entrypoint}
		}
	}
	return req
}

func createCmd(c *clients) *cobra.Command {
	f := &createFlags{}
	cmd := &cobra.Command{
		Use:   "create [--name N] [-e K=V] [-w DIR] [-u USER] [--entrypoint CMD] IMAGE [CMD [ARG...]]",
		Short: "Create a container and print its id; with no command, the image's entrypoint and cmd run",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := c.Containers.Create(cmd.Context(), connect.NewRequest(f.request(args)))
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), res.Msg.Container.Id)
			return nil
		},
	}
	f.register(cmd)
	return cmd
}

// eachRef runs verb on every reference given and prints it, like docker;
// it reports the first failure after trying them all.
func eachRef(cmd *cobra.Command, refs []string, verb func(ctx context.Context, ref string) error) error {
	var first error
	for _, ref := range refs {
		if err := verb(cmd.Context(), ref); err != nil {
			fmt.Fprintf(cmd.ErrOrStderr(), "Error: %s: %s\n", ref, describe(err))
			if first == nil {
				first = err
			}
			continue
		}
		fmt.Fprintln(cmd.OutOrStdout(), ref)
	}
	if first != nil {
		return exitError{code: exitCodeOf(first)}
	}
	return nil
}

func simpleCmd(use, short string, verb func(ctx context.Context, ref string) error) *cobra.Command {
	return &cobra.Command{
		Use:   use + " ID|NAME [ID|NAME...]",
		Short: short,
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return eachRef(cmd, args, verb)
		},
	}
}

func startCmd(c *clients) *cobra.Command {
	return simpleCmd("start", "Start created or stopped containers", func(ctx context.Context, ref string) error {
		_, err := c.Containers.Start(ctx, connect.NewRequest(&cairnv1.StartRequest{Id: ref}))
		return err
	})
}

func pauseCmd(c *clients) *cobra.Command {
	return simpleCmd("pause", "Freeze every process of running containers", func(ctx context.Context, ref string) error {
		_, err := c.Containers.Pause(ctx, connect.NewRequest(&cairnv1.PauseRequest{Id: ref}))
		return err
	})
}

func unpauseCmd(c *clients) *cobra.Command {
	return simpleCmd("unpause", "Thaw paused containers", func(ctx context.Context, ref string) error {
		_, err := c.Containers.Unpause(ctx, connect.NewRequest(&cairnv1.UnpauseRequest{Id: ref}))
		return err
	})
}

// timeoutFlag is -t/--time of stop and restart; unset means the daemon's default.
func timeoutFlag(cmd *cobra.Command) func() *int32 {
	var seconds int32
	cmd.Flags().Int32VarP(&seconds, "time", "t", 10, "seconds to wait after SIGTERM before SIGKILL")
	return func() *int32 {
		if !cmd.Flags().Changed("time") {
			return nil
		}
		return &seconds
	}
}

func stopCmd(c *clients) *cobra.Command {
	var timeout func() *int32
	cmd := simpleCmd("stop [-t SECONDS]", "Stop containers: SIGTERM, grace period, SIGKILL", func(ctx context.Context, ref string) error {
		_, err := c.Containers.Stop(ctx, connect.NewRequest(&cairnv1.StopRequest{Id: ref, TimeoutSeconds: timeout()}))
		return err
	})
	timeout = timeoutFlag(cmd)
	return cmd
}

func restartCmd(c *clients) *cobra.Command {
	var timeout func() *int32
	cmd := simpleCmd("restart [-t SECONDS]", "Restart containers, keeping their writable layer", func(ctx context.Context, ref string) error {
		_, err := c.Containers.Restart(ctx, connect.NewRequest(&cairnv1.RestartRequest{Id: ref, TimeoutSeconds: timeout()}))
		return err
	})
	timeout = timeoutFlag(cmd)
	return cmd
}

func killCmd(c *clients) *cobra.Command {
	var signal string
	cmd := simpleCmd("kill [-s SIGNAL]", "Send a signal to running containers", func(ctx context.Context, ref string) error {
		_, err := c.Containers.Kill(ctx, connect.NewRequest(&cairnv1.KillRequest{Id: ref, Signal: signal}))
		return err
	})
	cmd.Flags().StringVarP(&signal, "signal", "s", "KILL", "signal name or number")
	return cmd
}

func rmCmd(c *clients) *cobra.Command {
	var force, volumes bool
	cmd := simpleCmd("rm [-f] [-v]", "Remove containers and their writable layers", func(ctx context.Context, ref string) error {
		_, err := c.Containers.Remove(ctx, connect.NewRequest(&cairnv1.RemoveRequest{Id: ref, Force: force, RemoveVolumes: volumes}))
		return err
	})
	cmd.Flags().BoolVarP(&force, "force", "f", false, "kill and remove running or paused containers")
	cmd.Flags().BoolVarP(&volumes, "volumes", "v", false, "remove the containers' anonymous volumes too (named volumes always stay)")
	return cmd
}

func waitCmd(c *clients) *cobra.Command {
	var condition string
	cmd := &cobra.Command{
		Use:   "wait [--condition not-running|next-exit|removed] ID|NAME",
		Short: "Wait until a container stops, print its exit code and exit with it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cond, err := waitCondition(condition)
			if err != nil {
				return err
			}
			res, err := c.Containers.Wait(cmd.Context(), connect.NewRequest(&cairnv1.WaitRequest{Id: args[0], Condition: cond}))
			if err != nil {
				return err
			}
			return reportExit(cmd, res.Msg)
		},
	}
	cmd.Flags().StringVar(&condition, "condition", "not-running", "not-running, next-exit (the next exit after the call) or removed")
	return cmd
}

// unknownExitStatus is what the CLI exits with when the daemon knows no
// exit code; the daemon's record says "unknown", never a number.
const unknownExitStatus = 255

// reportExit prints the exit code (or why it is unknown) and exits with it.
func reportExit(cmd *cobra.Command, w *cairnv1.WaitResponse) error {
	if w.ExitCode == nil && w.State == cairnv1.ContainerState_CONTAINER_STATE_CREATED {
		fmt.Fprintln(cmd.ErrOrStderr(), "container has not run yet")
		return nil
	}
	if w.ExitCode != nil {
		fmt.Fprintln(cmd.OutOrStdout(), *w.ExitCode)
	}
	return exitStatus(cmd, w)
}
