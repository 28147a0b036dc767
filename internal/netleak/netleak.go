// Package netleak finds and removes the nat rules the CNI plugins leave
// for a subnet when containers were not removed through CNI DEL (a test or
// drill that was cut short). It is a leaf, without libcni, so the cairn
// binary (every container's shim, which runs the drill) stays light.
package netleak

import (
	"net"
	"os/exec"
	"slices"
	"strings"
)

// Rules lists the nat rules that name an address of subnet (its network
// address aside: the shared chains' "-d SUBNET" rules are per container
// too, but always come with one naming the container's address).
func Rules(subnet string) []string {
	_, sn, err := net.ParseCIDR(subnet)
	if err != nil {
		return nil
	}
	out, err := exec.Command("iptables-save", "-t", "nat").Output()
	if err != nil {
		return nil
	}
	var rules []string
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(line, "-A ") {
			continue
		}
		for _, f := range fields(line) {
			if ip := net.ParseIP(f); ip != nil && sn.Contains(ip) && !ip.Equal(sn.IP) {
				rules = append(rules, line)
				break
			}
		}
	}
	return rules
}

func fields(line string) []string {
	return strings.FieldsFunc(line, func(r rune) bool { return r == ' ' || r == '/' || r == ':' })
}

// ScrubRules deletes the nat rules that name an address of subnet, or jump
// to a per-container chain such a rule names, and those chains, in one
// iptables-restore --noflush transaction.
func ScrubRules(subnet string) {
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
		for _, f := range fields(line) {
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
