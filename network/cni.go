package network

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	sm "github.com/cairn-run/cairn/statemachine"
)

// cniVersion is the CNI spec version of the configs Cairn writes (libcni
// v1.3.1, plugins v1.10.0): 1.1.0 has GC.
const cniVersion = "1.1.0"

// IfName is the container's interface on its network.
const IfName = "eth0"

// cni runs the reference plugins through libcni, with its cache and the
// host-local IPAM state under the (tmpfs) run directory.
type cni struct {
	conf    *libcni.CNIConfig
	ipamDir string
}

func newCNI(pluginDirs []string, runDir string) *cni {
	return &cni{
		conf:    libcni.NewCNIConfigWithCacheDir(pluginDirs, filepath.Join(runDir, "cni-cache"), nil),
		ipamDir: filepath.Join(runDir, "ipam"),
	}
}

// confList is the CNI config of a network, generated from its definition:
// a bridge that is the subnet's gateway and masquerades outbound traffic,
// host-local addresses, and portmap for published ports (kernel rules: the
// daemon is not in the data path).
func (c *cni) confList(def sm.NetworkDef) (*libcni.NetworkConfigList, error) {
	conf := map[string]any{
		"cniVersion": cniVersion,
		"name":       def.Name,
		"plugins": []any{
			map[string]any{
				"type": "bridge", "bridge": def.Bridge, "isGateway": true, "ipMasq": true, "hairpinMode": true,
				"ipam": map[string]any{
					"type":    "host-local",
					"ranges":  [][]map[string]string{{{"subnet": def.Subnet, "gateway": def.Gateway}}},
					"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
					"dataDir": c.ipamDir,
				},
			},
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}, "snat": true},
		},
	}
	data, err := json.Marshal(conf)
	if err != nil {
		return nil, err
	}
	return libcni.ConfListFromBytes(data)
}

func runtimeConf(id, netns string, ports []sm.PortMapping) *libcni.RuntimeConf {
	rt := &libcni.RuntimeConf{ContainerID: id, NetNS: netns, IfName: IfName}
	if len(ports) > 0 {
		pm := make([]map[string]any, 0, len(ports))
		for _, p := range ports {
			m := map[string]any{"hostPort": p.HostPort, "containerPort": p.ContainerPort, "protocol": p.Protocol}
			if p.HostIP != "" {
				m["hostIP"] = p.HostIP
			}
			pm = append(pm, m)
		}
		rt.CapabilityArgs = map[string]any{"portMappings": pm}
	}
	return rt
}

// add is CNI ADD: the container's interface, address and port rules.
func (c *cni) add(ctx context.Context, def sm.NetworkDef, id, netns string, ports []sm.PortMapping) (*sm.NetAttachResult, error) {
	list, err := c.confList(def)
	if err != nil {
		return nil, err
	}
	raw, err := c.conf.AddNetworkList(ctx, list, runtimeConf(id, netns, ports))
	if err != nil {
		return nil, fmt.Errorf("CNI ADD on %s: %w", def.Name, err)
	}
	res, err := current.NewResultFromResult(raw)
	if err != nil {
		return nil, fmt.Errorf("CNI ADD result: %w", err)
	}
	out := &sm.NetAttachResult{Ports: ports}
	for _, ip := range res.IPs {
		if ip.Address.IP.To4() != nil {
			out.IP = ip.Address.IP.String()
			if ip.Gateway != nil {
				out.Gateway = ip.Gateway.String()
			}
			if ip.Interface != nil && *ip.Interface < len(res.Interfaces) {
				out.MAC = res.Interfaces[*ip.Interface].Mac
			}
			break
		}
	}
	if out.IP == "" {
		return nil, errors.New("CNI ADD gave no IPv4 address")
	}
	return out, nil
}

// del is CNI DEL, with the config cached by the ADD when there is one (so
// a DEL after a restart uses what the ADD used); it may repeat.
func (c *cni) del(ctx context.Context, def sm.NetworkDef, id, netns string, ports []sm.PortMapping) error {
	list, err := c.confList(def)
	if err != nil {
		return err
	}
	rt := runtimeConf(id, netns, ports)
	if cached, cachedRT, err := c.conf.GetNetworkListCachedConfig(list, rt); err == nil && cached != nil {
		if l, err := libcni.ConfListFromBytes(cached); err == nil {
			list = l
			if cachedRT != nil {
				cachedRT.NetNS = netns
				rt = cachedRT
			}
		}
	}
	if mounted, err := NetNSMounted(netns); err != nil || !mounted {
		// Gone (a reboot), or a file a crash left before its bind mount:
		// the plugins release what is not in a namespace.
		rt.NetNS = ""
	}
	if err := c.conf.DelNetworkList(ctx, list, rt); err != nil {
		return fmt.Errorf("CNI DEL on %s: %w", def.Name, err)
	}
	return nil
}

// gc is CNI GC: every cached attachment of the network not in live is
// deleted, and the plugins free what they hold for no live attachment.
func (c *cni) gc(ctx context.Context, def sm.NetworkDef, live []string) error {
	list, err := c.confList(def)
	if err != nil {
		return err
	}
	valid := make([]types.GCAttachment, 0, len(live))
	for _, id := range live {
		valid = append(valid, types.GCAttachment{ContainerID: id, IfName: IfName})
	}
	return c.conf.GCNetworkList(ctx, list, &libcni.GCArgs{ValidAttachments: valid})
}

// gatewayOf is the first host address of subnet.
func gatewayOf(subnet *net.IPNet) net.IP {
	ip := subnet.IP.To4()
	gw := make(net.IP, len(ip))
	copy(gw, ip)
	gw[len(gw)-1]++
	return gw
}
