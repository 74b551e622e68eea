package metrics

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/keepwatch/keepwatch/engine/event"
)

// bulkMetrics has real servers and an IPVS table with names that need
// escaping, values that format differently in each format, and a real
// server in the kernel that is not declared.
func bulkMetrics(t *testing.T) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	odd := "198.51.100.9:80\\\"x\ny"
	services := []IPVSService{
		{Name: "192.0.2.20:443/tcp", Stats: IPVSStats{Connections: 1 << 53, PacketsIn: 12345678901, BytesOut: 1},
			Destinations: []IPVSDestination{{Name: "198.51.100.2:443", Weight: 0, ActiveConns: 7}, {Name: odd, Weight: 1}}},
		{Name: "192.0.2.10:80/tcp", Stats: IPVSStats{Connections: 10, PacketsIn: 100},
			Destinations: []IPVSDestination{{Name: "198.51.100.1:80", Weight: 5, ActiveConns: 2, InactiveConns: 1, Stats: IPVSStats{BytesIn: 1e15}}}},
	}
	m, err := New(reg, Options{Version: "1", IPVS: IPVSFunc(func() ([]IPVSService, error) { return services, nil })})
	if err != nil {
		t.Fatal(err)
	}
	m.Declare(Declaration{VirtualServers: []VirtualServer{
		{Name: "192.0.2.10:80/tcp", RealServers: []RealServer{{Name: "198.51.100.1:80", Weight: 5, Up: true}}},
		{Name: "192.0.2.20:443/tcp", RealServers: []RealServer{{Name: "198.51.100.2:443", Weight: 3}, {Name: odd, Weight: 1, Up: true}}},
	}})
	m.servers.snapshot()[serverKey{"192.0.2.20:443/tcp", odd}].weight.Set(math.Inf(1))
	return m, reg
}

// TestHandlerMatchesExpfmt: for the text format and OpenMetrics, the
// handler's direct writing of the bulk families gives exactly what
// client_golang's promhttp prints for the same families as dto.
func TestHandlerMatchesExpfmt(t *testing.T) {
	m, reg := bulkMetrics(t)
	fast := m.Handler(reg)
	slow := promhttp.HandlerFor(m.Gatherer(reg), promhttp.HandlerOpts{EnableOpenMetrics: true})
	for _, accept := range []string{"text/plain;version=0.0.4", "application/openmetrics-text;version=1.0.0", ""} {
		get := func(h http.Handler) (string, string) {
			req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			req.Header.Set("Accept", accept)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				t.Fatalf("%q: status %d", accept, w.Code)
			}
			return w.Header().Get("Content-Type"), w.Body.String()
		}
		ctFast, bodyFast := get(fast)
		ctSlow, bodySlow := get(slow)
		if ctFast != ctSlow {
			t.Errorf("%q: Content-Type %q, promhttp %q", accept, ctFast, ctSlow)
		}
		// promhttp sorts families by name; the handler writes the bulk
		// families last. Compare family by family.
		if d := cmp.Diff(splitFamilies(bodySlow), splitFamilies(bodyFast)); d != "" {
			t.Errorf("%q (-promhttp +handler):\n%s", accept, d)
		}
		if !strings.Contains(bodyFast, `keepwatch_ipvs_real_server_weight{real_server="198.51.100.9:80\\\"x\ny",virtual_server="192.0.2.20:443/tcp"} 1`) {
			t.Errorf("%q: escaped label missing:\n%s", accept, bodyFast)
		}
		if strings.HasPrefix(ctFast, "application/openmetrics-text") && !strings.HasSuffix(bodyFast, "# EOF\n") {
			t.Errorf("OpenMetrics body does not end with # EOF")
		}
	}
}

// splitFamilies maps each family (its HELP line) to its text block.
func splitFamilies(body string) map[string]string {
	out := map[string]string{}
	var name string
	for _, l := range strings.SplitAfter(body, "\n") {
		if strings.HasPrefix(l, "# HELP ") {
			name = strings.Fields(l)[2]
		}
		if l != "# EOF\n" { // the handler's is last too, checked apart
			out[name] += l
		}
	}
	return out
}

