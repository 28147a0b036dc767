package daemon_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	bolt "go.etcd.io/bbolt"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/internal/schema"
	"github.com/cairn-run/cairn/internal/testenv/scratch"
	"github.com/cairn-run/cairn/network"
	sm "github.com/cairn-run/cairn/statemachine"
)

// netLeaks are what the scratch daemon's networking left.
func netLeaks(e *scratch.Env) []string {
	n := e.Config.Network
	return network.Leaks(n.RunDir, n.Bridge, n.Subnet)
}

func assertNoNetLeaks(t testing.TB, e *scratch.Env, when string) {
	t.Helper()
	if leaks := netLeaks(e); len(leaks) > 0 {
		t.Fatalf("%s: %d network leaks:\n%s", when, len(leaks), strings.Join(leaks, "\n"))
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	for range 100 {
		p := 20000 + rand.IntN(30000)
		if l, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", p)); err == nil {
			_ = l.Close()
			return p
		}
	}
	t.Fatal("no free port")
	return 0
}

func createNet(t testing.TB, e *scratch.Env, req *cairnv1.CreateRequest) *cairnv1.Container {
	t.Helper()
	req.Image = "busybox"
	res, err := e.Containers.Create(bg, connect.NewRequest(req))
	if err != nil {
		t.Fatalf("create %v: %v", req.Command, err)
	}
	return res.Msg.Container
}

const httpdCmd = "mkdir -p /www && echo hello-from-$(hostname) > /www/index.html && exec httpd -f -p 80 -h /www"

