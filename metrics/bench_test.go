package metrics

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	gzip "github.com/klauspost/compress/gzip"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// BenchmarkEmit measures the per-event cost on the VRRP hot path: it must
// be 0 allocs/op (DESIGN.md §9).
func BenchmarkEmit(b *testing.B) {
	id := event.Event{Instance: "VI_1", VRID: 51, Interface: "eth0", Family: vrrp.IPv4, Priority: 150, Interval: time.Second}
	sent, recv, drop := id, id, id
	sent.Kind = event.KindAdvertSent
	recv.Kind = event.KindAdvertReceived
	drop.Kind, drop.Reason = event.KindAdvertDropped, event.DropAuth
	for _, bc := range []struct {
		name string
		e    event.Event
	}{{"advert_sent", sent}, {"advert_received", recv}, {"advert_dropped", drop}} {
		b.Run(bc.name, func(b *testing.B) {
			m, _ := newTestMetrics(b)
			m.Emit(event.Event{Kind: event.KindTransition, Instance: "VI_1", From: vrrp.StateInit, To: vrrp.StateBackup})
			e := bc.e
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				e.ID = uint64(i)
				e.Time = t0.Add(time.Duration(i) * time.Second)
				m.Emit(e)
			}
		})
	}
}

// scrapeRegistry is a registry the size DESIGN.md §9 names: realServers
// real servers (declared, probed, and in the IPVS snapshot) behind 100
// virtual servers, and 250 VRRP instances, each with a VIP, a transition
// (with an exemplar) and observations in its histograms.
func scrapeRegistry(b *testing.B, realServers int) (*Metrics, *prometheus.Registry) {
	reg := prometheus.NewRegistry()
	var services []IPVSService
	var d Declaration
	for v := 0; v < 100 && realServers > 0; v++ {
		vs := VirtualServer{Name: fmt.Sprintf("192.0.2.%d:80/tcp", v), Checkers: []string{"tcp"}}
		svc := IPVSService{Name: vs.Name, Stats: IPVSStats{Connections: 1, PacketsIn: 2, PacketsOut: 3, BytesIn: 4, BytesOut: 5}}
		for r := 0; r < realServers/100; r++ {
			rs := fmt.Sprintf("198.51.100.%d:%d", r, 8000+v)
			vs.RealServers = append(vs.RealServers, RealServer{Name: rs, Weight: 1, Up: true})
			svc.Destinations = append(svc.Destinations, IPVSDestination{Name: rs, Weight: 1, ActiveConns: 3, Stats: svc.Stats})
		}
		d.VirtualServers = append(d.VirtualServers, vs)
		services = append(services, svc)
	}
	for i := 0; i < 250; i++ {
		d.Instances = append(d.Instances, Instance{Name: fmt.Sprintf("VI_%d", i), VRID: uint8(i), Interface: "eth0", Priority: 100, Interval: time.Second,
			VIPs: []netip.Addr{netip.AddrFrom4([4]byte{203, 0, 113, byte(i)})}})
	}
	opts := Options{Traces: fixedTraces{}}
	if realServers > 0 {
		opts.IPVS = IPVSFunc(func() ([]IPVSService, error) { return services, nil })
	}
	m, err := New(reg, opts)
	if err != nil {
		b.Fatal(err)
	}
	m.Declare(d)
	for _, in := range d.Instances {
		m.Emit(event.Event{Kind: event.KindTransition, Instance: in.Name, From: vrrp.StateInit, To: vrrp.StateBackup, Reason: "startup"})
		m.Emit(event.Event{Kind: event.KindAdvertSent, Instance: in.Name, Duration: time.Millisecond})
	}
	return m, reg
}

// fixedTraces gives every event the same trace id, so the transition
// counters carry exemplars.
type fixedTraces struct{}

func (fixedTraces) TraceID(event.Event) (string, bool) {
	return "4bf92f3577b34da6a3ce929d0e0e4736", true
}

// BenchmarkScrape gathers everything /metrics serves as dto families (the
// path of protobuf scrapes and tests).
func BenchmarkScrape(b *testing.B) {
	m, r := scrapeRegistry(b, 10000)
	reg := m.Gatherer(r)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		mfs, err := reg.Gather()
		if err != nil {
			b.Fatal(err)
		}
		n = len(mfs)
	}
	b.ReportMetric(float64(n), "families")
}

// BenchmarkScrapeHTTP is a whole /metrics request as the agent serves it
// (Handler): gathering and encoding, in the text format, in OpenMetrics,
// and gzipped as Prometheus asks; the budget is 100 ms. vrrp250 is 250
// instances alone (the memory figures of deploy/bench.d/FOOTPRINT.md),
// rs10000 adds 10,000 real servers.
func BenchmarkScrapeHTTP(b *testing.B) {
	for _, size := range []struct {
		name        string
		realServers int
	}{{"vrrp250", 0}, {"rs10000", 10000}} {
		m, reg := scrapeRegistry(b, size.realServers)
		h := m.Handler(reg)
		for _, bc := range []struct{ name, accept, encoding string }{
			{"text", "text/plain;version=0.0.4", ""},
			{"openmetrics", "application/openmetrics-text;version=1.0.0", ""},
			{"openmetrics_gzip", "application/openmetrics-text;version=1.0.0", "gzip"},
		} {
			b.Run(size.name+"/"+bc.name, func(b *testing.B) {
				b.ReportAllocs()
				size := 0
				for b.Loop() {
					req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
					req.Header.Set("Accept", bc.accept)
					req.Header.Set("Accept-Encoding", bc.encoding)
					w := &countingWriter{h: http.Header{}}
					h.ServeHTTP(w, req)
					if w.code != 0 && w.code != http.StatusOK {
						b.Fatalf("status %d", w.code)
					}
					size = w.n
				}
				b.ReportMetric(float64(size), "bytes")
			})
		}
	}
}

