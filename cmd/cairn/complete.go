package main

import (
	"context"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/internal/apiclient"
)

// Shell completion (`cairn completion bash|zsh|fish|powershell`, cobra's)
// completes container, image, network and volume names by asking the
// daemon. A completion
// never waits long for it: a daemon that is not there completes nothing.
const completionTimeout = 2 * time.Second

// Which containers a command's arguments complete to.
var (
	anyContainer     = func(cairnv1.ContainerState) bool { return true }
	runningContainer = func(s cairnv1.ContainerState) bool { return s == cairnv1.ContainerState_CONTAINER_STATE_RUNNING }
	pausedContainer  = func(s cairnv1.ContainerState) bool { return s == cairnv1.ContainerState_CONTAINER_STATE_PAUSED }
	startable        = func(s cairnv1.ContainerState) bool {
		return s == cairnv1.ContainerState_CONTAINER_STATE_CREATED || s == cairnv1.ContainerState_CONTAINER_STATE_STOPPED
	}
)

// addCompletions gives the commands that take containers or images their
// argument completion.
func addCompletions(root *cobra.Command, c *clients) {
	containerArgs := map[string]func(cairnv1.ContainerState) bool{
		"cairn start": startable, "cairn stop": runningContainer, "cairn kill": runningContainer,
		"cairn pause": runningContainer, "cairn restart": anyContainer, "cairn unpause": pausedContainer,
		"cairn rm": anyContainer, "cairn inspect": anyContainer, "cairn wait": anyContainer,
		"cairn logs": anyContainer, "cairn history": anyContainer,
	}
	imageArgs := map[string]bool{ // true: every argument is an image; false: only the first
		"cairn image inspect": true, "cairn image rm": true, "cairn image history": false,
		"cairn image tag": false, "cairn run": false, "cairn create": false,
	}
	namedArgs := map[string]func(context.Context) []string{ // every argument completes to these names
		"cairn network rm": c.networkNames, "cairn network inspect": c.networkNames,
		"cairn volume rm": c.volumeNames, "cairn volume inspect": c.volumeNames,
	}
	var walk func(*cobra.Command)
	walk = func(cmd *cobra.Command) {
		if names, ok := namedArgs[cmd.CommandPath()]; ok {
			cmd.ValidArgsFunction = func(cmd *cobra.Command, _ []string, prefix string) ([]string, cobra.ShellCompDirective) {
				return withPrefix(names(cmd.Context()), prefix), cobra.ShellCompDirectiveNoFileComp
			}
		}
		if cmd.Flags().Lookup("network") != nil {
			_ = cmd.RegisterFlagCompletionFunc("network", func(cmd *cobra.Command, _ []string, prefix string) ([]string, cobra.ShellCompDirective) {
				return withPrefix(append([]string{"bridge", "host", "none"}, c.networkNames(cmd.Context())...), prefix), cobra.ShellCompDirectiveNoFileComp
			})
		}
		if want, ok := containerArgs[cmd.CommandPath()]; ok {
			cmd.ValidArgsFunction = func(cmd *cobra.Command, args []string, prefix string) ([]string, cobra.ShellCompDirective) {
				return c.completeContainers(cmd.Context(), prefix, want), cobra.ShellCompDirectiveNoFileComp
			}
		}
		if every, ok := imageArgs[cmd.CommandPath()]; ok {
			cmd.ValidArgsFunction = func(cmd *cobra.Command, args []string, prefix string) ([]string, cobra.ShellCompDirective) {
				if !every && len(args) > 0 {
					return nil, cobra.ShellCompDirectiveDefault
				}
				return c.completeImages(cmd.Context(), prefix), cobra.ShellCompDirectiveNoFileComp
			}
		}
		for _, sub := range cmd.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// completionClients are the API clients for a completion, which runs
// without the root command's PersistentPreRunE.
func (c *clients) completionClients(ctx context.Context) (apiclient.Clients, context.Context, context.CancelFunc) {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, completionTimeout)
	return apiclient.New(c.socket), ctx, cancel
}

func (c *clients) completeContainers(ctx context.Context, prefix string, want func(cairnv1.ContainerState) bool) []string {
	api, ctx, cancel := c.completionClients(ctx)
	defer cancel()
	res, err := api.Containers.List(ctx, connect.NewRequest(&cairnv1.ListRequest{All: true}))
	if err != nil {
		return nil
	}
	var out []string
	for _, ctr := range res.Msg.Containers {
		if !want(ctr.State) {
			continue
		}
		for _, candidate := range []string{ctr.Name, shortID(ctr.Id)} {
			if candidate != "" && strings.HasPrefix(candidate, prefix) {
				out = append(out, candidate)
				break
			}
		}
	}
	return out
}

func (c *clients) completeImages(ctx context.Context, prefix string) []string {
	api, ctx, cancel := c.completionClients(ctx)
	defer cancel()
	res, err := api.Images.List(ctx, connect.NewRequest(&cairnv1.ImageServiceListRequest{}))
	if err != nil {
		return nil
	}
	var out []string
	for _, img := range res.Msg.Images {
		for _, n := range img.Names {
			if f := familiar(n); strings.HasPrefix(f, prefix) {
				out = append(out, f)
			}
		}
	}
	return out
}

func (c *clients) networkNames(ctx context.Context) []string {
	api, ctx, cancel := c.completionClients(ctx)
	defer cancel()
	res, err := api.Networks.ListNetworks(ctx, connect.NewRequest(&cairnv1.ListNetworksRequest{}))
	if err != nil {
		return nil
	}
	var out []string
	for _, n := range res.Msg.Networks {
		out = append(out, n.Name)
	}
	return out
}

func (c *clients) volumeNames(ctx context.Context) []string {
	api, ctx, cancel := c.completionClients(ctx)
	defer cancel()
	res, err := api.Volumes.List(ctx, connect.NewRequest(&cairnv1.VolumeServiceListRequest{}))
	if err != nil {
		return nil
	}
	var out []string
	for _, v := range res.Msg.Volumes {
		out = append(out, v.Name)
	}
	return out
}

func withPrefix(names []string, prefix string) []string {
	var out []string
	for _, n := range names {
		if strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	return out
}
