package network

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/cairn-run/cairn/internal/errdefs"
	"github.com/cairn-run/cairn/recovery"
	sm "github.com/cairn-run/cairn/statemachine"
)

// Config says where the manager keeps its state and what the default
// bridge network is.
type Config struct {
	// RunDir holds netns/<container id> (the namespace files),
	// cni-cache/ and ipam/: a tmpfs, so a reboot clears namespaces, caches
	// and addresses together.
	RunDir string
	// PluginDirs are searched for the CNI plugins (default /opt/cni/bin).
	PluginDirs []string
	// DefaultBridge and DefaultSubnet define the "bridge" network
	// (default cairn0, 10.88.0.0/16).
	DefaultBridge string
	DefaultSubnet string
}

// Journal is the journal as the manager uses it.
type Journal interface {
	sm.NetJournal
	NetAttachments() []sm.NetAttachView
	Networks() []sm.NetworkView
	Container(id string) (sm.Container, bool)
	Containers() []sm.Container
}

// Manager owns containers' network namespaces and attachments and the user
// networks, each change a journaled transition of the network driver.
type Manager struct {
	cfg     Config
	j       Journal
	nets    *sm.Nets
	cni     *cni
	log     *slog.Logger
	bridge  sm.NetworkDef
	portsMu sync.Mutex // a port check and the attach that claims it
	// RootfsOf, if set, finds a running container's root filesystem, for
	// keeping the /etc/hosts of a user network's containers current.
	RootfsOf func(id string) (string, bool)
}

// New returns a manager; it creates the run directory's layout.
func New(cfg Config, j Journal, crash func(string), log *slog.Logger) (*Manager, error) {
	if cfg.RunDir == "" || !filepath.IsAbs(cfg.RunDir) {
		return nil, fmt.Errorf("network: run dir %q must be an absolute path: %w", cfg.RunDir, errdefs.ErrInvalidArgument)
	}
	if len(cfg.PluginDirs) == 0 {
		cfg.PluginDirs = []string{"/opt/cni/bin"}
	}
	if cfg.DefaultBridge == "" {
		cfg.DefaultBridge = "cairn0"
	}
	if cfg.DefaultSubnet == "" {
		cfg.DefaultSubnet = "10.88.0.0/16"
	}
	if log == nil {
		log = slog.Default()
	}
	_, subnet, err := net.ParseCIDR(cfg.DefaultSubnet)
	if err != nil || subnet.IP.To4() == nil {
		return nil, fmt.Errorf("network: default subnet %s: want an IPv4 CIDR: %w", errdefs.Quote(cfg.DefaultSubnet), errdefs.ErrInvalidArgument)
	}
	if len(cfg.DefaultBridge) > 15 {
		return nil, fmt.Errorf("network: bridge name %q is longer than 15 bytes: %w", cfg.DefaultBridge, errdefs.ErrInvalidArgument)
	}
	for _, d := range []string{cfg.RunDir, filepath.Join(cfg.RunDir, "netns")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("network: %w", err)
		}
	}
	m := &Manager{
		cfg: cfg, j: j, log: log, cni: newCNI(cfg.PluginDirs, cfg.RunDir),
		nets:   sm.NewNets(sm.NetDeps{Journal: j, Logger: log, CrashPoint: crash}),
		bridge: sm.NetworkDef{Name: ModeBridge, Subnet: subnet.String(), Gateway: gatewayOf(subnet).String(), Bridge: cfg.DefaultBridge},
	}
	return m, nil
}

// NetNSPath is the namespace file of container id.
func (m *Manager) NetNSPath(id string) string { return filepath.Join(m.cfg.RunDir, "netns", id) }

// Def returns the definition of network name ("bridge" or a user network).
func (m *Manager) Def(name string) (sm.NetworkDef, bool) {
	if name == ModeBridge {
		return m.bridge, true
	}
	v, ok := m.j.Network(name)
	if !ok || v.Def == nil || v.State != sm.StateDefined {
		return sm.NetworkDef{}, false
	}
	return *v.Def, true
}

