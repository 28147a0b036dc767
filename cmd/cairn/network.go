package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/reflect/protoreflect"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
)

// netFlags are create's and run's networking flags, passed to the daemon
// as given: it parses and checks them.
type netFlags struct {
	network    string
	publish    []string
	publishAll bool
	dns        []string
	dnsSearch  []string
	addHost    []string
	hostname   string
}

func (f *netFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.network, "network", "", "network: bridge (the default bridge), none, host or a user network's name (default: the daemon's, bridge)")
	fl.StringArrayVarP(&f.publish, "publish", "p", nil, "publish a port: [HOSTIP:][HOSTPORT:]CTRPORT[/tcp|/udp]")
	fl.BoolVarP(&f.publishAll, "publish-all", "P", false, "publish the image's exposed ports on free host ports")
	fl.StringArrayVar(&f.dns, "dns", nil, "DNS server for the container's resolv.conf")
	fl.StringArrayVar(&f.dnsSearch, "dns-search", nil, "DNS search domain (\".\" for none)")
	fl.StringArrayVar(&f.addHost, "add-host", nil, "add NAME:IP to the container's /etc/hosts")
	fl.StringVar(&f.hostname, "hostname", "", "the container's hostname (default: the id's first 12 characters)")
}

func (f *netFlags) apply(req *cairnv1.CreateRequest) {
	req.Network, req.Publish, req.PublishAll = f.network, f.publish, f.publishAll
	req.Dns, req.DnsSearch, req.AddHost, req.Hostname = f.dns, f.dnsSearch, f.addHost, f.hostname
}

func networkCmd(c *clients) *cobra.Command {
	cmd := &cobra.Command{Use: "network", Short: "Manage networks: create, ls, inspect, rm, prune"}
	var subnet, gateway string
	create := &cobra.Command{
		Use:   "create [--subnet CIDR] [--gateway IP] NAME",
		Short: "Create a user network: containers on it reach each other by name",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := c.Networks.CreateNetwork(cmd.Context(), connect.NewRequest(&cairnv1.CreateNetworkRequest{Name: args[0], Subnet: subnet, Gateway: gateway}))
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), res.Msg.Network.Name)
			return nil
		},
	}
	create.Flags().StringVar(&subnet, "subnet", "", "IPv4 subnet (default: a free /24 of 10.89.0.0/16)")
	create.Flags().StringVar(&gateway, "gateway", "", "gateway address (default: the subnet's first)")
	var lsFormat string
	var lsQuiet bool
	ls := &cobra.Command{
		Use:     "ls [-q] [--format table|json|TEMPLATE]",
		Aliases: []string{"list"},
		Short:   "List networks",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out, err := parseOutput(lsFormat)
			if err != nil {
				return err
			}
			res, err := c.Networks.ListNetworks(cmd.Context(), connect.NewRequest(&cairnv1.ListNetworksRequest{}))
			if err != nil {
				return err
			}
			if lsQuiet {
				for _, n := range res.Msg.Networks {
					fmt.Fprintln(cmd.OutOrStdout(), n.Name)
				}
				return nil
			}
			items := make([]item, len(res.Msg.Networks))
			for i, n := range res.Msg.Networks {
				items[i] = item{msg: n, aliases: map[string]any{"Name": n.Name, "Subnet": n.Subnet, "Gateway": n.Gateway, "Driver": "bridge"}}
			}
			return out.print(cmd.OutOrStdout(), items, func(w io.Writer) error {
				tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tSUBNET\tGATEWAY\tBRIDGE\tCONTAINERS")
				for _, n := range res.Msg.Networks {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", n.Name, n.Subnet, n.Gateway, n.Bridge, len(n.Containers))
				}
				return tw.Flush()
			})
		},
	}
	ls.Flags().BoolVarP(&lsQuiet, "quiet", "q", false, "print only the names")
	ls.Flags().StringVar(&lsFormat, "format", "table", formatHelp)
	var inspectFormat string
	inspect := &cobra.Command{
		Use:   "inspect [--format json|TEMPLATE] NAME...",
		Short: "Show networks as a JSON array",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return inspectEach(cmd, args, inspectFormat, func(name string) (protoreflect.ProtoMessage, error) {
				res, err := c.Networks.InspectNetwork(cmd.Context(), connect.NewRequest(&cairnv1.InspectNetworkRequest{Name: name}))
				if err != nil {
					return nil, err
				}
				return res.Msg.Network, nil
			})
		},
	}
	inspect.Flags().StringVar(&inspectFormat, "format", "json", "json (an indented array) or a Go template for each network")
	rm := &cobra.Command{
		Use:   "rm NAME...",
		Short: "Remove user networks no container is attached to",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, name := range args {
				if _, err := c.Networks.RemoveNetwork(cmd.Context(), connect.NewRequest(&cairnv1.RemoveNetworkRequest{Name: name})); err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), name)
			}
			return nil
		},
	}
	prune := &cobra.Command{
		Use:   "prune",
		Short: "Remove every user network no container is attached to",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := c.Networks.PruneNetworks(cmd.Context(), connect.NewRequest(&cairnv1.PruneNetworksRequest{}))
			if err != nil {
				return err
			}
			for _, name := range res.Msg.Removed {
				fmt.Fprintln(cmd.OutOrStdout(), name)
			}
			return nil
		},
	}
	cmd.AddCommand(create, ls, inspect, rm, prune)
	return cmd
}

func portCmd(c *clients) *cobra.Command {
	return &cobra.Command{
		Use:   "port ID|NAME",
		Short: "List a container's published ports: CTRPORT/PROTO -> HOSTIP:HOSTPORT",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := c.Containers.Get(cmd.Context(), connect.NewRequest(&cairnv1.GetRequest{Id: args[0]}))
			if err != nil {
				return err
			}
			n := res.Msg.Container.Network
			if n == nil {
				return nil
			}
			for _, p := range n.Ports {
				ip := p.HostIp
				if ip == "" {
					ip = "0.0.0.0"
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%d/%s -> %s:%d\n", p.ContainerPort, p.Protocol, ip, p.HostPort)
			}
			return nil
		},
	}
}
