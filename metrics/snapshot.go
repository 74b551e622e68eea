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
	vsLabels = []string{lVirtualServer}
	rsLabels = []string{lVirtualServer, lRealServer}

	ipvsUp = desc("ipvs", "scrape_success", "1 if the kernel's IPVS table could be read at this scrape, else 0.")

	vsConns      = desc("ipvs", "virtual_server_connections_total", "Connections the kernel scheduled for the virtual server.", vsLabels...)
	vsPacketsIn  = desc("ipvs", "virtual_server_incoming_packets_total", "Packets in from clients to the virtual server.", vsLabels...)
	vsPacketsOut = desc("ipvs", "virtual_server_outgoing_packets_total", "Packets out from the virtual server to clients.", vsLabels...)
	vsBytesIn    = desc("ipvs", "virtual_server_incoming_bytes_total", "Bytes in from clients to the virtual server.", vsLabels...)
	vsBytesOut   = desc("ipvs", "virtual_server_outgoing_bytes_total", "Bytes out from the virtual server to clients.", vsLabels...)

	rsConns      = desc("ipvs", "real_server_connections_total", "Connections the kernel scheduled to the real server.", rsLabels...)
	rsPacketsIn  = desc("ipvs", "real_server_incoming_packets_total", "Packets in from clients forwarded to the real server.", rsLabels...)
	rsPacketsOut = desc("ipvs", "real_server_outgoing_packets_total", "Packets out from the real server to clients.", rsLabels...)
	rsBytesIn    = desc("ipvs", "real_server_incoming_bytes_total", "Bytes in from clients forwarded to the real server.", rsLabels...)
	rsBytesOut   = desc("ipvs", "real_server_outgoing_bytes_total", "Bytes out from the real server to clients.", rsLabels...)
	rsActive     = desc("ipvs", "real_server_active_connections", "Active (established) connections to the real server.", rsLabels...)
	rsInactive   = desc("ipvs", "real_server_inactive_connections", "Inactive connections (not established: FIN_WAIT, TIME_WAIT, ...) to the real server.", rsLabels...)
	rsWeight     = desc("ipvs", "real_server_weight", "Weight of the real server in the kernel's table.", rsLabels...)

	queueLen     = desc("sink", "queue_length", "Events waiting in a slow sink's bounded queue.", lSink)
	queueDropped = desc("sink", "events_dropped_total", "Events a slow sink dropped because its queue was full.", lSink)
)

// ipvsCollector turns an IPVS snapshot into const metrics at scrape time.
type ipvsCollector struct{ src IPVSSource }

func (c *ipvsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{ipvsUp, vsConns, vsPacketsIn, vsPacketsOut, vsBytesIn, vsBytesOut,
		rsConns, rsPacketsIn, rsPacketsOut, rsBytesIn, rsBytesOut, rsActive, rsInactive, rsWeight} {
		ch <- d
	}
}

func (c *ipvsCollector) Collect(ch chan<- prometheus.Metric) {
	services, err := c.src.IPVSStats()
	if err != nil {
		ch <- prometheus.MustNewConstMetric(ipvsUp, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(ipvsUp, prometheus.GaugeValue, 1)
	counter := func(d *prometheus.Desc, v uint64, lvs ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), lvs...)
	}
	gauge := func(d *prometheus.Desc, v float64, lvs ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, lvs...)
	}
	for _, s := range services {
		counter(vsConns, s.Stats.Connections, s.Name)
		counter(vsPacketsIn, s.Stats.PacketsIn, s.Name)
		counter(vsPacketsOut, s.Stats.PacketsOut, s.Name)
		counter(vsBytesIn, s.Stats.BytesIn, s.Name)
		counter(vsBytesOut, s.Stats.BytesOut, s.Name)
		for _, d := range s.Destinations {
			counter(rsConns, d.Stats.Connections, s.Name, d.Name)
			counter(rsPacketsIn, d.Stats.PacketsIn, s.Name, d.Name)
			counter(rsPacketsOut, d.Stats.PacketsOut, s.Name, d.Name)
			counter(rsBytesIn, d.Stats.BytesIn, s.Name, d.Name)
			counter(rsBytesOut, d.Stats.BytesOut, s.Name, d.Name)
			gauge(rsActive, float64(d.ActiveConns), s.Name, d.Name)
			gauge(rsInactive, float64(d.InactiveConns), s.Name, d.Name)
			gauge(rsWeight, float64(d.Weight), s.Name, d.Name)
		}
	}
}

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