// Validate checks a create's settings (see ValidateSettings), and that no
// other container already publishes one of its host ports or a host
// process holds it: a clear error before anything is written.
func (m *Manager) Validate(n *sm.NetworkSettings, hostname string) error {
	if err := ValidateSettings(n, hostname, func(name string) bool { _, ok := m.Def(name); return ok }); err != nil {
		return err
	}
	if n == nil {
		return nil
	}
	return m.checkPorts("", n.Ports)
}

// checkPorts refuses host ports another attachment publishes or a host
// socket holds. self is the container asking (its own attachment does not
// count).
func (m *Manager) checkPorts(self string, ports []sm.PortMapping) error {
	for _, p := range ports {
		if p.HostPort == 0 {
			continue
		}
		for _, a := range m.j.NetAttachments() {
			if a.ID == self {
				continue
			}
			claimed := a.Requested
			if a.Result != nil {
				claimed = a.Result.Ports
			}
			for _, q := range claimed {
				if overlaps(p, q) {
					return fmt.Errorf("port %s is already published by container %.12s: %w", portString(p), a.ID, errdefs.ErrAlreadyExists)
				}
			}
		}
		if err := probePort(p); err != nil {
			return fmt.Errorf("port %s is already in use on the host: %w", portString(p), errdefs.ErrAlreadyExists)
		}
	}
	return nil
}

func portString(p sm.PortMapping) string {
	ip := p.HostIP
	if ip == "" {
		ip = "0.0.0.0"
	}
	return fmt.Sprintf("%s:%d/%s", ip, p.HostPort, p.Protocol)
}

// probePort binds the host socket for a moment: in use is an error.
func probePort(p sm.PortMapping) error {
	addr := net.JoinHostPort(p.HostIP, strconv.Itoa(p.HostPort))
	if p.Protocol == "udp" {
		c, err := net.ListenPacket("udp4", addr)
		if err != nil {
			return err
		}
		return c.Close()
	}
	l, err := net.Listen("tcp4", addr)
	if err != nil {
		return err
	}
	return l.Close()
}

// Join is how a container's process joins its network.
type Join struct {
	NetNS string // the namespace file to enter
	Host  bool   // the host's namespace
	// ResolvConf and Hosts are the container's /etc files.
	ResolvConf, Hosts []byte
}

// Ensure makes sure container c is attached as its settings ask, before its
// process exists: with a bridge or user network, its namespace file and
// CNI attachment (an attach transition, unless one is already in place:
// a restarted container keeps its IP). It returns how to join.
func (m *Manager) Ensure(ctx context.Context, c sm.Container) (Join, error) {
	n := settingsOf(c)
	host, _ := os.ReadFile("/etc/resolv.conf")
	upstream, _ := os.ReadFile("/run/systemd/resolve/resolv.conf")
	switch n.Mode {
	case "", ModeNone:
		return Join{}, nil
	case ModeHost:
		hostsFile, _ := os.ReadFile("/etc/hosts")
		for _, h := range n.ExtraHosts {
			if name, addr, ok := strings.Cut(h, ":"); ok {
				hostsFile = fmt.Appendf(hostsFile, "%s\t%s\n", addr, name)
			}
		}
		return Join{Host: true, ResolvConf: ResolvConf(host, upstream, true, n.DNS, n.DNSSearch), Hosts: hostsFile}, nil
	}
	def, ok := m.Def(n.Mode)
	if !ok {
		return Join{}, fmt.Errorf("network %s not found: %w", errdefs.Quote(n.Mode), errdefs.ErrNotFound)
	}
	key := sm.ObjectKey(sm.ObjectNetAttach, c.ID)
	unlock, err := m.nets.Lock(ctx, key)
	if err != nil {
		return Join{}, err
	}
	defer unlock()
	if v, ok := m.j.NetAttachment(c.ID); ok && v.Pending == nil {
		mounted, err := NetNSMounted(v.NetNS)
		if err != nil {
			return Join{}, err
		}
		if mounted && v.Network == def.Name && v.Result != nil {
			return m.join(c, n, def, v), nil
		}
		// Stale (its namespace went with a reboot): start afresh.
		if err := m.detachLocked(ctx, v); err != nil {
			return Join{}, err
		}
	}
	if err := m.attachLocked(ctx, c, n, def); err != nil {
		return Join{}, err
	}
	v, _ := m.j.NetAttachment(c.ID)
	m.refreshPeers(def.Name, c.ID)
	return m.join(c, n, def, v), nil
}

