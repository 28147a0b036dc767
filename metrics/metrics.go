// Package metrics owns Cairn's Prometheus collectors: lifecycle transitions,
// journal group commits, API calls, containers by state, images, the
// journal file, shims, exits whose code is unknown, recovery and the build.
// Gauges of state are read from their sources at scrape time, so they are
// right the moment after a daemon restart. It only counts; it never decides
// anything.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/cairn-run/cairn/internal/buildinfo"
)

// States are the container states cairn_containers always reports, zeros
// included, so a query for one never finds nothing.
var States = []string{"created", "running", "paused", "stopped"}

// Sources are where the scrape-time collectors read the daemon's state.
// A nil source's metrics are left out.
type Sources struct {
	// Containers counts the containers in each state.
	Containers func() map[string]int
	// Images counts the registered images and the bytes of their layers;
	// Layers the layers stored once each and their bytes.
	Images func() (count int, bytes int64, err error)
	Layers func() (count int, bytes int64, err error)
	// Journal is the journal's record count and file size.
	Journal func() (records int, fileBytes int64)
	// Shims counts the shims alive for running and paused containers, and
	// the standby shims waiting for one.
	Shims func() (alive, standby int)
	// Standby counts the starts that took the standby shim and those that
	// had to start one.
	Standby func() (hits, misses uint64)
	// Usage reads the cgroup of every running container (see
	// containers.go).
	Usage func() []ContainerUsage
	// Volumes counts the volumes and those a container uses; Networks the
	// networks defined and the containers attached to one.
	Volumes  func() (count, used int)
	Networks func() (networks, attachments int)
}

// Metrics holds the daemon's collectors and the registry serving them.
type Metrics struct {
	Registry *prometheus.Registry

	transitions        *prometheus.CounterVec
	transitionDuration *prometheus.HistogramVec
	commitRecords      prometheus.Histogram
	commitDuration     prometheus.Histogram
	rpcs               *prometheus.CounterVec
	rpcDuration        *prometheus.HistogramVec
	exitUnknown        prometheus.Counter
	recoveryDuration   prometheus.Gauge
	recoveryActions    *prometheus.CounterVec
}

// New registers every collector, the Go runtime and process collectors
// included, on a fresh registry.
func New(src Sources) *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_transitions_total",
			Help: "Lifecycle transitions finished, by event and outcome (DONE or FAILED).",
		}, []string{"event", "outcome"}),
		transitionDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cairn_transition_duration_seconds",
			Help:    "Time from the intent record to the outcome record, by event.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"event"}),
		commitRecords: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cairn_journal_commit_records",
			Help:    "Records made durable by one journal commit (one fsync).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12),
		}),
		commitDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cairn_journal_commit_duration_seconds",
			Help:    "Duration of one journal group commit, fsync included.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 14),
		}),
		rpcs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_rpc_requests_total",
			Help: "API calls answered, by procedure and Connect code (ok for success).",
		}, []string{"procedure", "code"}),
		rpcDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cairn_rpc_duration_seconds",
			Help:    "Time to answer an API call (a stream: until it ended), by procedure.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 18),
		}, []string{"procedure"}),
		exitUnknown: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cairn_exit_code_unknown_total",
			Help: "Container exits recorded with an unknown exit code because the shim and the process were both lost.",
		}),
		recoveryDuration: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cairn_recovery_duration_seconds",
			Help: "Duration of the last startup recovery.",
		}),
		recoveryActions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_recovery_actions_total",
			Help: "Decisions taken by startup recovery, by action.",
		}, []string{"action"}),
	}
	build := buildinfo.Read()
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "cairn_build_info",
		Help:        "Always 1; the labels say which cairnd this is.",
		ConstLabels: prometheus.Labels{"version": build.Version, "revision": build.Revision, "goversion": build.GoVersion},
	})
	buildInfo.Set(1)
	m.Registry.MustRegister(
		m.transitions, m.transitionDuration, m.commitRecords, m.commitDuration,
		m.rpcs, m.rpcDuration, m.exitUnknown, m.recoveryDuration, m.recoveryActions, buildInfo,
		&scrapeCollector{src: src},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	if src.Usage != nil {
		m.Registry.MustRegister(containerCollector{usage: src.Usage})
	}
	return m
}

// Transition counts one finished transition.
func (m *Metrics) Transition(event, outcome string, d time.Duration) {
	m.transitions.WithLabelValues(event, outcome).Inc()
	m.transitionDuration.WithLabelValues(event).Observe(d.Seconds())
}

// Seed starts the transition counters at what the journal has recorded, so
// they continue across daemon restarts instead of starting again at zero.
// Call it once, before any transition is counted.
func (m *Metrics) Seed(transitions map[[2]string]int) {
	for key, n := range transitions {
		m.transitions.WithLabelValues(key[0], key[1]).Add(float64(n))
	}
}

