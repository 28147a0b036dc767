package daemon

import (
	"context"
	"fmt"

	"github.com/cairn-run/cairn/internal/crashpoint"
	"github.com/cairn-run/cairn/network"
	sm "github.com/cairn-run/cairn/statemachine"
)

// NetworkConfig is cairnd's networking configuration.
type NetworkConfig struct {
	// DefaultMode is the network of a create that names none: "bridge",
	// "none", "host" or a user network. The zero value is "none"; cairnd's
	// flag defaults to "bridge".
	DefaultMode string
	// RunDir holds the namespace files, the CNI cache and the IPAM state:
	// a tmpfs (default /run/cairn/net).
	RunDir string
	// Bridge and Subnet define the default bridge network (default cairn0,
	// 10.88.0.0/16).
	Bridge, Subnet string
	// PluginDirs are searched for the CNI plugins (default /opt/cni/bin).
	PluginDirs []string
}

// openNetwork builds the network manager on the journal.
func (d *Daemon) openNetwork() error {
	c := d.cfg.Network
	if c.RunDir == "" {
		c.RunDir = "/run/cairn/net"
	}
	m, err := network.New(network.Config{RunDir: c.RunDir, PluginDirs: c.PluginDirs, DefaultBridge: c.Bridge, DefaultSubnet: c.Subnet}, d.journal, crashpoint.Hit, d.log)
	if err != nil {
		return err
	}
	m.RootfsOf = d.runningRootfs
	d.net = m
	return nil
}

// runningRootfs is the mounted root filesystem of a container.
func (d *Daemon) runningRootfs(id string) (string, bool) {
	c, ok := d.journal.Container(id)
	if !ok || c.MountID == "" {
		return "", false
	}
	if mounted, err := d.layers.Mounted(c.MountID); err != nil || !mounted {
		return "", false
	}
	info, err := d.layers.MountInfo(c.MountID)
	if err != nil {
		return "", false
	}
	return info.Rootfs, true
}

// recoverNetwork decides every attachment once the containers are
// recovered, then garbage-collects CNI state against the live ones.
func (d *Daemon) recoverNetwork(rebooted bool) {
	kept, released, err := d.net.Recover(context.Background(), rebooted)
	d.log.Info("network recovered", "kept", kept, "released", released, "rebooted", rebooted)
	if err != nil {
		d.log.Error("network recovery left work for the next start", "error", err)
	}
}

// joinNetwork attaches a container about to start and writes its
// /etc/resolv.conf and /etc/hosts into its mounted rootfs.
func joinNetwork(ctx context.Context, net *network.Manager, c sm.Container, rootfs string) (network.Join, error) {
	join, err := net.Ensure(ctx, c)
	if err != nil {
		return join, fmt.Errorf("network of %s: %w", c.ID, err)
	}
	if join.ResolvConf != nil {
		if err := network.WriteEtc(rootfs, "resolv.conf", join.ResolvConf); err != nil {
			return join, fmt.Errorf("resolv.conf of %s: %w", c.ID, err)
		}
	}
	if join.Hosts != nil {
		if err := network.WriteEtc(rootfs, "hosts", join.Hosts); err != nil {
			return join, fmt.Errorf("hosts of %s: %w", c.ID, err)
		}
	}
	return join, nil
}

// netPort adapts the manager to the API's Networks.
type netPort struct{ m *network.Manager }

func (p netPort) Validate(n *sm.NetworkSettings, hostname string) error {
	return p.m.Validate(n, hostname)
}
func (p netPort) NetAttachment(id string) (sm.NetAttachView, bool) {
	return p.m.Attachment(id)
}
func (p netPort) CreateNetwork(ctx context.Context, name, subnet, gateway string) (sm.NetworkDef, error) {
	return p.m.CreateNetwork(ctx, name, subnet, gateway)
}
func (p netPort) RemoveNetwork(ctx context.Context, name string) error {
	return p.m.RemoveNetwork(ctx, name)
}
func (p netPort) Prune(ctx context.Context) ([]string, error) { return p.m.Prune(ctx) }
func (p netPort) List() []network.Info                        { return p.m.List() }