func (m *Manager) join(c sm.Container, n sm.NetworkSettings, def sm.NetworkDef, v sm.NetAttachView) Join {
	host, _ := os.ReadFile("/etc/resolv.conf")
	upstream, _ := os.ReadFile("/run/systemd/resolve/resolv.conf")
	ip := ""
	if v.Result != nil {
		ip = v.Result.IP
	}
	return Join{NetNS: v.NetNS, ResolvConf: ResolvConf(host, upstream, false, n.DNS, n.DNSSearch), Hosts: HostsFile(c.Hostname, ip, m.peers(def.Name, c.ID), n.ExtraHosts)}
}

func settingsOf(c sm.Container) sm.NetworkSettings {
	if c.Config == nil || c.Config.Network == nil {
		return sm.NetworkSettings{}
	}
	return *c.Config.Network
}

// attachLocked runs the attach transition: intent (network, netns path,
// ports), namespace, CNI ADD, DONE with the result.
func (m *Manager) attachLocked(ctx context.Context, c sm.Container, n sm.NetworkSettings, def sm.NetworkDef) error {
	m.portsMu.Lock()
	defer m.portsMu.Unlock()
	ports := slices.Clone(n.Ports)
	if n.PublishAll && c.Config != nil {
		for _, e := range c.Config.ExposedPorts {
			port, proto, _ := strings.Cut(e, "/")
			if proto == "" {
				proto = "tcp"
			}
			cp, err := strconv.Atoi(port)
			if err != nil || cp < 1 || cp > 65535 || (proto != "tcp" && proto != "udp") {
				continue
			}
			ports = append(ports, sm.PortMapping{ContainerPort: cp, Protocol: proto})
		}
	}
	for i := range ports {
		if ports[i].HostPort == 0 {
			hp, err := m.freePort(ports[i], ports[:i])
			if err != nil {
				return err
			}
			ports[i].HostPort = hp
		}
	}
	if err := m.checkPorts(c.ID, ports); err != nil {
		return err
	}
	netns := m.NetNSPath(c.ID)
	var res *sm.NetAttachResult
	wctx := context.WithoutCancel(ctx)
	op := sm.NetOp{
		Event:  sm.EventAttach,
		ID:     c.ID,
		Attach: &sm.NetAttachArgs{Network: def.Name, NetNS: netns, IfName: IfName, Ports: ports},
		Do: map[string]func() error{
			sm.NetStepNetNS: func() error { return CreateNetNS(netns) },
			sm.NetStepAdd: func() (err error) {
				res, err = m.cni.add(wctx, def, c.ID, netns, ports)
				return err
			},
		},
		Undo: map[string]func() error{
			sm.NetStepNetNS: func() error { return RemoveNetNS(netns) },
			// Every ADD is followed by a DEL, a failed one too.
			sm.NetStepAdd: func() error { return m.cni.del(wctx, def, c.ID, netns, ports) },
		},
		Result: func() *sm.NetAttachResult { return res },
	}
	return m.nets.RunLocked(ctx, op)
}

// freePort picks a free host port for p (-P, or -p without a host port)
// from the ephemeral range, avoiding taken ones.
func (m *Manager) freePort(p sm.PortMapping, taken []sm.PortMapping) (int, error) {
	for range 200 {
		l, err := net.Listen("tcp4", net.JoinHostPort(p.HostIP, "0"))
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		q := p
		q.HostPort = port
		if slices.ContainsFunc(taken, func(t sm.PortMapping) bool { return overlaps(t, q) }) {
			continue
		}
		if m.checkPorts("", []sm.PortMapping{q}) == nil {
			return port, nil
		}
	}
	return 0, fmt.Errorf("no free host port for %d/%s: %w", p.ContainerPort, p.Protocol, errdefs.ErrResourceExhausted)
}

