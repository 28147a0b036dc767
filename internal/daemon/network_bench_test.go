package daemon_test

import (
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/internal/testenv/scratch"
)

// BenchmarkNetworkRun is `cairn run --rm busybox true` through the API
// (Run: create, start, stream, exit, remove) on the default bridge beside
// --network none, in one daemon, alternating, so both see the same
// machine. The bridge case pays for the namespace, CNI ADD (bridge,
// host-local, portmap) and, at the removal, CNI DEL.
func BenchmarkNetworkRun(b *testing.B) {
	e := scratch.NewDaemon(b)
	run := func(mode string) time.Duration {
		start := time.Now()
		stream, err := e.Containers.Run(bg, connect.NewRequest(&cairnv1.RunRequest{Create: &cairnv1.CreateRequest{Image: "busybox", Command: []string{"true"}, AutoRemove: true, Network: mode}}))
		if err != nil {
			b.Fatal(err)
		}
		for stream.Receive() {
			if stream.Msg().Exit != nil {
				break
			}
		}
		if err := stream.Err(); err != nil && err != io.EOF {
			b.Fatal(err)
		}
		_ = stream.Close()
		return time.Since(start)
	}
	run("bridge") // the bridge device is made by the first ADD
	run("none")
	samples := map[string][]time.Duration{}
	for range b.N {
		for _, mode := range []string{"bridge", "none"} {
			samples[mode] = append(samples[mode], run(mode))
		}
	}
	for _, mode := range []string{"bridge", "none"} {
		s := samples[mode]
		slices.Sort(s)
		b.ReportMetric(float64(s[len(s)/2].Microseconds())/1000, mode+"-p50-ms")
		b.ReportMetric(float64(s[len(s)*9/10].Microseconds())/1000, mode+"-p90-ms")
	}
	assertNoNetLeaks(b, e, "after the runs")
}

// BenchmarkNetworkRecovery kills cairnd with `live` networked containers
// running and measures the restart until it serves (journal check,
// container recovery and reattach, network recovery and CNI GC), checking
// that every IP is unchanged.
func BenchmarkNetworkRecovery(b *testing.B) {
	for _, live := range []int{10, 100} {
		b.Run(fmt.Sprintf("live=%d", live), func(b *testing.B) {
			e := scratch.NewBinaryDaemon(b)
			ips := map[string]string{}
			var mu sync.Mutex
			var wg sync.WaitGroup
			sem := make(chan struct{}, 8)
			for range live {
				wg.Go(func() {
					sem <- struct{}{}
					defer func() { <-sem }()
					c := createNet(b, e, &cairnv1.CreateRequest{Network: "bridge", Command: []string{"sleep", "100000"}})
					start(b, e, c.Id)
					ip := get(b, e, c.Id).Network.IpAddress
					mu.Lock()
					ips[c.Id] = ip
					mu.Unlock()
				})
			}
			wg.Wait()
			var total, worst time.Duration
			for range b.N {
				e.Kill()
				t0 := time.Now()
				e.StartWith()
				waitHealthy(b, e)
				d := time.Since(t0)
				total += d
				worst = max(worst, d)
			}
			for id, ip := range ips {
				if got := get(b, e, id).Network; got == nil || got.IpAddress != ip {
					b.Fatalf("%s: IP %v after recovery, was %s", id, got, ip)
				}
			}
			b.ReportMetric(float64(total.Microseconds())/float64(b.N)/1000, "ms/recovery")
			b.ReportMetric(float64(worst.Microseconds())/1000, "max-ms")
		})
	}
}
