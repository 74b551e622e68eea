package metrics

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

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

// scrapeRegistry is a registry the size DESIGN.md §9 names: 10,000 real
// servers (declared, probed, and in the IPVS snapshot) behind 100 virtual
// servers, and 250 VRRP instances.
func scrapeRegistry(b *testing.B) (*Metrics, *prometheus.Registry) {
	reg := prometheus.NewRegistry()
	var services []IPVSService
	var d Declaration
	for v := 0; v < 100; v++ {
		vs := VirtualServer{Name: fmt.Sprintf("192.0.2.%d:80/tcp", v), Checkers: []string{"tcp"}}
		svc := IPVSService{Name: vs.Name, Stats: IPVSStats{Connections: 1, PacketsIn: 2, PacketsOut: 3, BytesIn: 4, BytesOut: 5}}
		for r := 0; r < 100; r++ {
			rs := fmt.Sprintf("198.51.100.%d:%d", r, 8000+v)
			vs.RealServers = append(vs.RealServers, RealServer{Name: rs, Weight: 1, Up: true})
			svc.Destinations = append(svc.Destinations, IPVSDestination{Name: rs, Weight: 1, ActiveConns: 3, Stats: svc.Stats})
		}
		d.VirtualServers = append(d.VirtualServers, vs)
		services = append(services, svc)
	}
	for i := 0; i < 250; i++ {
		d.Instances = append(d.Instances, Instance{Name: fmt.Sprintf("VI_%d", i), VRID: uint8(i), Interface: "eth0", Priority: 100, Interval: time.Second})
	}
	m, err := New(reg, Options{IPVS: IPVSFunc(func() ([]IPVSService, error) { return services, nil })})
	if err != nil {
		b.Fatal(err)
	}
	m.Declare(d)
	return m, reg
}

// BenchmarkScrape gathers everything /metrics serves as dto families (the
// path of protobuf scrapes and tests).
func BenchmarkScrape(b *testing.B) {
	m, r := scrapeRegistry(b)
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
// and gzipped as Prometheus asks; the budget is 100 ms.
func BenchmarkScrapeHTTP(b *testing.B) {
	m, reg := scrapeRegistry(b)
	h := m.Handler(reg)
	for _, bc := range []struct{ name, accept, encoding string }{
		{"text", "text/plain;version=0.0.4", ""},
		{"openmetrics", "application/openmetrics-text;version=1.0.0", ""},
		{"openmetrics_gzip", "application/openmetrics-text;version=1.0.0", "gzip"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			size := 0
			for b.Loop() {
				req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
				req.Header.Set("Accept", bc.accept)
				req.Header.Set("Accept-Encoding", bc.encoding)
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d", w.Code)
				}
				size = w.Body.Len()
			}
			b.ReportMetric(float64(size), "bytes")
		})
	}
}
