package network

import (
	"bytes"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/cairn-run/cairn/internal/errdefs"
	sm "github.com/cairn-run/cairn/statemachine"
)

// The modes a container's network can be in besides a user network's name.
const (
	ModeNone   = "none"
	ModeHost   = "host"
	ModeBridge = "bridge" // the default bridge network
)

// ParsePort reads Docker's -p syntax: [HOSTIP:][HOSTPORT:]CTRPORT[/tcp|/udp].
// A missing host port is 0: one is picked at attach time.
func ParsePort(s string) (sm.PortMapping, error) {
	bad := func(why string) (sm.PortMapping, error) {
		return sm.PortMapping{}, fmt.Errorf("invalid port mapping %s: %s: %w", errdefs.Quote(s), why, errdefs.ErrInvalidArgument)
	}
	spec, proto, hasProto := strings.Cut(s, "/")
	if !hasProto {
		proto = "tcp"
	}
	if proto != "tcp" && proto != "udp" {
		return bad("protocol must be tcp or udp")
	}
	var hostIP, hostPort, ctrPort string
	if i := strings.LastIndex(spec, ":"); i >= 0 {
		ctrPort = spec[i+1:]
		rest := spec[:i]
		if j := strings.LastIndex(rest, ":"); j >= 0 {
			hostIP, hostPort = rest[:j], rest[j+1:]
		} else {
			hostPort = rest
		}
	} else {
		ctrPort = spec
	}
	hostIP = strings.TrimSuffix(strings.TrimPrefix(hostIP, "["), "]")
	if hostIP != "" {
		ip := net.ParseIP(hostIP)
		if ip == nil || ip.To4() == nil {
			return bad("host IP must be an IPv4 address")
		}
		if ip.IsUnspecified() {
			hostIP = ""
		} else {
			hostIP = ip.String()
		}
	}
	cp, err := strconv.Atoi(ctrPort)
	if err != nil || cp < 1 || cp > 65535 {
		return bad("container port must be 1-65535")
	}
	hp := 0
	if hostPort != "" {
		if hp, err = strconv.Atoi(hostPort); err != nil || hp < 1 || hp > 65535 {
			return bad("host port must be 1-65535")
		}
	}
	return sm.PortMapping{HostIP: hostIP, HostPort: hp, ContainerPort: cp, Protocol: proto}, nil
}

// overlaps reports whether two mappings claim the same host socket: same
// protocol and port, and the same address or either on every address.
func overlaps(a, b sm.PortMapping) bool {
	return a.Protocol == b.Protocol && a.HostPort == b.HostPort && a.HostPort != 0 &&
		(a.HostIP == b.HostIP || a.HostIP == "" || b.HostIP == "")
}