// Release detaches container id if it is attached: CNI DEL, namespace
// unmounted and deleted. Removing a container ends with it.
func (m *Manager) Release(ctx context.Context, id string) error {
	unlock, err := m.nets.Lock(ctx, sm.ObjectKey(sm.ObjectNetAttach, id))
	if err != nil {
		return err
	}
	defer unlock()
	v, ok := m.j.NetAttachment(id)
	if !ok {
		return nil
	}
	if v.Pending != nil {
		return fmt.Errorf("attachment of %s has an unfinished %s waiting for recovery: %w", id, v.Pending.Event, errdefs.ErrFailedPrecondition)
	}
	if err := m.detachLocked(ctx, v); err != nil {
		return err
	}
	m.refreshPeers(v.Network, id)
	return nil
}

func (m *Manager) detachLocked(ctx context.Context, v sm.NetAttachView) error {
	def, ok := m.Def(v.Network)
	if !ok {
		def = sm.NetworkDef{Name: v.Network, Bridge: "", Subnet: m.bridge.Subnet, Gateway: m.bridge.Gateway}
	}
	ports := v.Requested
	wctx := context.WithoutCancel(ctx)
	return m.nets.RunLocked(ctx, sm.NetOp{
		Event:  sm.EventDetach,
		ID:     v.ID,
		Attach: &sm.NetAttachArgs{Network: v.Network, NetNS: v.NetNS, IfName: v.IfName, Ports: ports},
		Do: map[string]func() error{
			sm.NetStepDel:     func() error { return m.cni.del(wctx, def, v.ID, v.NetNS, ports) },
			sm.NetStepRelease: func() error { return RemoveNetNS(v.NetNS) },
		},
	})
}

// peers are the other containers on a user network, by name and hostname.
func (m *Manager) peers(network, self string) []HostEntry {
	if network == ModeBridge {
		return nil // like Docker: no names on the default bridge
	}
	var out []HostEntry
	for _, a := range m.j.NetAttachments() {
		if a.ID == self || a.Network != network || a.Result == nil {
			continue
		}
		c, ok := m.j.Container(a.ID)
		if !ok {
			continue
		}
		var names []string
		if c.Name != "" {
			names = append(names, c.Name)
		}
		if c.Hostname != "" && c.Hostname != c.Name {
			names = append(names, c.Hostname)
		}
		out = append(out, HostEntry{IP: a.Result.IP, Names: names})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].IP < out[j].IP })
	return out
}

// refreshPeers rewrites the /etc/hosts of the running containers on a user
// network other than changed, so names follow arrivals and departures.
func (m *Manager) refreshPeers(network, changed string) {
	if network == ModeBridge || m.RootfsOf == nil {
		return
	}
	for _, a := range m.j.NetAttachments() {
		if a.ID == changed || a.Network != network || a.Result == nil {
			continue
		}
		c, ok := m.j.Container(a.ID)
		if !ok || !c.State.HasProcess() {
			continue
		}
		rootfs, ok := m.RootfsOf(a.ID)
		if !ok {
			continue
		}
		n := settingsOf(c)
		data := HostsFile(c.Hostname, a.Result.IP, m.peers(network, a.ID), n.ExtraHosts)
		if err := WriteEtc(rootfs, "hosts", data); err != nil {
			m.log.Warn("updating /etc/hosts", "container", a.ID, "error", err)
		}
	}
}