// httpGet fetches url until it answers or the deadline passes.
func httpGet(t *testing.T, url string, within time.Duration) string {
	t.Helper()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(within)
	var last error
	for time.Now().Before(deadline) {
		res, err := client.Get(url)
		if err == nil {
			body, _ := io.ReadAll(res.Body)
			_ = res.Body.Close()
			if res.StatusCode == 200 {
				return string(body)
			}
			last = fmt.Errorf("status %d", res.StatusCode)
		} else {
			last = err
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("GET %s: %v", url, last)
	return ""
}

// TestNetwork_PublishedPortSurvivesKill9AndRecoveryKeepsTheIP: busybox
// httpd on the default bridge, published on 127.0.0.1, answers from the
// host, also while cairnd is dead (the daemon is not in the data path) and
// after its recovery, which keeps the same IP; rm -f leaves nothing.
func TestNetwork_PublishedPortSurvivesKill9AndRecoveryKeepsTheIP(t *testing.T) {
	e := scratch.NewBinaryDaemon(t)
	port := freePort(t)
	c := createNet(t, e, &cairnv1.CreateRequest{Network: "bridge", Publish: []string{fmt.Sprintf("127.0.0.1:%d:80", port)}, Command: []string{"sh", "-c", httpdCmd}})
	c = start(t, e, c.Id)
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	if body := httpGet(t, url, 10*time.Second); !strings.HasPrefix(body, "hello-from-") {
		t.Fatalf("body %q", body)
	}
	before := get(t, e, c.Id).Network
	if before == nil || before.IpAddress == "" || before.MacAddress == "" || len(before.Ports) != 1 || before.Ports[0].HostPort != int32(port) {
		t.Fatalf("attachment %v", before)
	}
	_, sn, _ := net.ParseCIDR(e.Config.Network.Subnet)
	if !sn.Contains(net.ParseIP(before.IpAddress)) {
		t.Fatalf("IP %s outside the bridge's subnet %s", before.IpAddress, sn)
	}
	e.Kill()
	if body := httpGet(t, url, 5*time.Second); !strings.HasPrefix(body, "hello-from-") {
		t.Fatalf("with cairnd dead: body %q", body)
	}
	e.Start()
	if body := httpGet(t, url, 5*time.Second); !strings.HasPrefix(body, "hello-from-") {
		t.Fatalf("after recovery: body %q", body)
	}
	after := get(t, e, c.Id)
	if after.State != cairnv1.ContainerState_CONTAINER_STATE_RUNNING || after.Network == nil || after.Network.IpAddress != before.IpAddress || after.Network.MacAddress != before.MacAddress {
		t.Fatalf("after recovery: %v %v, before %v", after.State, after.Network, before)
	}
	// Stop and start keep the namespace and the IP.
	stop(t, e, c.Id, 0)
	start(t, e, c.Id)
	if again := get(t, e, c.Id).Network; again == nil || again.IpAddress != before.IpAddress {
		t.Fatalf("after stop/start: %v, before %v", again, before)
	}
	httpGet(t, url, 10*time.Second)
	remove(t, e, c.Id, true)
	assertNoNetLeaks(t, e, "after rm -f")
}

func TestNetwork_UserNetworkNamesPingAndWget(t *testing.T) {
	e := scratch.NewDaemon(t)
	subnet := fmt.Sprintf("10.%d.%d.0/24", 200+rand.IntN(50), rand.IntN(256))
	name := "tn" + fmt.Sprint(rand.IntN(1e6))
	res, err := e.Networks.CreateNetwork(bg, connect.NewRequest(&cairnv1.CreateNetworkRequest{Name: name, Subnet: subnet}))
	if err != nil {
		t.Fatal(err)
	}
	bridge := res.Msg.Network.Bridge
	t.Cleanup(func() { network.Scrub(filepath.Join(t.TempDir(), "none"), bridge, subnet) })
	if _, err := e.Networks.CreateNetwork(bg, connect.NewRequest(&cairnv1.CreateNetworkRequest{Name: name, Subnet: subnet})); connect.CodeOf(err) != connect.CodeAlreadyExists {
		t.Fatalf("second create: %v", err)
	}
	web := createNet(t, e, &cairnv1.CreateRequest{Name: "web-" + name, Network: name, Command: []string{"sh", "-c", httpdCmd}})
	start(t, e, web.Id)
	client := createNet(t, e, &cairnv1.CreateRequest{Name: "client-" + name, Network: name, Command: []string{"sh", "-c",
		// Debian's busybox 1.35 wget segfaults (on the host too): nc speaks the HTTP.
		"ping -c1 -W5 web-" + name + " && printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 web-" + name + " 80"}})
	start(t, e, client.Id)
	if w := wait(t, e, client.Id); w.ExitCode == nil || *w.ExitCode != 0 {
		t.Fatalf("client exit %v %s: %s", w.ExitCode, w.ExitReason, logs(t, e, client.Id, false))
	}
	if out := logs(t, e, client.Id, false); !strings.Contains(out, "1 packets received") || !strings.Contains(out, "hello-from-") {
		t.Fatalf("client output %q", out)
	}
	// The web container learned the client's name when it arrived.
	if hosts, err := os.ReadFile(filepath.Join(get(t, e, web.Id).Layers.Rootfs, "etc", "hosts")); err != nil || !strings.Contains(string(hosts), "client-"+name) {
		t.Errorf("web's /etc/hosts lacks the client: %q %v", hosts, err)
	}
	if _, err := e.Networks.RemoveNetwork(bg, connect.NewRequest(&cairnv1.RemoveNetworkRequest{Name: name})); connect.CodeOf(err) != connect.CodeFailedPrecondition {
		t.Fatalf("rm of a network in use: %v", err)
	}
	remove(t, e, web.Id, true)
	remove(t, e, client.Id, true)
	if _, err := e.Networks.RemoveNetwork(bg, connect.NewRequest(&cairnv1.RemoveNetworkRequest{Name: name})); err != nil {
		t.Fatal(err)
	}
	ls, err := e.Networks.ListNetworks(bg, connect.NewRequest(&cairnv1.ListNetworksRequest{}))
	if err != nil || len(ls.Msg.Networks) != 1 || ls.Msg.Networks[0].Name != "bridge" {
		t.Fatalf("ls after rm: %v %v", ls, err)
	}
	if _, err := net.InterfaceByName(bridge); err == nil {
		t.Fatalf("bridge %s left after network rm", bridge)
	}
	assertNoNetLeaks(t, e, "after rm")
}

func TestNetwork_HostAndNoneModes(t *testing.T) {
	e := scratch.NewDaemon(t)
	host := createNet(t, e, &cairnv1.CreateRequest{Network: "host", Command: []string{"cat", "/proc/net/dev"}})
	start(t, e, host.Id)
	wait(t, e, host.Id)
	if out := logs(t, e, host.Id, false); !strings.Contains(out, "eth0") {
		t.Fatalf("--network host does not see the host's eth0: %q", out)
	}
	none := createNet(t, e, &cairnv1.CreateRequest{Network: "none", Command: []string{"cat", "/proc/net/dev"}})
	start(t, e, none.Id)
	wait(t, e, none.Id)
	out := logs(t, e, none.Id, false)
	if !strings.Contains(out, "lo:") || strings.Contains(out, "eth0") {
		t.Fatalf("--network none: %q", out)
	}
	for _, id := range []string{host.Id, none.Id} {
		if get(t, e, id).Network != nil {
			t.Fatalf("host or none mode has an attachment")
		}
		remove(t, e, id, true)
	}
	assertNoNetLeaks(t, e, "after rm")
}

func TestNetwork_DNSOptionsAndHostname(t *testing.T) {
	e := scratch.NewDaemon(t)
	c := createNet(t, e, &cairnv1.CreateRequest{Network: "bridge", Hostname: "myhost", Dns: []string{"192.0.2.53"}, DnsSearch: []string{"example.test"},
		AddHost: []string{"db.local:192.0.2.10"}, Command: []string{"sh", "-c", "hostname; cat /etc/resolv.conf /etc/hosts"}})
	start(t, e, c.Id)
	wait(t, e, c.Id)
	out := logs(t, e, c.Id, false)
	for _, want := range []string{"myhost\n", "nameserver 192.0.2.53", "search example.test", "192.0.2.10\tdb.local"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in %q", want, out)
		}
	}
	if strings.Contains(out, "nameserver 127.") {
		t.Errorf("a loopback resolver in a bridged container: %q", out)
	}
	remove(t, e, c.Id, true)
	for _, bad := range []*cairnv1.CreateRequest{{Network: "nosuchnet"}, {Network: "bridge", Publish: []string{"80:abc"}}, {Network: "none", Publish: []string{"80:80"}},
		{Network: "bridge", Dns: []string{"not-an-ip"}}, {Hostname: "bad host"}, {Network: "bridge", AddHost: []string{"x"}}} {
		bad.Image, bad.Command = "busybox", []string{"true"}
		if _, err := e.Containers.Create(bg, connect.NewRequest(bad)); err == nil {
			t.Errorf("create %v was accepted", bad)
		}
	}
	if l, _ := e.Containers.List(bg, connect.NewRequest(&cairnv1.ListRequest{All: true})); len(l.Msg.Containers) != 0 {
		t.Fatalf("refused creates left %d containers", len(l.Msg.Containers))
	}
}

func TestNetwork_PortInUseIsAClearErrorBeforeAnything(t *testing.T) {
	e := scratch.NewDaemon(t)
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := l.Addr().(*net.TCPAddr).Port
	_, err = e.Containers.Create(bg, connect.NewRequest(&cairnv1.CreateRequest{Image: "busybox", Network: "bridge", Publish: []string{fmt.Sprintf("127.0.0.1:%d:80", taken)}, Command: []string{"true"}}))
	if connect.CodeOf(err) != connect.CodeAlreadyExists || !strings.Contains(err.Error(), fmt.Sprint(taken)) {
		t.Fatalf("got %v, want AlreadyExists naming port %d", err, taken)
	}
	// A port another container publishes is refused too.
	port := freePort(t)
	a := createNet(t, e, &cairnv1.CreateRequest{Network: "bridge", Publish: []string{fmt.Sprintf("%d:80", port)}, Command: []string{"sleep", "30"}})
	start(t, e, a.Id)
	_, err = e.Containers.Create(bg, connect.NewRequest(&cairnv1.CreateRequest{Image: "busybox", Network: "bridge", Publish: []string{fmt.Sprintf("127.0.0.1:%d:81", port)}, Command: []string{"true"}}))
	if connect.CodeOf(err) != connect.CodeAlreadyExists {
		t.Fatalf("a port another container publishes: %v", err)
	}
	if l, _ := e.Containers.List(bg, connect.NewRequest(&cairnv1.ListRequest{All: true})); len(l.Msg.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(l.Msg.Containers))
	}
	remove(t, e, a.Id, true)
	assertNoNetLeaks(t, e, "after rm")
}

