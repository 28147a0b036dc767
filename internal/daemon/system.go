package daemon

import (
	"context"

	"github.com/cairn-run/cairn/internal/sysinfo"
	"github.com/cairn-run/cairn/journal"
	"github.com/cairn-run/cairn/layer"
	"github.com/cairn-run/cairn/metrics"
	"github.com/cairn-run/cairn/recovery"
	sm "github.com/cairn-run/cairn/statemachine"
)

// systemFacts answers `cairn info` and `cairn system df` from the same
// sources as the metrics, plus what the daemon remembers of its start.
type systemFacts struct{ d *Daemon }

func (f systemFacts) Info(context.Context) (sysinfo.Info, error) {
	d := f.d
	src := d.metricSources()
	info := sysinfo.Info{
		Root: d.cfg.Root, JournalPath: d.journal.Path(), Containers: map[string]int64{},
		Host: sysinfo.ReadHost(), StartedAt: d.startedAt, Recovering: !d.recovered.Load(),
	}
	counts := src.Containers()
	for _, state := range metrics.States {
		info.Containers[state] = int64(counts[state])
	}
	records, size := src.Journal()
	info.JournalRecords, info.JournalBytes = int64(records), size
	if n, _, err := src.Images(); err == nil {
		info.Images = int64(n)
	}
	if n, bytes, err := src.Layers(); err == nil {
		info.Layers, info.LayerBytes = int64(n), bytes
	}
	alive, _ := src.Shims()
	info.Shims = int64(alive)
	if r := d.lastRecovery.Load(); r != nil {
		info.LastRecovery = *r
	}
	return info, nil
}

func (f systemFacts) DiskUsage(context.Context) (sysinfo.DiskUsage, error) {
	d := f.d
	imgs, err := d.layers.Images()
	if err != nil {
		return sysinfo.DiskUsage{}, err
	}
	stored, err := d.layers.Layers()
	if err != nil {
		return sysinfo.DiskUsage{}, err
	}
	var images []sysinfo.Image
	for _, img := range imgs {
		images = append(images, sysinfo.Image{ID: img.ID, Names: img.Names, ChainIDs: layer.ChainIDs(img.DiffIDs)})
	}
	var layers []sysinfo.Layer
	for _, l := range stored {
		layers = append(layers, sysinfo.Layer{ChainID: l.ChainID, Size: l.Size})
	}
	var containers []sysinfo.Container
	for _, c := range d.journal.Containers() {
		if c.State == sm.StateNone || c.State == sm.StateRemoved {
			continue
		}
		u := sysinfo.Container{ID: c.ID, Name: c.Name, Image: c.Image, ImageID: c.ImageID, State: string(c.State),
			Active: c.State == sm.StateRunning || c.State == sm.StatePaused}
		if m, err := d.layers.MountInfo(c.MountID); err == nil {
			// A writable layer that cannot be read is counted as empty
			// rather than failing the whole report.
			u.SizeBytes, _ = sysinfo.DirBytes(m.Upper)
		}
		containers = append(containers, u)
	}
	du := sysinfo.Tally(images, layers, containers)
	if d.volumes != nil {
		var vols []sysinfo.Volume
		for _, v := range d.volumes.List() {
			// A volume that cannot be read is counted as empty rather than
			// failing the whole report.
			size, _ := sysinfo.DirBytes(v.Mountpoint)
			vols = append(vols, sysinfo.Volume{Name: v.Name, Containers: int64(len(v.UsedBy)), SizeBytes: size})
		}
		sysinfo.TallyVolumes(&du, vols)
	}
	return du, nil
}

// recoverySummary is what Info tells of a startup recovery.
func recoverySummary(rep recovery.Report, started journal.StartInfo, err error) sysinfo.Recovery {
	r := sysinfo.Recovery{
		CleanShutdown: started.CleanShutdown, Rebooted: started.Rebooted, Duration: rep.Duration,
		Containers: int64(rep.Containers), Images: int64(rep.Images), UnknownExits: int64(rep.UnknownExits),
		Actions: map[string]int64{},
	}
	for action, n := range rep.Actions {
		r.Actions[action] = int64(n)
	}
	if err != nil {
		r.Err = err.Error()
	}
	return r
}
