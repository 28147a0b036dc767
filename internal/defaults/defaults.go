// Package defaults holds the default paths and addresses shared by cairnd and
// the cairn CLI, so that neither has to import the other's code for them.
package defaults

const (
	// Root is where cairnd keeps its journal, layers and container state.
	Root = "/var/lib/cairn"
	// Socket is cairnd's API socket; CAIRN_SOCKET overrides it for the CLI.
	Socket = "/run/cairn/cairn.sock"
	// MetricsAddr is cairnd's Prometheus endpoint.
	MetricsAddr = "127.0.0.1:9464"
	// CgroupParent is the cgroup path containers are placed under.
	CgroupParent = "cairn"
)