// WriteEtc writes /etc/<name> in a container's root filesystem in place
// (same inode), refusing a symlink on the way.
func WriteEtc(rootfs, name string, data []byte) error {
	etc := filepath.Join(rootfs, "etc")
	if fi, err := os.Lstat(etc); err != nil || !fi.IsDir() {
		if err == nil {
			err = fmt.Errorf("%s is not a directory", etc)
		}
		return err
	}
	p := filepath.Join(etc, name)
	if fi, err := os.Lstat(p); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		if err := os.Remove(p); err != nil {
			return err
		}
	}
	return os.WriteFile(p, data, 0o644)
}

// CreateNetwork defines a user network: its subnet (default: a free /24 of
// 10.89.0.0/16), gateway (default: the subnet's first address) and bridge.
func (m *Manager) CreateNetwork(ctx context.Context, name, subnet, gateway string) (sm.NetworkDef, error) {
	if err := ValidateNetworkName(name); err != nil {
		return sm.NetworkDef{}, err
	}
	unlock, err := m.nets.Lock(ctx, "network-create") // one create at a time: subnets do not overlap
	if err != nil {
		return sm.NetworkDef{}, err
	}
	defer unlock()
	if _, ok := m.Def(name); ok {
		return sm.NetworkDef{}, fmt.Errorf("network %q already exists: %w", name, errdefs.ErrAlreadyExists)
	}
	var sn *net.IPNet
	if subnet == "" {
		if sn, err = m.freeSubnet(); err != nil {
			return sm.NetworkDef{}, err
		}
	} else {
		_, sn, err = net.ParseCIDR(subnet)
		if err != nil || sn.IP.To4() == nil {
			return sm.NetworkDef{}, fmt.Errorf("subnet %s: want an IPv4 CIDR: %w", errdefs.Quote(subnet), errdefs.ErrInvalidArgument)
		}
		if ones, _ := sn.Mask.Size(); ones > 30 {
			return sm.NetworkDef{}, fmt.Errorf("subnet %s is too small: %w", sn, errdefs.ErrInvalidArgument)
		}
		if other, taken := m.subnetTaken(sn); taken {
			return sm.NetworkDef{}, fmt.Errorf("subnet %s overlaps %s: %w", sn, other, errdefs.ErrAlreadyExists)
		}
	}
	gw := gatewayOf(sn)
	if gateway != "" {
		gw = net.ParseIP(gateway)
		if gw == nil || gw.To4() == nil || !sn.Contains(gw) {
			return sm.NetworkDef{}, fmt.Errorf("gateway %s is not an address of %s: %w", errdefs.Quote(gateway), sn, errdefs.ErrInvalidArgument)
		}
	}
	sum := sha256.Sum256([]byte(name))
	def := sm.NetworkDef{Name: name, Subnet: sn.String(), Gateway: gw.To4().String(), Bridge: "cn-" + hex.EncodeToString(sum[:])[:10]}
	err = m.nets.Run(ctx, sm.NetOp{Event: sm.EventNetworkCreate, ID: name, Network: &def})
	return def, err
}

// subnetTaken reports a network or host address range sn overlaps.
func (m *Manager) subnetTaken(sn *net.IPNet) (string, bool) {
	overlap := func(o *net.IPNet) bool { return o.Contains(sn.IP) || sn.Contains(o.IP) }
	_, b, _ := net.ParseCIDR(m.bridge.Subnet)
	if overlap(b) {
		return "network bridge", true
	}
	for _, v := range m.j.Networks() {
		if v.Def == nil {
			continue
		}
		if _, o, err := net.ParseCIDR(v.Def.Subnet); err == nil && overlap(o) {
			return "network " + v.ID, true
		}
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && !ipn.IP.IsLoopback() && overlap(ipn) {
				return "a host address " + ipn.String(), true
			}
		}
	}
	return "", false
}

func (m *Manager) freeSubnet() (*net.IPNet, error) {
	for i := range 256 {
		_, sn, _ := net.ParseCIDR(fmt.Sprintf("10.89.%d.0/24", i))
		if _, taken := m.subnetTaken(sn); !taken {
			return sn, nil
		}
	}
	return nil, fmt.Errorf("no free subnet in 10.89.0.0/16: %w", errdefs.ErrResourceExhausted)
}