// countingWriter is a ResponseWriter that counts the body and keeps none
// of it, so the benchmark measures the handler, not a recorder's copy.
type countingWriter struct {
	h    http.Header
	code int
	n    int
}

func (w *countingWriter) Header() http.Header         { return w.h }
func (w *countingWriter) WriteHeader(code int)        { w.code = code }
func (w *countingWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }

// BenchmarkGzipWriter is the cost Handler saves by keeping its gzip
// writer: a new one per scrape (as a sync.Pool emptied by the GCs between
// 15 s scrapes gives), against one Reset.
func BenchmarkGzipWriter(b *testing.B) {
	body := bytes.Repeat([]byte("keepwatch_vrrp_adverts_sent_total{family=\"ipv4\",interface=\"eth0\",vrid=\"51\",vrrp_instance=\"VI_1\"} 12345\n"), 1000)
	b.Run("new", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			zw, _ := gzip.NewWriterLevel(io.Discard, gzip.BestSpeed)
			_, _ = zw.Write(body)
			_ = zw.Close()
		}
	})
	b.Run("reset", func(b *testing.B) {
		zw, _ := gzip.NewWriterLevel(io.Discard, gzip.BestSpeed)
		b.ReportAllocs()
		for b.Loop() {
			zw.Reset(io.Discard)
			_, _ = zw.Write(body)
			_ = zw.Close()
		}
	})
}

// BenchmarkEmitInstances is BenchmarkEmit's advert sent with 250 declared
// instances taking turns, as a master's adverts come: the instance lookup
// is over all of them.
func BenchmarkEmitInstances(b *testing.B) {
	m, _ := newTestMetrics(b)
	var d Declaration
	events := make([]event.Event, 250)
	for i := range events {
		name := fmt.Sprintf("VI_%d", i+1)
		d.Instances = append(d.Instances, Instance{Name: name, VRID: uint8(i + 1), Interface: "eth0", Family: vrrp.IPv4, Priority: 200, Interval: 50 * time.Millisecond})
		events[i] = event.Event{Kind: event.KindAdvertSent, Instance: name, VRID: uint8(i + 1), Interface: "eth0", Family: vrrp.IPv4, Priority: 200}
	}
	m.Declare(d)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		e := &events[i%len(events)]
		e.ID = uint64(i)
		m.Emit(*e)
	}
}

// BenchmarkEmitCold is BenchmarkEmitInstances with the caches cold, as in
// a running agent: at 250 instances × 0.05 s an instance's series are
// touched once every 50 ms, and the kernel's network path and the rest of
// the machine run in between. Each round emits one event per instance
// after 4 MiB were written over (outside the timer: past L2, as the
// kernel's path does between two adverts of an instance), so ns/op is
// what an advert costs the metrics sink when its lines are not in cache
// (issue 12: ~0.25-0.3 µs per advert in perf profiles of real agents,
// against ~40 ns warm). advert_sent as a master's adverts; advert_received
// as a backup's, every instance in BACKUP, 50 ms apart. Run it with a
// fixed count (obs.sh: -benchtime 250000x): the flushes make a 1 s
// benchtime last half a minute.
func BenchmarkEmitCold(b *testing.B) {
	const n = 250
	evict := make([]byte, 4<<20)
	for _, kind := range []event.Kind{event.KindAdvertSent, event.KindAdvertReceived} {
		b.Run(kind.String()[len("vrrp."):], func(b *testing.B) {
			m, _ := newTestMetrics(b)
			var d Declaration
			events := make([]event.Event, n)
			for i := range events {
				name := fmt.Sprintf("VI_%d", i+1)
				d.Instances = append(d.Instances, Instance{Name: name, VRID: uint8(i + 1), Interface: "eth0", Family: vrrp.IPv4, Priority: 200, Interval: 50 * time.Millisecond})
				events[i] = event.Event{Kind: kind, Instance: name, VRID: uint8(i + 1), Interface: "eth0", Family: vrrp.IPv4, Priority: 200,
					Interval: 50 * time.Millisecond, Duration: 20 * time.Microsecond}
			}
			m.Declare(d)
			for i := range events {
				m.Emit(event.Event{Kind: event.KindTransition, Instance: events[i].Instance, VRID: events[i].VRID, Family: vrrp.IPv4,
					From: vrrp.StateInit, To: vrrp.StateBackup, Reason: event.ReasonStartup, Time: t0})
			}
			b.ReportAllocs()
			round := 0
			for i := 0; b.Loop(); i++ {
				k := i % n
				if k == 0 {
					b.StopTimer()
					for j := 0; j < len(evict); j += 64 {
						evict[j]++
					}
					round++
					b.StartTimer()
				}
				e := &events[k]
				e.ID = uint64(i)
				e.Time = t0.Add(time.Duration(round)*50*time.Millisecond + time.Duration(k)*time.Microsecond)
				m.Emit(*e)
			}
		})
	}
}
