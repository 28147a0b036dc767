package scratch

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"

	"github.com/cairn-run/cairn/internal/daemon"
	"github.com/cairn-run/cairn/internal/testenv"
)

// testNetwork is networking unique to one scratch daemon, so suites running
// at the same time never share a bridge, a subnet or a run directory: a
// run directory on /run (a tmpfs), a bridge named ct<10 hex>, a random /24
// of 10.100.0.0/14..10.199.0.0. The default mode stays "none": a test asks
// for a network.
func testNetwork() daemon.NetworkConfig {
	return daemon.NetworkConfig{
		RunDir: filepath.Join("/run", "cairn-test-"+testenv.RandomHex(6)),
		Bridge: "ct" + testenv.RandomHex(5),
		Subnet: fmt.Sprintf("10.%d.%d.0/24", 100+rand.IntN(100), rand.IntN(256)),
	}
}

// WithDefaultNetwork makes mode the daemon's default network.
func WithDefaultNetwork(mode string) Option {
	return func(c *daemon.Config) { c.Network.DefaultMode = mode }
}

func networkFlags(n daemon.NetworkConfig) []string {
	mode := n.DefaultMode
	if mode == "" {
		mode = "none"
	}
	return []string{"--default-network", mode, "--net-run-dir", n.RunDir, "--bridge", n.Bridge, "--bridge-subnet", n.Subnet}
}
