package network

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"

	"github.com/cairn-run/cairn/internal/netleak"
)

// Leaks lists what networking left behind for a run directory, a bridge
// and a subnet: namespace mounts and files, veths on the bridge, iptables
// rules naming an address of the subnet, IPAM reservations. After every
// container is removed it must be empty. The bridge itself and the shared
// CNI chains stay by design (portmap's CNI-HOSTPORT-* chains and jumps).
func Leaks(runDir, bridge, subnet string) []string {
	var leaks []string
	if data, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], runDir+"/") {
				leaks = append(leaks, "mount "+f[4])
			}
		}
	}
	if ents, err := os.ReadDir(filepath.Join(runDir, "netns")); err == nil {
		for _, e := range ents {
			leaks = append(leaks, "netns file "+e.Name())
		}
	}
	if br, err := netlink.LinkByName(bridge); err == nil {
		if links, err := netlink.LinkList(); err == nil {
			for _, l := range links {
				if l.Attrs().MasterIndex == br.Attrs().Index {
					leaks = append(leaks, "bridge port "+l.Attrs().Name)
				}
			}
		}
	}
	_, sn, err := net.ParseCIDR(subnet)
	if err == nil {
		if out, err := exec.Command("iptables-save").Output(); err == nil {
			sc := bufio.NewScanner(bytes.NewReader(out))
			for sc.Scan() {
				line := sc.Text()
				if strings.HasPrefix(line, "#") {
					continue
				}
				for _, f := range strings.FieldsFunc(line, func(r rune) bool { return r == ' ' || r == '/' || r == ':' }) {
					if ip := net.ParseIP(f); ip != nil && sn.Contains(ip) && !ip.Equal(sn.IP) {
						leaks = append(leaks, "iptables "+line)
						break
					}
				}
			}
		}
	}
	ipam := filepath.Join(runDir, "ipam")
	nets, _ := os.ReadDir(ipam)
	for _, n := range nets {
		files, _ := os.ReadDir(filepath.Join(ipam, n.Name()))
		for _, f := range files {
			if net.ParseIP(f.Name()) != nil {
				leaks = append(leaks, fmt.Sprintf("IPAM reservation %s/%s", n.Name(), f.Name()))
			}
		}
	}
	return leaks
}

// Scrub removes a test's networking leftovers: namespace mounts under the
// run directory, the run directory, nat rules naming the subnet (and the
// per-container chains they jump to) and the bridge.
func Scrub(runDir, bridge, subnet string) {
	netleak.ScrubRules(subnet)
	if ents, err := os.ReadDir(filepath.Join(runDir, "netns")); err == nil {
		for _, e := range ents {
			_ = RemoveNetNS(filepath.Join(runDir, "netns", e.Name()))
		}
	}
	_ = os.RemoveAll(runDir)
	if l, err := netlink.LinkByName(bridge); err == nil {
		_ = netlink.LinkDel(l)
	}
}
