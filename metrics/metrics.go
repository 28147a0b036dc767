// Package metrics owns Cairn's Prometheus collectors: lifecycle transitions,
// journal group commits, containers by state, exits whose code is unknown,
// and recovery. It only counts; it never decides anything.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics holds the daemon's collectors and the registry serving them.
type Metrics struct {
	Registry *prometheus.Registry

	transitions        *prometheus.CounterVec
	transitionDuration *prometheus.HistogramVec
	commitRecords      prometheus.Histogram
	commitDuration     prometheus.Histogram
	exitUnknown        prometheus.Counter
	recoveryDuration   prometheus.Gauge
	recoveryActions    *prometheus.CounterVec
}

// StateCounter reports how many containers are in each state at scrape time.
type StateCounter func() map[string]int

// New registers every collector, the Go runtime and process collectors
// included, on a fresh registry.
func New(states StateCounter) *Metrics {
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
	m.Registry.MustRegister(
		m.transitions, m.transitionDuration, m.commitRecords, m.commitDuration,
		m.exitUnknown, m.recoveryDuration, m.recoveryActions,
		&stateCollector{states: states, desc: prometheus.NewDesc("cairn_containers",
			"Containers known to the journal, by state.", []string{"state"}, nil)},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// Transition counts one finished transition.
func (m *Metrics) Transition(event, outcome string, d time.Duration) {
	m.transitions.WithLabelValues(event, outcome).Inc()
	m.transitionDuration.WithLabelValues(event).Observe(d.Seconds())
}

// Committed counts one journal group commit.
func (m *Metrics) Committed(records int, d time.Duration) {
	m.commitRecords.Observe(float64(records))
	m.commitDuration.Observe(d.Seconds())
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

// stateCollector asks for the container counts at scrape time, so the gauge
// can never drift from the journal's view.
type stateCollector struct {
	states StateCounter
	desc   *prometheus.Desc
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	for state, n := range c.states() {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), state)
	}
}
