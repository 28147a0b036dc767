package network

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
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
	scrubRules(subnet)
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

// scrubRules deletes the nat rules that name an address of subnet, or jump
// to a per-container chain such a rule names, and those chains, in one
// iptables-restore --noflush transaction.
func scrubRules(subnet string) {
	_, sn, err := net.ParseCIDR(subnet)
	if err != nil {
		return
	}
	out, err := exec.Command("iptables-save", "-t", "nat").Output()
	if err != nil {
		return
	}
	var rules []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "-A ") {
			rules = append(rules, line)
		}
	}
	names := func(line string) bool {
		for _, f := range strings.FieldsFunc(line, func(r rune) bool { return r == ' ' || r == '/' || r == ':' }) {
			if ip := net.ParseIP(f); ip != nil && sn.Contains(ip) {
				return true
			}
		}
		return false
	}
	chains := map[string]bool{}
	for _, r := range rules {
		if f := strings.Fields(r); names(r) {
			for i := range f {
				if f[i] == "-j" && i+1 < len(f) && strings.HasPrefix(f[i+1], "CNI-") && !strings.HasPrefix(f[i+1], "CNI-HOSTPORT-") {
					chains[f[i+1]] = true
				}
			}
			if strings.HasPrefix(f[1], "CNI-") && !strings.HasPrefix(f[1], "CNI-HOSTPORT-") {
				chains[f[1]] = true
			}
		}
	}
	var script strings.Builder
	script.WriteString("*nat\n")
	for _, r := range rules {
		f := strings.Fields(r)
		jumpsToChain := slices.ContainsFunc(f, func(x string) bool { return chains[x] })
		if (names(r) || jumpsToChain) && !chains[f[1]] {
			script.WriteString("-D " + r[3:] + "\n")
		}
	}
	for c := range chains {
		script.WriteString("-F " + c + "\n-X " + c + "\n")
	}
	script.WriteString("COMMIT\n")
	cmd := exec.Command("iptables-restore", "--noflush")
	cmd.Stdin = strings.NewReader(script.String())
	_ = cmd.Run()
}
