package daemon

import (
	"errors"

	"github.com/cairn-run/cairn/internal/procstat"
	"github.com/cairn-run/cairn/metrics"
	sm "github.com/cairn-run/cairn/statemachine"
)

// metricSources are the scrape-time sources of the metrics. The metrics
// exist before the journal, the layer store and the executor do (the
// journal reports its commits to them), so each source checks that its
// part is up.
func (d *Daemon) metricSources() metrics.Sources {
	return metrics.Sources{
		Containers: func() map[string]int {
			counts := map[string]int{}
			if d.journal != nil {
				for _, c := range d.journal.Containers() {
					if c.State != sm.StateNone {
						counts[string(c.State)]++
					}
				}
			}
			return counts
		},
		Images: func() (int, int64, error) {
			if d.layers == nil {
				return 0, 0, errNotUp
			}
			return d.layers.ImageStats()
		},
		Layers: func() (int, int64, error) {
			if d.layers == nil {
				return 0, 0, errNotUp
			}
			return d.layers.LayerStats()
		},
		Journal: func() (int, int64) {
			if d.journal == nil {
				return 0, 0
			}
			return d.journal.Stats()
		},
		Shims: func() (alive, standby int) {
			if d.journal == nil || d.exec == nil {
				return 0, 0
			}
			for _, c := range d.journal.Containers() {
				if p := c.Process; p != nil && procstat.Alive(p.ShimPID, p.ShimStartTime) {
					alive++
				}
			}
			if _, _, waiting := d.exec.StandbyStats(); waiting {
				standby = 1
			}
			return alive, standby
		},
		Standby: func() (uint64, uint64) {
			if d.exec == nil {
				return 0, 0
			}
			hits, misses, _ := d.exec.StandbyStats()
			return hits, misses
		},
		Usage: d.containerUsage,
		Volumes: func() (count, used int) {
			if d.volumes == nil || d.journal == nil {
				return 0, 0
			}
			for _, v := range d.volumes.List() {
				count++
				if len(v.UsedBy) > 0 {
					used++
				}
			}
			return count, used
		},
		Networks: func() (networks, attachments int) {
			if d.net == nil || d.journal == nil {
				return 0, 0
			}
			return len(d.net.List()), len(d.journal.NetAttachments())
		},
	}
}

// errNotUp leaves out the metrics of a part the daemon has not opened yet.
var errNotUp = errors.New("not open yet")
