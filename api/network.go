package api

import (
	"context"
	"fmt"
	"sort"

	"connectrpc.com/connect"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/internal/errdefs"
	"github.com/cairn-run/cairn/network"
	sm "github.com/cairn-run/cairn/statemachine"
)

// Networks is the port to the network manager the handlers use.
type Networks interface {
	// Validate checks a create's network settings and hostname, and that
	// its host ports are free; it changes nothing.
	Validate(n *sm.NetworkSettings, hostname string) error
	NetAttachment(id string) (sm.NetAttachView, bool)
	CreateNetwork(ctx context.Context, name, subnet, gateway string) (sm.NetworkDef, error)
	RemoveNetwork(ctx context.Context, name string) error
	Prune(ctx context.Context) ([]string, error)
	List() []network.Info
}

// Limits of a create's network fields.
const (
	maxPublish   = 1024
	maxNameLists = 64
)

// withNetwork fills req's network settings and hostname from m, with the
// daemon's default mode for an empty one, and checks them: a create that
// fails here has written nothing.
func withNetwork(req *sm.CreateRequest, m *cairnv1.CreateRequest, nets Networks, defaultMode string) error {
	if len(m.Publish) > maxPublish || len(m.Dns) > maxNameLists || len(m.DnsSearch) > maxNameLists || len(m.AddHost) > maxPublish {
		return fmt.Errorf("too many ports, DNS servers, search domains or extra hosts: %w", errdefs.ErrInvalidArgument)
	}
	mode := m.Network
	if mode == "" {
		mode = defaultMode
	}
	if mode == "" {
		mode = network.ModeNone
	}
	n := &sm.NetworkSettings{Mode: mode, PublishAll: m.PublishAll, DNS: m.Dns, DNSSearch: m.DnsSearch, ExtraHosts: m.AddHost}
	for _, p := range m.Publish {
		pm, err := network.ParsePort(p)
		if err != nil {
			return err
		}
		n.Ports = append(n.Ports, pm)
	}
	req.Hostname = m.Hostname
	if nets == nil {
		if mode != network.ModeNone || len(n.Ports) > 0 {
			return fmt.Errorf("networking is not configured in this daemon: %w", errdefs.ErrFailedPrecondition)
		}
		return network.ValidateSettings(n, m.Hostname, func(string) bool { return false })
	}
	if err := nets.Validate(n, m.Hostname); err != nil {
		return err
	}
	if mode == network.ModeNone && len(n.DNS)+len(n.DNSSearch)+len(n.ExtraHosts) == 0 {
		return nil // as before networking: no settings recorded
	}
	req.Network = n
	return nil
}

func portsToProto(ps []sm.PortMapping) []*cairnv1.PortMapping {
	out := make([]*cairnv1.PortMapping, 0, len(ps))
	for _, p := range ps {
		out = append(out, &cairnv1.PortMapping{HostIp: p.HostIP, HostPort: int32(p.HostPort), ContainerPort: int32(p.ContainerPort), Protocol: p.Protocol})
	}
	return out
}

func attachmentToProto(v sm.NetAttachView) *cairnv1.NetworkAttachment {
	out := &cairnv1.NetworkAttachment{Network: v.Network, Netns: v.NetNS, Ports: portsToProto(v.Requested)}
	if r := v.Result; r != nil {
		out.IpAddress, out.MacAddress, out.Gateway, out.Ports = r.IP, r.MAC, r.Gateway, portsToProto(r.Ports)
	}
	if v.Pending != nil {
		out.PendingEvent = string(v.Pending.Event)
	}
	return out
}

func networkSettingsToProto(out *cairnv1.ContainerConfig, n *sm.NetworkSettings) {
	if n == nil {
		return
	}
	out.NetworkMode, out.Ports, out.PublishAll = n.Mode, portsToProto(n.Ports), n.PublishAll
	out.Dns, out.DnsSearch, out.ExtraHosts = n.DNS, n.DNSSearch, n.ExtraHosts
}

// NetworkServer serves NetworkService.
type NetworkServer struct {
	Networks Networks
}

func networkToProto(i network.Info) *cairnv1.Network {
	out := &cairnv1.Network{Name: i.Name, Subnet: i.Subnet, Gateway: i.Gateway, Bridge: i.Bridge, CreatedAt: timestamp(i.CreatedAt)}
	for _, a := range i.Attached {
		out.Containers = append(out.Containers, a.ID)
	}
	sort.Strings(out.Containers)
	return out
}

func (s *NetworkServer) find(name string) (network.Info, error) {
	if err := checkRef(name); err != nil {
		return network.Info{}, err
	}
	for _, i := range s.Networks.List() {
		if i.Name == name {
			return i, nil
		}
	}
	return network.Info{}, fmt.Errorf("network %s not found: %w", errdefs.Quote(name), errdefs.ErrNotFound)
}

func (s *NetworkServer) CreateNetwork(ctx context.Context, req *connect.Request[cairnv1.CreateNetworkRequest]) (*connect.Response[cairnv1.CreateNetworkResponse], error) {
	m := req.Msg
	if len(m.Subnet) > 64 || len(m.Gateway) > 64 {
		return nil, toConnect(fmt.Errorf("subnet or gateway too long: %w", errdefs.ErrInvalidArgument))
	}
	if _, err := s.Networks.CreateNetwork(ctx, m.Name, m.Subnet, m.Gateway); err != nil {
		return nil, toConnect(err)
	}
	i, err := s.find(m.Name)
	if err != nil {
		return nil, toConnect(err)
	}
	return connect.NewResponse(&cairnv1.CreateNetworkResponse{Network: networkToProto(i)}), nil
}

func (s *NetworkServer) ListNetworks(ctx context.Context, req *connect.Request[cairnv1.ListNetworksRequest]) (*connect.Response[cairnv1.ListNetworksResponse], error) {
	out := &cairnv1.ListNetworksResponse{}
	for _, i := range s.Networks.List() {
		out.Networks = append(out.Networks, networkToProto(i))
	}
	return connect.NewResponse(out), nil
}

func (s *NetworkServer) InspectNetwork(ctx context.Context, req *connect.Request[cairnv1.InspectNetworkRequest]) (*connect.Response[cairnv1.InspectNetworkResponse], error) {
	i, err := s.find(req.Msg.Name)
	if err != nil {
		return nil, toConnect(err)
	}
	return connect.NewResponse(&cairnv1.InspectNetworkResponse{Network: networkToProto(i)}), nil
}

func (s *NetworkServer) RemoveNetwork(ctx context.Context, req *connect.Request[cairnv1.RemoveNetworkRequest]) (*connect.Response[cairnv1.RemoveNetworkResponse], error) {
	if err := checkRef(req.Msg.Name); err != nil {
		return nil, toConnect(err)
	}
	if err := s.Networks.RemoveNetwork(ctx, req.Msg.Name); err != nil {
		return nil, toConnect(err)
	}
	return connect.NewResponse(&cairnv1.RemoveNetworkResponse{}), nil
}

func (s *NetworkServer) PruneNetworks(ctx context.Context, req *connect.Request[cairnv1.PruneNetworksRequest]) (*connect.Response[cairnv1.PruneNetworksResponse], error) {
	removed, err := s.Networks.Prune(ctx)
	if err != nil {
		return nil, toConnect(err)
	}
	return connect.NewResponse(&cairnv1.PruneNetworksResponse{Removed: removed}), nil
}