// TestNetwork_ParallelContainersGetDistinctIPsAndLeaveNothing: N containers
// started at once each get their own address; rm -f of all frees
// everything.
func TestNetwork_ParallelContainersGetDistinctIPsAndLeaveNothing(t *testing.T) {
	e := scratch.NewDaemon(t)
	const n = 20
	ids := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			res, err := e.Containers.Create(bg, connect.NewRequest(&cairnv1.CreateRequest{Image: "busybox", Network: "bridge", Command: []string{"sleep", "60"}}))
			if err == nil {
				ids[i] = res.Msg.Container.Id
				_, err = e.Containers.Start(bg, connect.NewRequest(&cairnv1.StartRequest{Id: ids[i]}))
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	seen := map[string]string{}
	for _, id := range ids {
		if id == "" {
			continue
		}
		a := get(t, e, id).Network
		if a == nil || a.IpAddress == "" {
			t.Fatalf("%s has no address", id)
		}
		if other, dup := seen[a.IpAddress]; dup {
			t.Fatalf("%s and %s share %s", id, other, a.IpAddress)
		}
		seen[a.IpAddress] = id
	}
	if len(seen) != n {
		t.Fatalf("%d distinct addresses, want %d", len(seen), n)
	}
	var rm sync.WaitGroup
	for _, id := range ids {
		rm.Go(func() { remove(t, e, id, true) })
	}
	rm.Wait()
	assertNoNetLeaks(t, e, "after rm -f of all")
}

// setBootID rewrites the boot id a stopped daemon recorded, as if the
// machine had rebooted since.
func setBootID(t *testing.T, e *scratch.Env, id string) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(e.Config.Root, "cairn.db"), 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bolt.Tx) error { return schema.Meta(tx).Put(schema.MetaBootID, []byte(id)) }); err != nil {
		t.Fatal(err)
	}
}