// ValidateSettings checks a create's network settings without touching
// anything: the mode, ports (no two claiming one host socket), DNS servers,
// search domains, extra hosts and the hostname. networkExists says whether
// a user network of that name exists.
func ValidateSettings(n *sm.NetworkSettings, hostname string, networkExists func(string) bool) error {
	if hostname != "" {
		if err := validateHostname(hostname); err != nil {
			return err
		}
	}
	if n == nil {
		return nil
	}
	switch n.Mode {
	case ModeNone, ModeHost, ModeBridge:
	default:
		if !networkExists(n.Mode) {
			return fmt.Errorf("network %s not found: %w", errdefs.Quote(n.Mode), errdefs.ErrNotFound)
		}
	}
	if (n.Mode == ModeNone || n.Mode == ModeHost) && (len(n.Ports) > 0 || n.PublishAll) {
		return fmt.Errorf("published ports need a bridge or user network, not %q: %w", n.Mode, errdefs.ErrInvalidArgument)
	}
	for i, p := range n.Ports {
		if p.Protocol != "tcp" && p.Protocol != "udp" || p.ContainerPort < 1 || p.ContainerPort > 65535 || p.HostPort < 0 || p.HostPort > 65535 {
			return fmt.Errorf("port mapping %d is out of range: %w", i, errdefs.ErrInvalidArgument)
		}
		for _, q := range n.Ports[:i] {
			if overlaps(p, q) {
				return fmt.Errorf("host port %d/%s is published twice: %w", p.HostPort, p.Protocol, errdefs.ErrInvalidArgument)
			}
		}
	}
	for _, d := range n.DNS {
		if net.ParseIP(d) == nil {
			return fmt.Errorf("DNS server %s is not an IP address: %w", errdefs.Quote(d), errdefs.ErrInvalidArgument)
		}
	}
	for _, s := range n.DNSSearch {
		if s != "." && validateHostname(strings.TrimSuffix(s, ".")) != nil {
			return fmt.Errorf("DNS search domain %s is not a domain name: %w", errdefs.Quote(s), errdefs.ErrInvalidArgument)
		}
	}
	for _, h := range n.ExtraHosts {
		name, ip, ok := strings.Cut(h, ":")
		if !ok || validateHostname(name) != nil || net.ParseIP(ip) == nil {
			return fmt.Errorf("extra host %s: want NAME:IP: %w", errdefs.Quote(h), errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// validateHostname accepts RFC 1123 names of at most 64 bytes (the layer
// store checks the same before writing /etc/hosts).
func validateHostname(h string) error {
	bad := fmt.Errorf("hostname %s: want an RFC 1123 name of at most 64 bytes: %w", errdefs.Quote(h), errdefs.ErrInvalidArgument)
	if h == "" || len(h) > 64 {
		return bad
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return bad
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return bad
			}
		}
	}
	return nil
}

// ValidateNetworkName refuses names that are modes or not container-name-like.
func ValidateNetworkName(name string) error {
	switch name {
	case ModeNone, ModeHost, ModeBridge, "default":
		return fmt.Errorf("network name %q is reserved: %w", name, errdefs.ErrInvalidArgument)
	}
	if len(name) == 0 || len(name) > 64 {
		return fmt.Errorf("network name %s: 1 to 64 characters: %w", errdefs.Quote(name), errdefs.ErrInvalidArgument)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '_' && c != '.' && c != '-') {
			return fmt.Errorf("network name %s: letters, digits, _ . - (not first): %w", errdefs.Quote(name), errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// fallbackDNS is what Docker uses when the host has only a loopback resolver
// and no upstream is known.
var fallbackDNS = []string{"8.8.8.8", "8.8.4.4"}

// ResolvConf is a container's /etc/resolv.conf. host is the host's
// resolv.conf, upstream the real servers behind a local stub (systemd-
// resolved's /run/systemd/resolve/resolv.conf; may be empty). With host
// networking the host's file works as it is. Otherwise a loopback server
// is unreachable: the upstream servers replace a loopback-only list, else
// Docker's fallback. dns and search, when given, replace the servers and
// the search domains. It is pure.
func ResolvConf(host, upstream []byte, hostNet bool, dns, search []string) []byte {
	servers, searches, options := parseResolv(host)
	if !hostNet {
		var reachable []string
		for _, s := range servers {
			if ip := net.ParseIP(s); ip != nil && !ip.IsLoopback() {
				reachable = append(reachable, s)
			}
		}
		if len(reachable) == 0 {
			up, _, _ := parseResolv(upstream)
			for _, s := range up {
				if ip := net.ParseIP(s); ip != nil && !ip.IsLoopback() {
					reachable = append(reachable, s)
				}
			}
		}
		if len(reachable) == 0 {
			reachable = fallbackDNS
		}
		servers = reachable
	}
	if len(dns) > 0 {
		servers = dns
	}
	if len(search) > 0 {
		searches = search
		if len(search) == 1 && search[0] == "." {
			searches = nil
		}
	}
	var b bytes.Buffer
	for _, s := range servers {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(searches) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(searches, " "))
	}
	if len(options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(options, " "))
	}
	return b.Bytes()
}

func parseResolv(data []byte) (servers, search, options []string) {
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || strings.HasPrefix(f[0], "#") || strings.HasPrefix(f[0], ";") {
			continue
		}
		switch f[0] {
		case "nameserver":
			servers = append(servers, f[1])
		case "search", "domain":
			search = f[1:]
		case "options":
			options = append(options, f[1:]...)
		}
	}
	return servers, search, options
}

// HostEntry is one line of a container's /etc/hosts.
type HostEntry struct {
	IP    string
	Names []string
}

// HostsFile is a container's /etc/hosts: loopback, its own address with its
// hostname (and name), its peers on a user network, and --add-host entries.
// It is pure.
func HostsFile(hostname, ip string, peers []HostEntry, extra []string) []byte {
	var b bytes.Buffer
	b.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	if ip != "" {
		fmt.Fprintf(&b, "%s\t%s\n", ip, hostname)
	} else {
		fmt.Fprintf(&b, "127.0.1.1\t%s\n", hostname)
	}
	for _, p := range peers {
		if len(p.Names) > 0 {
			fmt.Fprintf(&b, "%s\t%s\n", p.IP, strings.Join(p.Names, " "))
		}
	}
	for _, h := range extra {
		if name, addr, ok := strings.Cut(h, ":"); ok {
			fmt.Fprintf(&b, "%s\t%s\n", addr, name)
		}
	}
	return b.Bytes()
}
