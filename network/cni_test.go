package network

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/cairn-run/cairn/internal/netleak"
	"github.com/cairn-run/cairn/internal/testenv"
	sm "github.com/cairn-run/cairn/statemachine"
)

// testNetwork is a network definition unique to one test: its own bridge
// name and /24, removed (with its IPAM state) by t.Cleanup.
func testNetwork(t *testing.T, runDir string) sm.NetworkDef {
	t.Helper()
	b, c := rand.IntN(250)+1, rand.IntN(250)+1
	def := sm.NetworkDef{Name: "t" + testenv.RandomHex(4), Subnet: fmt.Sprintf("10.%d.%d.0/24", 100+b%100, c), Gateway: fmt.Sprintf("10.%d.%d.1", 100+b%100, c), Bridge: "ct" + testenv.RandomHex(5)}
	t.Cleanup(func() {
		if l, err := netlink.LinkByName(def.Bridge); err == nil {
			_ = netlink.LinkDel(l)
		}
		_ = os.RemoveAll(runDir)
		netleak.ScrubRules(def.Subnet)
	})
	return def
}

func TestNetNSAndCNIAddDel_LeaveNothing(t *testing.T) {
	testenv.RequireRoot(t)
	runDir := filepath.Join("/run", "cairn-test-"+testenv.RandomHex(6))
	def := testNetwork(t, runDir)
	c := newCNI([]string{"/opt/cni/bin"}, runDir)
	if err := os.MkdirAll(runDir, 0o700); err != nil {
		t.Fatal(err)
	}
	ns := filepath.Join(runDir, "ns1")
	if err := CreateNetNS(ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = RemoveNetNS(ns) })
	if ok, err := NetNSMounted(ns); !ok || err != nil {
		t.Fatalf("mounted %v %v", ok, err)
	}
	id := "test" + testenv.RandomHex(8)
	port := 20000 + rand.IntN(20000)
	ports := []sm.PortMapping{{HostIP: "127.0.0.1", HostPort: port, ContainerPort: 80, Protocol: "tcp"}}
	res, err := c.add(context.Background(), def, id, ns, ports)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(res.IP, strings.TrimSuffix(def.Gateway, "1")) || res.MAC == "" || res.Gateway != def.Gateway {
		t.Fatalf("result %+v", res)
	}
	out, _ := exec.Command("iptables-save").Output()
	if !strings.Contains(string(out), fmt.Sprint(port)) || !strings.Contains(string(out), res.IP) {
		t.Fatalf("no rules for port %d / %s", port, res.IP)
	}
	if err := c.del(context.Background(), def, id, ns, ports); err != nil {
		t.Fatal(err)
	}
	if err := c.del(context.Background(), def, id, ns, ports); err != nil {
		t.Fatalf("second DEL: %v", err)
	}
	if err := RemoveNetNS(ns); err != nil {
		t.Fatal(err)
	}
	out, _ = exec.Command("iptables-save").Output()
	if strings.Contains(string(out), fmt.Sprint(port)) || strings.Contains(string(out), res.IP+"/") {
		t.Fatalf("rules left for port %d / %s:\n%s", port, res.IP, out)
	}
	ipam, _ := os.ReadDir(filepath.Join(runDir, "ipam", def.Name))
	for _, e := range ipam {
		if e.Name() == res.IP {
			t.Fatalf("IPAM file %s left", e.Name())
		}
	}
	if _, err := os.Stat(ns); !os.IsNotExist(err) {
		t.Fatalf("netns file left: %v", err)
	}
}

// A crash between the namespace file's creation and its bind mount leaves
// an empty file: DEL must still succeed (and release the address).
func TestCNIDel_WithAnUnmountedNamespaceFileSucceeds(t *testing.T) {
	testenv.RequireRoot(t)
	runDir := filepath.Join("/run", "cairn-test-"+testenv.RandomHex(6))
	def := testNetwork(t, runDir)
	c := newCNI([]string{"/opt/cni/bin"}, runDir)
	if err := os.MkdirAll(runDir, 0o700); err != nil {
		t.Fatal(err)
	}
	ns := filepath.Join(runDir, "half")
	if err := os.WriteFile(ns, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	if err := c.del(context.Background(), def, "half"+testenv.RandomHex(4), ns, nil); err != nil {
		t.Fatalf("DEL with an unmounted namespace file: %v", err)
	}
	if err := RemoveNetNS(ns); err != nil {
		t.Fatal(err)
	}
}