// RemoveNetwork deletes a user network no container is attached to: its
// bridge, its address state, its definition.
func (m *Manager) RemoveNetwork(ctx context.Context, name string) error {
	def, ok := m.Def(name)
	if !ok || name == ModeBridge {
		if name == ModeBridge {
			return fmt.Errorf("the default bridge network cannot be removed: %w", errdefs.ErrFailedPrecondition)
		}
		return fmt.Errorf("network %s not found: %w", errdefs.Quote(name), errdefs.ErrNotFound)
	}
	for _, a := range m.j.NetAttachments() {
		if a.Network == name {
			return fmt.Errorf("network %s has containers attached (%.12s): %w", name, a.ID, errdefs.ErrFailedPrecondition)
		}
	}
	return m.nets.Run(ctx, sm.NetOp{Event: sm.EventNetworkRemove, ID: name, Do: map[string]func() error{
		sm.NetStepBridge: func() error { return m.deleteBridge(def) },
	}})
}

// deleteBridge removes a network's bridge device and host-local state; both
// may be absent.
func (m *Manager) deleteBridge(def sm.NetworkDef) error {
	if l, err := netlink.LinkByName(def.Bridge); err == nil {
		if err := netlink.LinkDel(l); err != nil {
			return fmt.Errorf("delete bridge %s: %w", def.Bridge, err)
		}
	}
	return os.RemoveAll(filepath.Join(m.cni.ipamDir, def.Name))
}

// Prune removes every user network no container is attached to.
func (m *Manager) Prune(ctx context.Context) ([]string, error) {
	var removed []string
	var errs []error
	for _, n := range m.List() {
		if n.Name == ModeBridge || n.Containers > 0 {
			continue
		}
		if err := m.RemoveNetwork(ctx, n.Name); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, n.Name)
	}
	return removed, errors.Join(errs...)
}

// Info describes a network for ls and inspect.
type Info struct {
	sm.NetworkDef
	CreatedAt  time.Time
	Containers int
	// Attached are the attachments on it.
	Attached []sm.NetAttachView
}