// Committed counts one journal group commit.
func (m *Metrics) Committed(records int, d time.Duration) {
	m.commitRecords.Observe(float64(records))
	m.commitDuration.Observe(d.Seconds())
}

// Answered counts one API call.
func (m *Metrics) Answered(procedure, code string, d time.Duration) {
	m.rpcs.WithLabelValues(procedure, code).Inc()
	m.rpcDuration.WithLabelValues(procedure).Observe(d.Seconds())
}

// ExitCodeUnknown counts an exit recorded without a code.
func (m *Metrics) ExitCodeUnknown() { m.exitUnknown.Inc() }

// Recovered records a finished startup recovery.
func (m *Metrics) Recovered(d time.Duration, actions map[string]int) {
	m.recoveryDuration.Set(d.Seconds())
	for action, n := range actions {
		m.recoveryActions.WithLabelValues(action).Add(float64(n))
	}
}

var (
	descContainers  = prometheus.NewDesc("cairn_containers", "Containers known to the journal, by state (every state, zeros included).", []string{"state"}, nil)
	descImages      = prometheus.NewDesc("cairn_images", "Images registered.", nil, nil)
	descImageBytes  = prometheus.NewDesc("cairn_image_bytes", "Uncompressed bytes of the layers of every registered image, a layer counted once per image using it.", nil, nil)
	descLayers      = prometheus.NewDesc("cairn_layers", "Image layers stored, each once.", nil, nil)
	descLayerBytes  = prometheus.NewDesc("cairn_layer_bytes", "Uncompressed bytes of the image layers stored, each layer once.", nil, nil)
	descRecords     = prometheus.NewDesc("cairn_journal_records", "Records in the journal (compaction deletes old histories of removed containers).", nil, nil)
	descJournalSize = prometheus.NewDesc("cairn_journal_file_bytes", "Size of the journal's bbolt file.", nil, nil)
	descShims       = prometheus.NewDesc("cairn_shims", "Shim processes alive: of running and paused containers (kind=container), waiting for one (kind=standby).", []string{"kind"}, nil)
	descVolumes     = prometheus.NewDesc("cairn_volumes", "Volumes, by whether a container (in any state) mounts them (state=used|unused). Their bytes are in cairn system df, not here: measuring them walks every file.", []string{"state"}, nil)
	descNetworks    = prometheus.NewDesc("cairn_networks", "Networks defined, the default bridge included.", nil, nil)
	descAttachments = prometheus.NewDesc("cairn_network_attachments", "Containers attached to a network (their namespace and address kept).", nil, nil)
	descStandby     = prometheus.NewDesc("cairn_shim_starts_total", "Container starts by where their shim came from: the standby shim (hit) or started then (miss).", []string{"standby"}, nil)
)

// scrapeCollector reads its sources at scrape time, so the numbers can
// never drift from the journal and the machine.
type scrapeCollector struct{ src Sources }

func (c *scrapeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descContainers, descImages, descImageBytes, descLayers, descLayerBytes, descRecords, descJournalSize, descShims, descStandby, descVolumes, descNetworks, descAttachments} {
		ch <- d
	}
}

func (c *scrapeCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	if f := c.src.Containers; f != nil {
		counts := f()
		for _, state := range States {
			gauge(descContainers, float64(counts[state]), state)
		}
	}
	if f := c.src.Images; f != nil {
		if n, bytes, err := f(); err == nil {
			gauge(descImages, float64(n))
			gauge(descImageBytes, float64(bytes))
		}
	}
	if f := c.src.Layers; f != nil {
		if n, bytes, err := f(); err == nil {
			gauge(descLayers, float64(n))
			gauge(descLayerBytes, float64(bytes))
		}
	}
	if f := c.src.Journal; f != nil {
		records, size := f()
		gauge(descRecords, float64(records))
		gauge(descJournalSize, float64(size))
	}
	if f := c.src.Shims; f != nil {
		alive, standby := f()
		gauge(descShims, float64(alive), "container")
		gauge(descShims, float64(standby), "standby")
	}
	if f := c.src.Volumes; f != nil {
		count, used := f()
		gauge(descVolumes, float64(used), "used")
		gauge(descVolumes, float64(count-used), "unused")
	}
	if f := c.src.Networks; f != nil {
		networks, attachments := f()
		gauge(descNetworks, float64(networks))
		gauge(descAttachments, float64(attachments))
	}
	if f := c.src.Standby; f != nil {
		hits, misses := f()
		ch <- prometheus.MustNewConstMetric(descStandby, prometheus.CounterValue, float64(hits), "hit")
		ch <- prometheus.MustNewConstMetric(descStandby, prometheus.CounterValue, float64(misses), "miss")
	}
}