// TestHandlerGzip: Prometheus asks for gzip; the body is the same text.
func TestHandlerGzip(t *testing.T) {
	m, reg := bulkMetrics(t)
	h := m.Handler(reg)
	get := func(enc string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		req.Header.Set("Accept-Encoding", enc)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	plain, zipped := get(""), get("gzip;q=0.5, identity")
	if zipped.Header().Get("Content-Encoding") != "gzip" || get("gzip;q=0").Header().Get("Content-Encoding") == "gzip" {
		t.Fatalf("Content-Encoding %q", zipped.Header().Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(zipped.Body)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, plain.Body.Bytes()) {
		t.Error("gzipped body differs from the plain one")
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	if _, err := p.TextToMetricFamilies(bytes.NewReader(b)); err != nil {
		t.Errorf("parsing the body: %v", err)
	}
}

// TestBulkReload: real servers removed from the config lose their series,
// added ones get theirs, kept ones keep their values.
func TestBulkReload(t *testing.T) {
	m, reg := bulkMetrics(t)
	g := m.Gatherer(reg)
	m.Declare(Declaration{VirtualServers: []VirtualServer{
		{Name: "192.0.2.10:80/tcp", RealServers: []RealServer{{Name: "198.51.100.1:80", Weight: 9, Up: true}, {Name: "198.51.100.3:80", Weight: 2, Up: true}}},
	}})
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, mf := range mfs {
		if mf.GetName() != "keepwatch_real_server_weight" {
			continue
		}
		for _, mt := range mf.GetMetric() {
			got = append(got, fmt.Sprintf("%s %s %v", mt.GetLabel()[1].GetValue(), mt.GetLabel()[0].GetValue(), mt.GetGauge().GetValue()))
		}
	}
	want := []string{"192.0.2.10:80/tcp 198.51.100.1:80 5", "192.0.2.10:80/tcp 198.51.100.3:80 2"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("weights after reload (-want +got):\n%s", d)
	}
}

// TestHandlerProtobuf: a protobuf scrape (Prometheus with native
// histograms) goes through promhttp and still has the bulk families.
func TestHandlerProtobuf(t *testing.T) {
	m, reg := bulkMetrics(t)
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept", "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited")
	w := httptest.NewRecorder()
	m.Handler(reg).ServeHTTP(w, req)
	format := expfmt.ResponseFormat(w.Header())
	if format.FormatType() != expfmt.TypeProtoDelim {
		t.Fatalf("Content-Type %q, want delimited protobuf", w.Header().Get("Content-Type"))
	}
	dec := expfmt.NewDecoder(w.Body, format)
	names := map[string]int{}
	for {
		var mf dto.MetricFamily
		if err := dec.Decode(&mf); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		names[mf.GetName()] = len(mf.GetMetric())
	}
	if names["keepwatch_real_server_up"] != 3 || names["keepwatch_ipvs_real_server_weight"] != 3 || names["keepwatch_build_info"] != 1 {
		t.Errorf("families: %v", names)
	}
}

// TestHandlerConcurrent: scrapes through Handler while real servers change
// and reloads add and remove them; run with -race.
func TestHandlerConcurrent(t *testing.T) {
	m, reg := bulkMetrics(t)
	h := m.Handler(reg)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 200 {
			m.Emit(event.Event{Kind: event.KindRealServer, Service: "192.0.2.10:80/tcp", Target: fmt.Sprintf("198.51.100.%d:80", i%20), OK: i%2 == 0, Value: int64(i)})
			if i%50 == 0 {
				m.Declare(Declaration{VirtualServers: []VirtualServer{{Name: "192.0.2.10:80/tcp", RealServers: []RealServer{{Name: "198.51.100.1:80", Up: true}}}}})
			}
		}
	}()
	for {
		for _, accept := range []string{"text/plain", "application/openmetrics-text;version=1.0.0"} {
			req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			req.Header.Set("Accept", accept)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			p := expfmt.NewTextParser(model.UTF8Validation)
			if accept == "text/plain" {
				if _, err := p.TextToMetricFamilies(w.Body); err != nil {
					t.Fatal(err)
				}
			}
		}
		select {
		case <-done:
			return
		default:
		}
	}
}
