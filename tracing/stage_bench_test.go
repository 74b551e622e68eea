package tracing

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// advertEvents are n sent-advert events of 250 instances, as the agent at
// 250 × 0.05 s emits them.
func advertEvents(n int) []event.Event {
	es := make([]event.Event, n)
	now := time.Now()
	for i := range es {
		vrid := i%250 + 1
		es[i] = event.Event{Kind: event.KindAdvertSent, ID: uint64(i + 1), Time: now.Add(time.Duration(i) * 200 * time.Microsecond),
			Instance: "VI_" + strconv.Itoa(vrid), VRID: uint8(vrid), Interface: "eth0", Family: vrrp.IPv4, Priority: 200,
			Addr: netip.MustParseAddr("224.0.0.18")}
	}
	return es
}

// keepExporter keeps the spans it is given.
type keepExporter struct {
	mu    sync.Mutex
	spans []sdktrace.ReadOnlySpan
}

func (k *keepExporter) ExportSpans(_ context.Context, s []sdktrace.ReadOnlySpan) error {
	k.mu.Lock()
	k.spans = append(k.spans, s...)
	k.mu.Unlock()
	return nil
}
func (*keepExporter) Shutdown(context.Context) error { return nil }

// BenchmarkAdvertSpanBuild is the span worker's share of an advert span,
// unpaced (process CPU time per span: every goroutine, the GC's too): Sink.span (the SDK's Start, attributes, End) and the batcher's
// OnEnd, for sent adverts of 250 instances, with an exporter that drops
// the batches. ns/op and allocs/op are per span.
func BenchmarkAdvertSpanBuild(b *testing.B) {
	p, err := NewProvider(context.Background(), Config{Exporter: discardExporter{}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = p.Shutdown(context.Background()) })
	s := NewSink(p, SinkOptions{AdvertSampleRatio: 1})
	es := advertEvents(4096)
	qs := make([]queued, len(es))
	for i := range es {
		v, parent := s.assign(&es[i])
		qs[i] = queued{e: es[i], ids: v, parent: parent}
	}
	b.ReportAllocs()
	cpu0 := cpuTime(b)
	for i := 0; b.Loop(); i++ {
		s.span(&qs[i%len(qs)])
	}
	b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N), "cpu-ns/span")
}

// BenchmarkAdvertSpanExport is the export goroutine's share of an advert
// span, unpaced: the OTLP exporter's transform, protobuf marshal and
// HTTP request for a batch of DefaultExportBatch sent-advert spans of 250
// instances, to a local server that discards the body (its share is in
// the figures). cpu-ns/span is the process's CPU time per span (every
// goroutine, the GC's too), ns/span the wall time.
func BenchmarkAdvertSpanExport(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	b.Cleanup(srv.Close)
	keep := &keepExporter{}
	p, err := NewProvider(context.Background(), Config{Exporter: keep})
	if err != nil {
		b.Fatal(err)
	}
	s := NewSink(p, SinkOptions{AdvertSampleRatio: 1})
	es := advertEvents(DefaultExportBatch)
	for i := range es {
		v, parent := s.assign(&es[i])
		s.span(&queued{e: es[i], ids: v, parent: parent})
	}
	if err := p.Shutdown(context.Background()); err != nil {
		b.Fatal(err)
	}
	if len(keep.spans) != len(es) {
		b.Fatalf("built %d spans, want %d", len(keep.spans), len(es))
	}
	exp, err := newOTLPExporter(context.Background(), Config{Endpoint: srv.URL})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = exp.Shutdown(context.Background()) })
	b.ReportAllocs()
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	cpu0 := cpuTime(b)
	for b.Loop() {
		if err := exp.ExportSpans(context.Background(), keep.spans); err != nil {
			b.Fatal(err)
		}
	}
	n := float64(b.N * len(keep.spans))
	b.ReportMetric(float64(cpuTime(b)-cpu0)/n, "cpu-ns/span")
	runtime.ReadMemStats(&ms1)
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/n, "allocs/span")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/span")
}
