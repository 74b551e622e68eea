package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// IPVSSource reads the kernel's IPVS table and counters. It is called at
// each scrape, so the values are the kernel's, not a copy that can drift
// (node_exporter's ipvs collector works the same way).
type IPVSSource interface {
	IPVSStats() ([]IPVSService, error)
}

// IPVSFunc adapts a function to an IPVSSource.
type IPVSFunc func() ([]IPVSService, error)

// IPVSStats calls f.
func (f IPVSFunc) IPVSStats() ([]IPVSService, error) { return f() }

var _ IPVSSource = IPVSFunc(nil)

// IPVSService is one virtual service in the kernel. Name is written as
// event.Event.Service ("ip:port/proto" or "fwmark:N").
type IPVSService struct {
	Name         string
	Stats        IPVSStats
	Destinations []IPVSDestination
}

// IPVSDestination is one real server of a service; Name is "ip:port".
type IPVSDestination struct {
	Name           string
	Stats          IPVSStats
	Weight         int
	ActiveConns    uint64
	InactiveConns  uint64
	PersistentConn uint64
}

// IPVSStats are the kernel's cumulative counters (ip_vs_stats).
type IPVSStats struct {
	Connections uint64
	PacketsIn   uint64
	PacketsOut  uint64
	BytesIn     uint64
	BytesOut    uint64
}

// Queue is a slow sink's bounded queue (tracing, notify, mail): events it had
// to drop rather than delay the emitter are counted (DESIGN.md §3).
type Queue interface {
	// QueueName is the sink label value, e.g. "tracing".
	QueueName() string
	QueueLen() int
	QueueDropped() uint64
}

func desc(sub, name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(namespace, sub, name), help, labels, nil)
}

var (
	queueLen     = desc("sink", "queue_length", "Events waiting in a slow sink's bounded queue.", lSink)
	queueDropped = desc("sink", "events_dropped_total", "Events a slow sink dropped because its queue was full.", lSink)
)

// queueCollector reports the slow sinks' queues at scrape time.
type queueCollector struct{ queues []Queue }

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueLen
	ch <- queueDropped
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	for _, q := range c.queues {
		ch <- prometheus.MustNewConstMetric(queueLen, prometheus.GaugeValue, float64(q.QueueLen()), q.QueueName())
		ch <- prometheus.MustNewConstMetric(queueDropped, prometheus.CounterValue, float64(q.QueueDropped()), q.QueueName())
	}
}
