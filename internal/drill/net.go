package drill

import (
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/cairn-run/cairn/internal/netleak"
)

// drillNet is the networking of the drill's daemon: every container it
// creates is on a bridge of its own, so crashes find attachments in flight.
type drillNet struct {
	runDir, bridge, subnet string
}

func newDrillNet() drillNet {
	return drillNet{
		runDir: filepath.Join("/run", "cairn-drill-"+randomHex(6)),
		bridge: "cd" + randomHex(5),
		subnet: fmt.Sprintf("10.%d.%d.0/24", 100+mrand.IntN(100), mrand.IntN(256)),
	}
}

// scrub removes the drill's namespaces, run directory and bridge once its
// daemon is stopped, and returns what was left: namespace files, veths on
// the bridge, nat rules naming the subnet.
func (n drillNet) scrub() []string {
	if n.runDir == "" {
		return nil
	}
	var left []string
	nsDir := filepath.Join(n.runDir, "netns")
	for _, id := range dirNames(nsDir) {
		p := filepath.Join(nsDir, id)
		left = append(left, "netns "+p)
		for range 8 {
			if !isNetNS(p) {
				break
			}
			_ = unix.Unmount(p, unix.MNT_DETACH)
		}
	}
	_ = os.RemoveAll(n.runDir)
	if br, err := netlink.LinkByName(n.bridge); err == nil {
		if links, err := netlink.LinkList(); err == nil {
			for _, l := range links {
				if l.Attrs().MasterIndex == br.Attrs().Index {
					left = append(left, "veth "+l.Attrs().Name+" on "+n.bridge)
				}
			}
		}
		_ = netlink.LinkDel(br)
	}
	for _, rule := range netleak.Rules(n.subnet) {
		left = append(left, "nat rule "+rule)
	}
	netleak.ScrubRules(n.subnet)
	return left
}
