package drill

import (
	"context"
	"fmt"
	"os"
	"time"

	"connectrpc.com/connect"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/internal/inspect"
)

// stopGrace is how long the daemon gets to stop before SIGKILL.
const stopGrace = 15 * time.Second

// cleanup removes everything of the drill from the machine: the daemon's
// containers (through the API, unless Keep), the daemon, then whatever is
// left of its shims, container processes, mounts and cgroups, and the
// scratch directory (unless Keep). It returns the leftovers it had to
// scrub after a clean removal of every container, which are leaks of the
// daemon; after a kept drill, or with a daemon that does not serve,
// leftovers are expected.
func (r *run) cleanup() []string {
	clean := false
	if !r.cfg.Keep && r.daemon.running() && r.daemon.serving() {
		clean = r.removeAll()
	}
	r.daemon.stop(stopGrace)
	r.registry.stop()
	leftovers := inspect.Scrub(r.dir, r.cgroupParent)
	leftovers = append(leftovers, r.daemon.net.scrub()...)
	if !r.cfg.Keep {
		if err := os.RemoveAll(r.dir); err != nil {
			fmt.Fprintf(r.cfg.Out, "drill: removing %s: %v\n", r.dir, err)
		}
	}
	if !clean {
		return nil
	}
	return leftovers
}

// removeAll force-removes every container; it reports whether all went.
func (r *run) removeAll() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	list, err := r.daemon.clients.Containers.List(ctx, connect.NewRequest(&cairnv1.ListRequest{All: true}))
	if err != nil {
		return false
	}
	ok := true
	for _, c := range list.Msg.Containers {
		if c.State == stateRemoved {
			continue
		}
		if _, err := r.daemon.clients.Containers.Remove(ctx, connect.NewRequest(&cairnv1.RemoveRequest{Id: c.Id, Force: true})); err != nil {
			fmt.Fprintf(r.cfg.Out, "drill: cleanup: rm -f %s: %v\n", shortID(c.Id), err)
			ok = false
		}
	}
	return ok
}