// List returns the default bridge and every user network, by name.
func (m *Manager) List() []Info {
	atts := m.j.NetAttachments()
	info := func(def sm.NetworkDef, created time.Time) Info {
		i := Info{NetworkDef: def, CreatedAt: created}
		for _, a := range atts {
			if a.Network == def.Name {
				i.Attached = append(i.Attached, a)
			}
		}
		i.Containers = len(i.Attached)
		return i
	}
	out := []Info{info(m.bridge, time.Time{})}
	for _, v := range m.j.Networks() {
		if v.Def != nil && v.State == sm.StateDefined {
			out = append(out, info(*v.Def, v.CreatedAt))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Recover decides every attachment after a start (recovery.DecideNetAttach),
// releases what must go, recording each decision, then runs CNI GC on every
// network with the live attachments and removes namespace files no
// attachment names. It runs after the containers' recovery.
func (m *Manager) Recover(ctx context.Context, rebooted bool) (kept, released int, err error) {
	var errs []error
	for _, v := range m.j.Networks() {
		plan := recovery.DecideNetwork(v)
		if plan.Keep {
			continue
		}
		if err := m.dropNetworkForRecovery(v, plan.Reason); err != nil {
			errs = append(errs, err)
		}
	}
	for _, v := range m.j.NetAttachments() {
		c, exists := m.j.Container(v.ID)
		mounted, merr := NetNSMounted(v.NetNS)
		w := recovery.NetWorld{ContainerExists: exists, ContainerRunning: exists && c.State.HasProcess(), NetNSMounted: recovery.FactOf(mounted, merr), Rebooted: rebooted}
		plan := recovery.DecideNetAttach(v, w)
		switch plan.Action {
		case recovery.NetKeep:
			kept++
			continue
		case recovery.NetUncertain:
			errs = append(errs, fmt.Errorf("attachment of %s: %s", v.ID, plan.Reason))
			continue
		}
		if err := m.releaseForRecovery(ctx, v, plan.Reason); err != nil {
			errs = append(errs, err)
			continue
		}
		released++
	}
	live := map[string][]string{}
	for _, v := range m.j.NetAttachments() {
		live[v.Network] = append(live[v.Network], v.ID)
	}
	for _, n := range m.List() {
		if err := m.cni.gc(ctx, n.NetworkDef, live[n.Name]); err != nil {
			errs = append(errs, fmt.Errorf("CNI GC of %s: %w", n.Name, err))
		}
	}
	if ents, err := os.ReadDir(filepath.Join(m.cfg.RunDir, "netns")); err == nil {
		for _, e := range ents {
			if _, ok := m.j.NetAttachment(e.Name()); !ok {
				if err := RemoveNetNS(filepath.Join(m.cfg.RunDir, "netns", e.Name())); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	return kept, released, errors.Join(errs...)
}

// releaseForRecovery is a release decided by recovery: CNI DEL (with the
// cached config), the namespace unmounted and deleted, and a RECONCILED
// record that drops the attachment.
func (m *Manager) releaseForRecovery(ctx context.Context, v sm.NetAttachView, reason string) error {
	unlock, err := m.nets.Lock(ctx, sm.ObjectKey(sm.ObjectNetAttach, v.ID))
	if err != nil {
		return err
	}
	defer unlock()
	def, ok := m.Def(v.Network)
	if !ok {
		def = sm.NetworkDef{Name: v.Network, Subnet: m.bridge.Subnet, Gateway: m.bridge.Gateway}
	}
	netns, ports := v.NetNS, v.Requested
	if v.Pending != nil && v.Pending.Args != nil && v.Pending.Args.NetAttach != nil {
		a := v.Pending.Args.NetAttach
		netns, ports = a.NetNS, a.Ports
	}
	if netns != "" {
		if err := m.cni.del(ctx, def, v.ID, netns, ports); err != nil {
			return fmt.Errorf("recovery of the attachment of %s: %w", v.ID, err)
		}
		if err := RemoveNetNS(netns); err != nil {
			return fmt.Errorf("recovery of the attachment of %s: %w", v.ID, err)
		}
	}
	var intent uint64
	from := v.State
	if v.Pending != nil {
		intent = v.Pending.Seq
	}
	_, err = m.j.Commit([]sm.Record{{Kind: sm.KindReconciled, Object: sm.ObjectNetAttach, ObjectID: v.ID, Event: sm.EventDetach, From: from, To: sm.StateRemoved, Intent: intent, Error: reason}})
	if err == nil {
		m.log.Info("network attachment recovered", "container", v.ID, "action", "release", "reason", reason)
	}
	return err
}

// Attachment returns container id's attachment, if any.
func (m *Manager) Attachment(id string) (sm.NetAttachView, bool) { return m.j.NetAttachment(id) }

// dropNetworkForRecovery deletes what a network cut short in a create or
// removal may have left (its bridge, its address state) and records it gone.
func (m *Manager) dropNetworkForRecovery(v sm.NetworkView, reason string) error {
	def := v.Def
	if def == nil && v.Pending != nil && v.Pending.Args != nil {
		def = v.Pending.Args.Network
	}
	if def != nil && def.Bridge != "" {
		if err := m.deleteBridge(*def); err != nil {
			return fmt.Errorf("recovery of network %s: %w", v.ID, err)
		}
	}
	var intent uint64
	if v.Pending != nil {
		intent = v.Pending.Seq
	}
	_, err := m.j.Commit([]sm.Record{{Kind: sm.KindReconciled, Object: sm.ObjectNetwork, ObjectID: v.ID, Event: sm.EventNetworkRemove, From: v.State, To: sm.StateRemoved, Intent: intent, Error: reason}})
	if err == nil {
		m.log.Info("network recovered", "network", v.ID, "action", "drop", "reason", reason)
	}
	return err
}
