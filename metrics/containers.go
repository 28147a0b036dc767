package metrics

import "github.com/prometheus/client_golang/prometheus"

// ContainerUsage is one running container's reading of its cgroup, for the
// per-container series. The daemon reads the cgroups at scrape time, so
// the series are right the moment after a daemon restart (the counters are
// the kernel's, not the daemon's).
type ContainerUsage struct {
	ID, Name, Image string
	CPUSeconds      float64
	// MemoryUsage is what the cgroup charges; MemoryWorkingSet that less
	// the inactive file cache.
	MemoryUsage, MemoryWorkingSet float64
	Pids                          float64
	// OOMEvents counts the processes the OOM killer killed in the run.
	OOMEvents float64
}

var (
	containerLabels       = []string{"id", "name", "image"}
	descContainerCPU      = prometheus.NewDesc("cairn_container_cpu_seconds_total", "CPU time used by a running container's processes since its start (cgroup cpuacct / cpu.stat).", containerLabels, nil)
	descContainerMem      = prometheus.NewDesc("cairn_container_memory_usage_bytes", "Memory a running container's cgroup is charged for, page cache included.", containerLabels, nil)
	descContainerWS       = prometheus.NewDesc("cairn_container_memory_working_set_bytes", "Memory usage less inactive file cache: what the OOM killer weighs (cadvisor's working set).", containerLabels, nil)
	descContainerPids     = prometheus.NewDesc("cairn_container_pids", "Tasks in a running container's cgroup.", containerLabels, nil)
	descContainerOOMs     = prometheus.NewDesc("cairn_container_oom_events_total", "Processes of a running container killed by the OOM killer since its start.", containerLabels, nil)
	containerDescriptions = []*prometheus.Desc{descContainerCPU, descContainerMem, descContainerWS, descContainerPids, descContainerOOMs}
)

// containerCollector reads every running container's cgroup at scrape time.
type containerCollector struct{ usage func() []ContainerUsage }

func (c containerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range containerDescriptions {
		ch <- d
	}
}

func (c containerCollector) Collect(ch chan<- prometheus.Metric) {
	for _, u := range c.usage() {
		labels := []string{u.ID, u.Name, u.Image}
		ch <- prometheus.MustNewConstMetric(descContainerCPU, prometheus.CounterValue, u.CPUSeconds, labels...)
		ch <- prometheus.MustNewConstMetric(descContainerMem, prometheus.GaugeValue, u.MemoryUsage, labels...)
		ch <- prometheus.MustNewConstMetric(descContainerWS, prometheus.GaugeValue, u.MemoryWorkingSet, labels...)
		ch <- prometheus.MustNewConstMetric(descContainerPids, prometheus.GaugeValue, u.Pids, labels...)
		ch <- prometheus.MustNewConstMetric(descContainerOOMs, prometheus.CounterValue, u.OOMEvents, labels...)
	}
}