// TestNetwork_SimulatedRebootReleasesEverything: the machine "reboots"
// (cairnd and the containers die, the stored boot id changes); recovery
// releases every attachment — namespaces, veths, rules, addresses — and a
// later start attaches afresh.
func TestNetwork_SimulatedRebootReleasesEverything(t *testing.T) {
	e := scratch.NewBinaryDaemon(t)
	var ids []string
	for range 3 {
		c := createNet(t, e, &cairnv1.CreateRequest{Network: "bridge", Publish: []string{fmt.Sprintf("127.0.0.1:%d:80", freePort(t))}, Command: []string{"sleep", "60"}})
		start(t, e, c.Id)
		ids = append(ids, c.Id)
	}
	var pids []int
	for _, id := range ids {
		c := get(t, e, id)
		pids = append(pids, int(c.ShimPid), int(c.Pid))
	}
	e.Stop()
	for _, pid := range pids { // as a reboot would
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	setBootID(t, e, "a-boot-before-this-one")
	e.Start()
	assertNoNetLeaks(t, e, "after the simulated reboot")
	for _, id := range ids {
		if get(t, e, id).Network != nil {
			t.Fatalf("%s keeps an attachment across a reboot", id)
		}
	}
	c := start(t, e, ids[0])
	if a := get(t, e, c.Id).Network; a == nil || a.IpAddress == "" {
		t.Fatalf("no fresh attachment after the reboot: %v", a)
	}
	for _, id := range ids {
		remove(t, e, id, true)
	}
	assertNoNetLeaks(t, e, "after rm")
}

// TestNetwork_CrashPointsLeakNothing kills cairnd at every network crash
// point of an attach (a start), a detach (a removal) and a network's
// create and remove; after the restart nothing is pending, a kept
// container's IP is unchanged, and after rm -f nothing is left.
func TestNetwork_CrashPointsLeakNothing(t *testing.T) {
	for _, point := range sm.NetCrashPoints() {
		t.Run(point, func(t *testing.T) {
			t.Parallel()
			e := scratch.NewBinaryDaemon(t)
			ev, _, _ := strings.Cut(point, ".")
			var id, netName string
			if ev == string(sm.EventDetach) || ev == string(sm.EventNetworkRemove) {
				netName = "cp" + fmt.Sprint(rand.IntN(1e6))
				if ev == string(sm.EventNetworkRemove) {
					if _, err := e.Networks.CreateNetwork(bg, connect.NewRequest(&cairnv1.CreateNetworkRequest{Name: netName, Subnet: fmt.Sprintf("10.%d.%d.0/24", 250+rand.IntN(5), rand.IntN(256))})); err != nil {
						t.Fatal(err)
					}
				} else {
					c := createNet(t, e, &cairnv1.CreateRequest{Network: "bridge", Publish: []string{fmt.Sprintf("127.0.0.1:%d:80", freePort(t))}, Command: []string{"sleep", "60"}})
					start(t, e, c.Id)
					id = c.Id
				}
			}
			e.Stop()
			e.StartWith("CAIRN_CRASH_AT=" + point)
			e.WaitServing()
			ctx, cancel := context.WithTimeout(bg, 30*time.Second)
			defer cancel()
			var opErr error
			switch sm.Event(ev) {
			case sm.EventAttach:
				res, err := e.Containers.Create(ctx, connect.NewRequest(&cairnv1.CreateRequest{Image: "busybox", Network: "bridge", Publish: []string{fmt.Sprintf("127.0.0.1:%d:80", freePort(t))}, Command: []string{"sleep", "60"}}))
				if err != nil {
					t.Fatal(err)
				}
				id = res.Msg.Container.Id
				_, opErr = e.Containers.Start(ctx, connect.NewRequest(&cairnv1.StartRequest{Id: id}))
			case sm.EventDetach:
				_, opErr = e.Containers.Remove(ctx, connect.NewRequest(&cairnv1.RemoveRequest{Id: id, Force: true}))
			case sm.EventNetworkCreate:
				netName = "cp" + fmt.Sprint(rand.IntN(1e6))
				_, opErr = e.Networks.CreateNetwork(ctx, connect.NewRequest(&cairnv1.CreateNetworkRequest{Name: netName, Subnet: fmt.Sprintf("10.%d.%d.0/24", 250+rand.IntN(5), rand.IntN(256))}))
			case sm.EventNetworkRemove:
				_, opErr = e.Networks.RemoveNetwork(ctx, connect.NewRequest(&cairnv1.RemoveNetworkRequest{Name: netName}))
			}
			e.WaitCrash(30 * time.Second)
			if opErr == nil {
				t.Logf("the operation completed before the crash (%s fires after the reply)", point)
			} else if !errors.Is(opErr, context.DeadlineExceeded) {
				t.Logf("operation: %v", opErr)
			}
			e.Start()
			if id != "" {
				if res, err := e.Containers.Get(bg, connect.NewRequest(&cairnv1.GetRequest{Id: id})); err == nil {
					if a := res.Msg.Container.Network; a != nil && a.PendingEvent != "" {
						t.Fatalf("attachment still pending %s after recovery", a.PendingEvent)
					}
					remove(t, e, id, true)
				}
			}
			assertNoNetLeaks(t, e, "after recovery and rm -f")
			if netName != "" {
				ls, _ := e.Networks.ListNetworks(bg, connect.NewRequest(&cairnv1.ListNetworksRequest{}))
				for _, n := range ls.Msg.Networks {
					if n.Name == netName {
						if _, err := e.Networks.RemoveNetwork(bg, connect.NewRequest(&cairnv1.RemoveNetworkRequest{Name: netName})); err != nil {
							t.Fatalf("rm of the network after recovery: %v", err)
						}
					}
				}
			}
			checkJournalOffline(t, e)
		})
	}
}

// TestNetwork_CrashMidBurstLeaksNothing kills cairnd while a dozen
// networked containers are being started at once: after the restart no
// attachment is pending, every running container kept its namespace, and
// after rm -f of all nothing is left.
func TestNetwork_CrashMidBurstLeaksNothing(t *testing.T) {
	e := scratch.NewBinaryDaemon(t)
	const n = 12
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			res, err := e.Containers.Create(bg, connect.NewRequest(&cairnv1.CreateRequest{Image: "busybox", Network: "bridge",
				Publish: []string{fmt.Sprintf("127.0.0.1:%d:80", freePort(t))}, Command: []string{"sleep", "60"}}))
			if err == nil {
				_, _ = e.Containers.Start(bg, connect.NewRequest(&cairnv1.StartRequest{Id: res.Msg.Container.Id}))
			}
		})
	}
	time.Sleep(time.Duration(200+rand.IntN(700)) * time.Millisecond)
	e.Kill()
	wg.Wait()
	e.Start()
	l, err := e.Containers.List(bg, connect.NewRequest(&cairnv1.ListRequest{All: true}))
	if err != nil {
		t.Fatal(err)
	}
	running := 0
	for _, c := range l.Msg.Containers {
		a := c.Network
		if a != nil && a.PendingEvent != "" {
			t.Fatalf("%s: attachment pending %s after recovery", c.Id, a.PendingEvent)
		}
		if c.State == cairnv1.ContainerState_CONTAINER_STATE_RUNNING {
			running++
			if a == nil || a.IpAddress == "" {
				t.Fatalf("running %s lost its attachment", c.Id)
			}
			if ok, err := network.NetNSMounted(a.Netns); !ok || err != nil {
				t.Fatalf("running %s: namespace %s not mounted: %v", c.Id, a.Netns, err)
			}
		}
	}
	t.Logf("%d containers known after the crash, %d running", len(l.Msg.Containers), running)
	for _, c := range l.Msg.Containers {
		remove(t, e, c.Id, true)
	}
	assertNoNetLeaks(t, e, "after the crash mid-burst and rm -f of all")
}
