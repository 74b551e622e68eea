package tracing

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/vrrp"
	"github.com/keepwatch/keepwatch/metrics"
)

func benchSinks(b *testing.B, opts SinkOptions) (*Sink, *metrics.Metrics) {
	b.Helper()
	p, err := NewProvider(context.Background(), Config{Exporter: discardExporter{}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = p.Shutdown(context.Background()) })
	s := NewSink(p, opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Run(ctx); close(done) }()
	b.Cleanup(func() { cancel(); <-done })
	m, err := metrics.New(prometheus.NewRegistry(), metrics.Options{Traces: s, Queues: []metrics.Queue{s}})
	if err != nil {
		b.Fatal(err)
	}
	m.Declare(metrics.Declaration{Instances: []metrics.Instance{{Name: "VI_1", VRID: 51, Interface: "eth0", Family: vrrp.IPv4, Priority: 100, Interval: time.Second}}})
	m.Emit(event.Event{Kind: event.KindTransition, Instance: "VI_1", From: vrrp.StateInit, To: vrrp.StateBackup})
	return s, m
}

// BenchmarkEmitAdvert measures an advert event through the tracing sink at
// 0% advert sampling, alone and behind the metrics sink as the agent wires
// them: both must be 0 allocs/op (DESIGN.md §9).
func BenchmarkEmitAdvert(b *testing.B) {
	id := event.Event{Instance: "VI_1", VRID: 51, Interface: "eth0", Family: vrrp.IPv4, Priority: 150, Interval: time.Second}
	for _, kind := range []event.Kind{event.KindAdvertSent, event.KindAdvertReceived} {
		for _, wiring := range []string{"tracing", "metrics+tracing"} {
			b.Run(kind.String()+"/"+wiring, func(b *testing.B) {
				s, m := benchSinks(b, SinkOptions{AdvertSampleRatio: 0})
				var sink event.Sink = s
				if wiring == "metrics+tracing" {
					sink = event.Multi{m, s}
				}
				e := id
				e.Kind = kind
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					e.ID = uint64(i + 1)
					e.Time = t0.Add(time.Duration(i) * time.Second)
					sink.Emit(e)
				}
			})
		}
	}
}

// BenchmarkEmitTraced measures Emit for an event that becomes a span (a
// probe): the caller's share (ids, queue). B/op includes the span worker's
// allocations; dropped/op shows what a saturated worker sheds.
func BenchmarkEmitTraced(b *testing.B) {
	s, _ := benchSinks(b, SinkOptions{QueueSize: 1 << 16})
	e := event.Event{Kind: event.KindProbe, Name: "tcp", Service: "192.0.2.10:80/tcp", Target: "198.51.100.1:80", OK: true, Duration: time.Millisecond}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		e.ID = uint64(i + 1)
		s.Emit(e)
	}
	b.ReportMetric(float64(s.QueueDropped())/float64(b.N), "dropped/op")
}
