package tracing

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
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

// BenchmarkSpanPipeline is the agent's advert-span path end to end, paced
// like 250 instances at 0.05 s: every 50 ms, 250 advert events go through
// Emit; the Sink's worker builds the spans, the provider batches them and
// the real OTLP/HTTP exporter sends them to a local server that reads and
// discards each request. It reports the process's CPU time per span
// (getrusage: every goroutine, including the GC and the discarding server,
// whose share is small and the same before and after a change), which a
// loaded machine inflates far less than wall time, and the heap
// allocations per span, which the agent's GC pays for.
func BenchmarkSpanPipeline(b *testing.B) {
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		got.Add(n)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	b.Cleanup(srv.Close)
	const instances, ticks = 250, 80 // 4 s of adverts: 20,000 spans
	var cpu, spans, dropped, mallocs, bytes float64
	for b.Loop() {
		p, err := NewProvider(context.Background(), Config{Endpoint: srv.URL})
		if err != nil {
			b.Fatal(err)
		}
		s := NewSink(p, SinkOptions{AdvertSampleRatio: 1})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { _ = s.Run(ctx); close(done) }()
		names := make([]string, instances)
		for i := range names {
			names[i] = "VI_" + strconv.Itoa(i+1)
		}
		cpu0 := cpuTime(b)
		var ms0 runtime.MemStats
		runtime.ReadMemStats(&ms0)
		tick := time.NewTicker(50 * time.Millisecond)
		id := uint64(0)
		for range ticks {
			<-tick.C
			for i, name := range names {
				id++
				s.Emit(event.Event{Kind: event.KindAdvertSent, ID: id, Time: time.Now(), Instance: name, VRID: uint8(i + 1),
					Interface: "eth0", Family: vrrp.IPv4, Priority: 200, Addr: netip.MustParseAddr("192.0.2.1")})
			}
		}
		tick.Stop()
		cancel()
		<-done
		if err := p.Shutdown(context.Background()); err != nil {
			b.Fatal(err)
		}
		cpu += float64(cpuTime(b) - cpu0)
		var ms1 runtime.MemStats
		runtime.ReadMemStats(&ms1)
		mallocs += float64(ms1.Mallocs - ms0.Mallocs)
		bytes += float64(ms1.TotalAlloc - ms0.TotalAlloc)
		spans += float64(id - s.QueueDropped())
		dropped += float64(s.QueueDropped())
	}
	b.ReportMetric(cpu/spans, "cpu-ns/span")
	// Heap allocations per span, the GC's work: the process's, so the
	// discarding server's are in them too (a few per export request).
	b.ReportMetric(mallocs/spans, "allocs/span")
	b.ReportMetric(bytes/spans, "B/span")
	b.ReportMetric(dropped, "dropped")
	if got.Load() == 0 {
		b.Fatal("nothing exported")
	}
}

// cpuTime is the process's user+system CPU time in nanoseconds.
func cpuTime(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
